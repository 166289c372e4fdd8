import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { OLDEST_MESSAGE_AGE_THRESHOLD_SECONDS, WATERMARK_AGE_THRESHOLD_SECONDS } from '../lib/alarms';
import { ENTITY_QUEUES, FUNCTION_NAMES, METRIC_NAMESPACE, METRICS, TENANT_DIMENSION } from '../lib/constants';
import { buildStack, findOne, functionId, Resource } from './helpers';

const { stack } = buildStack();
const resources = Template.fromStack(stack).toJSON().Resources as Record<string, Resource>;
const topicId = findOne(resources, 'AWS::SNS::Topic', () => true);
const alarms = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm');

/** The one alarm on `metricName` in `namespace` whose dimensions equal `dimensions`. */
function alarm(namespace: string, metricName: string, dimensions: Record<string, string>): Record<string, unknown> {
  const found = alarms.filter(([, r]) => {
    const p = r.Properties;
    const dims = Object.fromEntries(
      ((p.Dimensions ?? []) as { Name: string; Value: unknown }[]).map((d) => [d.Name, JSON.stringify(d.Value)]),
    );
    const want = Object.fromEntries(Object.entries(dimensions).map(([k, v]) => [k, JSON.stringify(v)]));
    return p.Namespace === namespace && p.MetricName === metricName && JSON.stringify(dims) === JSON.stringify(want);
  });
  assert.equal(found.length, 1, `one alarm on ${namespace}/${metricName} ${JSON.stringify(dimensions)}`);
  return found[0]![1].Properties as Record<string, unknown>;
}

/** CloudFormation `QueueName` of a queue's GetAtt, as alarm dimensions carry it. */
const queueNameOf = (id: string) => ({ 'Fn::GetAtt': [id, 'QueueName'] }) as unknown as string;
const queueIds = (entity: string) => {
  const prefix = entity.charAt(0).toUpperCase() + entity.slice(1) + 'Queue';
  const ids = Object.keys(resources).filter((id) => resources[id]!.Type === 'AWS::SQS::Queue' && id.startsWith(prefix));
  return {
    queue: ids.find((id) => !id.startsWith(`${prefix}DeadLetterQueue`))!,
    dlq: ids.find((id) => id.startsWith(`${prefix}DeadLetterQueue`))!,
  };
};

