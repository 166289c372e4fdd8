import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC_NAMESPACE, METRICS, TENANT_DIMENSION } from './constants';

export interface SyncDashboardProps {
  readonly queues: Record<string, { queue: sqs.IQueue; deadLetterQueue: sqs.IQueue }>;
}

/**
 * One CloudWatch dashboard for every clinic: per-tenant graphs come from SEARCH expressions
 * over the `TenantId` dimension, so a clinic added with `--aws-table TABLE tenants add` appears without a
 * deploy. Queues are shared by all tenants, so their depth and age are per queue.
 */
export class SyncDashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: SyncDashboardProps) {
    super(scope, id);
    const perTenant = (metric: string, stat: string, label: string) =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('{${METRIC_NAMESPACE},${TENANT_DIMENSION}} MetricName="${metric}"', '${stat}', 300)`,
        label,
        period: Duration.minutes(5),
        usingMetrics: {},
      });
    const graph = (title: string, left: cloudwatch.IMetric[]) =>
      new cloudwatch.GraphWidget({ title, left, width: 12, height: 6, legendPosition: cloudwatch.LegendPosition.RIGHT });

    const queues = Object.entries(props.queues);
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${Stack.of(this).stackName}-clinics`,
      defaultInterval: Duration.hours(6),
      widgets: [
        [
          graph('Freshness: seconds per poll round, by clinic', [
            perTenant(METRICS.watermarkAgeSeconds, 'Maximum', 'poll round (s)'),
          ]),
          graph('Poll failures, by clinic', [perTenant(METRICS.pollFailures, 'Sum', 'failed polls')]),
        ],
        [
          graph(
            'Queue depth (messages waiting)',
            queues.map(([entity, q]) =>
              q.queue.metricApproximateNumberOfMessagesVisible({ label: entity, period: Duration.minutes(1) }),
            ),
          ),
          graph(
            'Age of the oldest message (s)',
            queues.map(([entity, q]) =>
              q.queue.metricApproximateAgeOfOldestMessage({ label: entity, period: Duration.minutes(1) }),
            ),
          ),
        ],
        [
          graph(
            'Dead-lettered (parked for a person)',
            queues.map(([entity, q]) =>
              q.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ label: entity, period: Duration.minutes(1) }),
            ),
          ),
          graph('Reconciliation mismatches, by clinic', [
            perTenant(METRICS.reconciliationMismatches, 'Maximum', 'mismatches'),
          ]),
        ],
        [graph('Reckon needs connecting again, by clinic', [perTenant(METRICS.reckonReauthorizationNeeded, 'Maximum', 'reconnect')])],
      ],
    });
  }
}
