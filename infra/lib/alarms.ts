import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC_NAMESPACE, METRICS, TENANT_DIMENSION } from './constants';

/** Poller lag above which the sync counts as stalled (seconds). */
export const WATERMARK_AGE_THRESHOLD_SECONDS = 15 * 60;
/** Age of the oldest message in a work queue above which a worker counts as stuck (seconds). */
export const OLDEST_MESSAGE_AGE_THRESHOLD_SECONDS = 15 * 60;

export interface SyncAlarmsProps {
  /** Email address subscribed to the alarm topic (a CfnParameter's value in the stack). */
  readonly alarmEmail: string;
  readonly encryptionKey: kms.IKey;
  readonly functions: Record<string, lambda.IFunction>;
  /** Work queues and their DLQs by entity type. */
  readonly queues: Record<string, { queue: sqs.IQueue; deadLetterQueue: sqs.IQueue }>;
}

/**
 * Every alarm of the sync, all notifying one KMS-encrypted SNS topic. What each alarm means
 * and what to do is in infra/README.md ("Alarms: what they mean and what to do").
 */
export class SyncAlarms extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  private readonly action: actions.SnsAction;

  constructor(scope: Construct, id: string, props: SyncAlarmsProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: 'Cliniko Reckon Sync alarms',
      masterKey: props.encryptionKey,
      enforceSSL: true,
    });
    this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    this.action = new actions.SnsAction(this.topic);

    for (const [entity, { queue, deadLetterQueue }] of Object.entries(props.queues)) {
      this.add(`${entity}DeadLetters`, {
        alarmDescription: `Messages in the ${entity} DLQ: records that failed 5 times and are not in Reckon.`,
        metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(1),
          statistic: cloudwatch.Stats.MAXIMUM,
        }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      this.add(`${entity}OldestMessage`, {
        alarmDescription: `The oldest message in the ${entity} queue is older than 15 minutes: its worker is stuck or throttled.`,
        metric: queue.metricApproximateAgeOfOldestMessage({
          period: Duration.minutes(1),
          statistic: cloudwatch.Stats.MAXIMUM,
        }),
        threshold: OLDEST_MESSAGE_AGE_THRESHOLD_SECONDS,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }

    for (const [name, fn] of Object.entries(props.functions)) {
      this.add(`${name}Errors`, {
        alarmDescription: `The ${name} function failed (an invocation error, not a per-record failure).`,
        metric: fn.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      this.add(`${name}Throttles`, {
        alarmDescription: `The ${name} function was throttled by Lambda (account or reserved concurrency).`,
        metric: fn.metricThrottles({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }

    // One alarm per custom metric, evaluated per clinic: a Metrics Insights query grouped by
    // TenantId makes every clinic's series a contributor of its own, so the alarm (its state
    // reason and notification) names the clinic, and a clinic added later is covered without
    // a deploy or a resource of its own.
    const clinicNamed = ' The alarm names the clinic (contributor TenantId); its log lines carry the same tenant field.';
    this.add('PollerLag', {
      alarmDescription:
        "A clinic's Cliniko watermark is more than 15 minutes old: its changes are not reaching Reckon in time." +
        clinicNamed,
      metric: perClinic(METRICS.watermarkAgeSeconds, 'MAX', Duration.minutes(5)),
      threshold: WATERMARK_AGE_THRESHOLD_SECONDS,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // A clinic that stops reporting (paused, disconnected, removed, or failing: that is
      // PollFailures) is not lag; silence of every clinic is PollerSilent's.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.add('PollerSilent', {
      alarmDescription:
        'No clinic has reported a successful poll for 5 minutes: the poller is failing, its schedule is disabled, or no clinic is active.',
      // The all-clinics series (no dimension): one series, so silence is missing data.
      metric: new cloudwatch.Metric({
        namespace: METRIC_NAMESPACE,
        metricName: METRICS.watermarkAgeSeconds,
        period: Duration.minutes(5),
        statistic: cloudwatch.Stats.SAMPLE_COUNT,
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // Silence is the worst case: a poller that no longer runs emits nothing.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    this.add('ReconciliationMismatches', {
      alarmDescription:
        "A clinic's nightly reconciliation found records that differ between Cliniko and Reckon (report under reports/<tenant>/)." +
        clinicNamed,
      metric: perClinic(METRICS.reconciliationMismatches, 'MAX', Duration.hours(1)),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.add('ReckonReauthorizationNeeded', {
      alarmDescription:
        "Reckon refused a clinic's refresh token: that clinic is stopped (needs_reconnect in `cliniko-reckon --aws-table TABLE tenants list`), " +
        'its work kept, until someone runs `cliniko-reckon --aws-table TABLE --tenant <id> connect`; the other clinics go on.' +
        clinicNamed,
      metric: perClinic(METRICS.reckonReauthorizationNeeded, 'MAX', Duration.minutes(5)),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.add('PollFailures', {
      alarmDescription:
        "A clinic's poll failed or could not start (its Cliniko key, configuration or Cliniko itself): its changes are not read." +
        clinicNamed,
      metric: perClinic(METRICS.pollFailures, 'SUM', Duration.minutes(5)),
      // Three failed minutes in five: a single blip is retried by the next minute's poll.
      threshold: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  private add(id: string, props: cloudwatch.AlarmProps): cloudwatch.Alarm {
    // Readable names in the notification emails, unique per stack.
    const alarmName = `${Stack.of(this).stackName}-${id}`;
    const alarm = new cloudwatch.Alarm(this, id, { alarmName, ...props });
    alarm.addAlarmAction(this.action);
    this.alarms.push(alarm);
    return alarm;
  }
}

/**
 * A custom metric per clinic, as a Metrics Insights query: one series (alarm contributor)
 * per TenantId, each aggregated with `fn` over `period`.
 */
export function perClinic(metric: string, fn: 'MAX' | 'SUM', period: Duration): cloudwatch.MathExpression {
  return new cloudwatch.MathExpression({
    expression: perClinicQuery(metric, fn),
    period,
    label: `${metric} per clinic`,
  });
}

export function perClinicQuery(metric: string, fn: 'MAX' | 'SUM'): string {
  return `SELECT ${fn}(${metric}) FROM SCHEMA("${METRIC_NAMESPACE}", ${TENANT_DIMENSION}) GROUP BY ${TENANT_DIMENSION}`;
}