describe('alarms', () => {
  it('are 21: 2 per queue, 2 per function, poller lag and silence, poll failures, mismatches, re-authorisation', () => {
    assert.equal(alarms.length, 2 * ENTITY_QUEUES.length + 2 * FUNCTION_NAMES.length + 5);
  });

  it('all notify the one SNS topic, and only it', () => {
    for (const [id, r] of alarms) {
      assert.deepEqual(r.Properties.AlarmActions, [{ Ref: topicId }], id);
      assert.ok(String(r.Properties.AlarmDescription).length > 20, `${id} explains itself`);
      assert.match(String(r.Properties.AlarmName), /^TestSync-[A-Za-z-]+$/, `${id} has a readable name`);
    }
  });

  for (const { entity } of ENTITY_QUEUES) {
    it(`${entity} DLQ: any visible message`, () => {
      const p = alarm('AWS/SQS', 'ApproximateNumberOfMessagesVisible', { QueueName: queueNameOf(queueIds(entity).dlq) });
      assert.equal(p.ComparisonOperator, 'GreaterThanThreshold');
      assert.equal(p.Threshold, 0);
      assert.equal(p.Statistic, 'Maximum');
      assert.equal(p.EvaluationPeriods, 1);
      assert.equal(p.TreatMissingData, 'notBreaching');
    });

    it(`${entity} queue: oldest message older than 15 minutes`, () => {
      const p = alarm('AWS/SQS', 'ApproximateAgeOfOldestMessage', { QueueName: queueNameOf(queueIds(entity).queue) });
      assert.equal(p.ComparisonOperator, 'GreaterThanThreshold');
      assert.equal(p.Threshold, OLDEST_MESSAGE_AGE_THRESHOLD_SECONDS);
      assert.equal(OLDEST_MESSAGE_AGE_THRESHOLD_SECONDS, 900);
      assert.equal(p.Statistic, 'Maximum');
    });
  }

  for (const name of FUNCTION_NAMES) {
    for (const metric of ['Errors', 'Throttles']) {
      it(`${name}: ${metric} > 0`, () => {
        const p = alarm('AWS/Lambda', metric, {
          FunctionName: { Ref: functionId(resources, name) } as unknown as string,
        });
        assert.equal(p.ComparisonOperator, 'GreaterThanThreshold');
        assert.equal(p.Threshold, 0);
        assert.equal(p.Statistic, 'Sum');
        assert.equal(p.TreatMissingData, 'notBreaching');
      });
    }
  }

  it('names are unique and say what they watch', () => {
    const names = alarms.map(([, r]) => r.Properties.AlarmName as string).sort();
    assert.equal(new Set(names).size, names.length);
    for (const n of ['TestSync-patientsDeadLetters', 'TestSync-invoicesOldestMessage', 'TestSync-invoice-syncErrors',
      'TestSync-pollerThrottles', 'TestSync-PollerLag', 'TestSync-ReconciliationMismatches', 'TestSync-ReckonReauthorizationNeeded']) {
      assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
    }
  });

  /** The one alarm whose Metrics Insights query reads `metricName` per clinic. */
  function perClinicAlarm(metricName: string): Record<string, unknown> {
    const found = alarms.filter(([, r]) =>
      ((r.Properties.Metrics ?? []) as { Expression?: string }[]).some((m) => m.Expression?.includes(`(${metricName})`)),
    );
    assert.equal(found.length, 1, `one per-clinic alarm on ${metricName}`);
    return found[0]![1].Properties as Record<string, unknown>;
  }

  /** Its query and period. */
  function query(p: Record<string, unknown>): { expression: string; period: number } {
    const metrics = p.Metrics as { Expression: string; Period: number; ReturnData?: boolean }[];
    assert.equal(metrics.length, 1, 'one query, no other metrics');
    return { expression: metrics[0]!.Expression, period: metrics[0]!.Period };
  }

  it('poller lag: WatermarkAgeSeconds > 15 min per clinic; a clinic that stops reporting is not lag', () => {
    const p = perClinicAlarm(METRICS.watermarkAgeSeconds);
    assert.equal(p.ComparisonOperator, 'GreaterThanThreshold');
    assert.equal(p.Threshold, WATERMARK_AGE_THRESHOLD_SECONDS);
    assert.equal(WATERMARK_AGE_THRESHOLD_SECONDS, 900);
    assert.match(query(p).expression, /^SELECT MAX\(WatermarkAgeSeconds\)/);
    assert.equal(query(p).period, 300);
    assert.equal(p.TreatMissingData, 'notBreaching');
  });

  it('poller silent: no WatermarkAgeSeconds from any clinic in 5 minutes, missing data is breaching', () => {
    const p = alarm(METRIC_NAMESPACE, METRICS.watermarkAgeSeconds, {});
    assert.equal(p.Statistic, 'SampleCount');
    assert.equal(p.ComparisonOperator, 'LessThanThreshold');
    assert.equal(p.Threshold, 1);
    assert.equal(p.Period, 300);
    assert.equal(p.TreatMissingData, 'breaching');
    assert.equal(p.AlarmName, 'TestSync-PollerSilent');
  });

  it('reconciliation mismatches > 0 per clinic', () => {
    const p = perClinicAlarm(METRICS.reconciliationMismatches);
    assert.equal(p.ComparisonOperator, 'GreaterThanThreshold');
    assert.equal(p.Threshold, 0);
    assert.equal(query(p).period, 3600);
    assert.equal(p.TreatMissingData, 'notBreaching');
  });

  it('Reckon re-authorisation needed >= 1 per clinic', () => {
    const p = perClinicAlarm(METRICS.reckonReauthorizationNeeded);
    assert.equal(p.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
    assert.equal(p.Threshold, 1);
    assert.equal(p.TreatMissingData, 'notBreaching');
  });

  it('poll failures: 3 failed polls of one clinic in 5 minutes', () => {
    const p = perClinicAlarm(METRICS.pollFailures);
    assert.equal(p.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
    assert.equal(p.Threshold, 3);
    assert.match(query(p).expression, /^SELECT SUM\(PollFailures\)/);
  });

  it('name the clinic: each clinic is a contributor (GROUP BY TenantId), so one added later needs no deploy', () => {
    const custom = alarms.filter(([, r]) => r.Properties.Metrics !== undefined);
    assert.equal(custom.length, 4);
    for (const [, r] of custom) {
      const { expression } = query(r.Properties);
      assert.ok(
        expression.endsWith(`FROM SCHEMA("${METRIC_NAMESPACE}", ${TENANT_DIMENSION}) GROUP BY ${TENANT_DIMENSION}`),
        expression,
      );
      assert.equal(r.Properties.Namespace, undefined, 'no single all-clinics series');
      assert.match(r.Properties.AlarmDescription as string, /names the clinic/);
    }
  });

  it('metric names and namespace are the exported constants the Rust side matches', () => {
    assert.equal(METRIC_NAMESPACE, 'ClinikoReckonSync');
    assert.deepEqual(METRICS, {
      watermarkAgeSeconds: 'WatermarkAgeSeconds',
      reconciliationMismatches: 'ReconciliationMismatches',
      reckonReauthorizationNeeded: 'ReckonReauthorizationNeeded',
      pollFailures: 'PollFailures',
    });
    assert.equal(TENANT_DIMENSION, 'TenantId');
  });
});
