import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Match, Template } from 'aws-cdk-lib/assertions';
import {
  BUSINESS_TIME_ZONE,
  ENTITY_QUEUES,
  ENV,
  FUNCTION_NAMES,
  FUNCTION_TIMEOUT_SECONDS,
  LOG_RETENTION_DAYS,
  TTL_ATTRIBUTE,
} from '../lib/constants';
import { MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_FACTOR } from '../lib/entity-queue';
import { REPORT_RETENTION_DAYS, WORKER_EVENT_SOURCE } from '../lib/sync-stack';
import { buildStack, findOne, functionId, getAttArn, Resource } from './helpers';

const { stack } = buildStack();
const template = Template.fromStack(stack);
const resources = template.toJSON().Resources as Record<string, Resource>;
const keyId = findOne(resources, 'AWS::KMS::Key', () => true);
const keyArn = { 'Fn::GetAtt': [keyId, 'Arn'] };

/** Logical ids of an entity's work queue and DLQ (construct ids PatientsQueue/Queue, .../DeadLetterQueue). */
function queueIds(entity: string): { queue: string; dlq: string } {
  const prefix = entity.charAt(0).toUpperCase() + entity.slice(1) + 'Queue';
  const ids = Object.keys(resources).filter((id) => resources[id]!.Type === 'AWS::SQS::Queue' && id.startsWith(prefix));
  const dlq = ids.find((id) => id.startsWith(`${prefix}DeadLetterQueue`));
  const queue = ids.find((id) => !id.startsWith(`${prefix}DeadLetterQueue`));
  assert.ok(queue && dlq, `queues of ${entity}: ${ids.join(', ')}`);
  return { queue, dlq };
}

describe('resource inventory', () => {
  it('has exactly the expected resources of each type', () => {
    const expected: Record<string, number> = {
      'AWS::KMS::Key': 1,
      'AWS::DynamoDB::Table': 1,
      'AWS::SQS::Queue': 6,
      'AWS::SQS::QueuePolicy': 6,
      'AWS::Lambda::Function': 5,
      'AWS::Lambda::EventSourceMapping': 3,
      'AWS::Logs::LogGroup': 5,
      'AWS::IAM::Role': 7, // 5 functions + 2 schedules
      'AWS::IAM::Policy': 5,
      'AWS::Scheduler::Schedule': 2,
      'AWS::SecretsManager::Secret': 1,
      'AWS::S3::Bucket': 2,
      'AWS::S3::BucketPolicy': 2,
      'AWS::SNS::Topic': 1,
      'AWS::SNS::TopicPolicy': 1,
      'AWS::SNS::Subscription': 1,
      'AWS::CloudWatch::Alarm': 21,
      'AWS::CloudWatch::Dashboard': 1,
    };
    for (const [type, count] of Object.entries(expected)) template.resourceCountIs(type, count);
    const types = new Set(Object.values(resources).map((r) => r.Type));
    types.delete('AWS::CDK::Metadata');
    assert.deepEqual([...types].sort(), Object.keys(expected).sort(), 'no unexpected resource types');
  });

  it('takes the alarm email as a parameter', () => {
    template.hasParameter('AlarmEmail', { Type: 'String', AllowedPattern: Match.anyValue() });
  });
});

describe('encryption key', () => {
  it('rotates and is retained', () => {
    template.hasResource('AWS::KMS::Key', {
      Properties: { EnableKeyRotation: true },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('lets CloudWatch alarms publish to the encrypted topic, for this account only', () => {
    template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
            Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } },
          }),
        ]),
      },
    });
  });
});

describe('DynamoDB table', () => {
  it('is a pk/sk string table with gsi1, on demand, PITR, KMS, TTL, retained', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: Match.arrayWith([
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
          { AttributeName: 'gsi1pk', AttributeType: 'S' },
          { AttributeName: 'gsi1sk', AttributeType: 'S' },
        ]),
        GlobalSecondaryIndexes: [
          {
            IndexName: 'gsi1',
            KeySchema: [
              { AttributeName: 'gsi1pk', KeyType: 'HASH' },
              { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyArn },
        TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
        DeletionProtectionEnabled: true,
      },
    });
  });
});

describe('SQS queues', () => {
  for (const { entity, consumer } of ENTITY_QUEUES) {
    it(`${entity}: KMS, DLQ after ${MAX_RECEIVE_COUNT} receives, visibility 6x ${consumer}'s timeout`, () => {
      const { queue, dlq } = queueIds(entity);
      const q = resources[queue]!.Properties;
      assert.deepEqual(q.KmsMasterKeyId, keyArn);
      assert.deepEqual(q.RedrivePolicy, { deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] }, maxReceiveCount: 5 });
      const timeout = FUNCTION_TIMEOUT_SECONDS[consumer];
      assert.equal(q.VisibilityTimeout, timeout * VISIBILITY_TIMEOUT_FACTOR);
      assert.ok(q.VisibilityTimeout >= 6 * timeout);
      // and the consumer's real timeout is the one the queue was sized from
      assert.equal(resources[functionId(resources, consumer)]!.Properties.Timeout, timeout);

      const d = resources[dlq]!.Properties;
      assert.deepEqual(d.KmsMasterKeyId, keyArn);
      assert.equal(d.MessageRetentionPeriod, 14 * 24 * 3600);
      // the DLQ must outlive the source queue's retention (enqueue time is kept on redrive)
      assert.ok(d.MessageRetentionPeriod > q.MessageRetentionPeriod);
    });

    it(`${entity}: queue and DLQ refuse requests without TLS`, () => {
      const { queue, dlq } = queueIds(entity);
      for (const id of [queue, dlq]) {
        template.hasResourceProperties('AWS::SQS::QueuePolicy', {
          Queues: [{ Ref: id }],
          PolicyDocument: {
            Statement: Match.arrayWith([
              Match.objectLike({
                Effect: 'Deny',
                Action: 'sqs:*',
                Condition: { Bool: { 'aws:SecureTransport': 'false' } },
              }),
            ]),
          },
        });
      }
    });

    it(`${entity}: event source mapping to ${consumer} with partial batch responses`, () => {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: getAttArnObj(queueIds(entity).queue),
        FunctionName: { Ref: functionId(resources, consumer) },
        BatchSize: WORKER_EVENT_SOURCE.batchSize,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: WORKER_EVENT_SOURCE.maxConcurrency },
      });
    });
  }

  it('event sources: batch 10, max concurrency 4', () => {
    assert.equal(WORKER_EVENT_SOURCE.batchSize, 10);
    assert.equal(WORKER_EVENT_SOURCE.maxConcurrency, 4);
    assert.equal(WORKER_EVENT_SOURCE.reportBatchItemFailures, true);
  });
});

function getAttArnObj(id: string) {
  return JSON.parse(getAttArn(id)) as unknown;
}

describe('Lambda functions', () => {
  for (const name of FUNCTION_NAMES) {
    it(`${name}: ARM64 provided.al2023 from its bootstrap.zip, own log group (90 days), timeout`, () => {
      const fn = resources[functionId(resources, name)]!;
      const p = fn.Properties;
      assert.equal(p.Runtime, 'provided.al2023');
      assert.deepEqual(p.Architectures, ['arm64']);
      assert.equal(p.Handler, 'bootstrap');
      assert.equal(p.Timeout, FUNCTION_TIMEOUT_SECONDS[name]);
      assert.match(p.Code.S3Key, /\.zip$/);
      const logGroupId = p.LoggingConfig.LogGroup.Ref as string;
      assert.equal(resources[logGroupId]!.Type, 'AWS::Logs::LogGroup');
      assert.equal(resources[logGroupId]!.Properties.RetentionInDays, LOG_RETENTION_DAYS);
      // no AWS managed policies (AWSLambdaBasicExecutionRole): logs go to its own group only
      const roleId = p.Role['Fn::GetAtt'][0] as string;
      assert.equal(resources[roleId]!.Properties.ManagedPolicyArns, undefined);
    });
  }

  it('each function has a distinct asset', () => {
    const keys = FUNCTION_NAMES.map((n) => resources[functionId(resources, n)]!.Properties.Code.S3Key as string);
    assert.equal(new Set(keys).size, FUNCTION_NAMES.length);
  });

  it('environment variables: each function gets exactly its contract', () => {
    const common = [ENV.tableName, ENV.tenantSecretPrefix, ENV.rustLog];
    const reckon = [ENV.reckonAppSecretArn];
    const expected: Record<string, string[]> = {
      poller: [...common, ENV.patientsQueueUrl, ENV.productsQueueUrl, ENV.invoicesQueueUrl],
      'patient-sync': [...common, ...reckon, ENV.maxReceiveCount],
      'product-sync': [...common, ...reckon, ENV.maxReceiveCount],
      'invoice-sync': [...common, ...reckon, ENV.maxReceiveCount],
      reconciler: [...common, ...reckon, ENV.reportBucket, ENV.patientsQueueUrl, ENV.productsQueueUrl, ENV.invoicesQueueUrl],
    };
    for (const name of FUNCTION_NAMES) {
      const vars = resources[functionId(resources, name)]!.Properties.Environment.Variables as Record<string, unknown>;
      assert.deepEqual(Object.keys(vars).sort(), expected[name]!.sort(), name);
      assert.equal(vars[ENV.tenantSecretPrefix], 'cliniko-reckon/tenants/');
      assert.equal(vars[ENV.rustLog], 'info');
      if (name.endsWith('-sync')) {
        assert.equal(vars[ENV.maxReceiveCount], String(MAX_RECEIVE_COUNT), `${name}: parks on the last receive`);
      }
    }
  });

  it('environment values point at the right resources', () => {
    const poller = resources[functionId(resources, 'poller')]!.Properties.Environment.Variables;
    const reconciler = resources[functionId(resources, 'reconciler')]!.Properties.Environment.Variables;
    for (const { entity, queueUrlEnv } of ENTITY_QUEUES) {
      assert.deepEqual(poller[queueUrlEnv], { Ref: queueIds(entity).queue });
      assert.deepEqual(reconciler[queueUrlEnv], { Ref: queueIds(entity).queue }, 'the reconciler queues repairs');
    }
    const tableId = findOne(resources, 'AWS::DynamoDB::Table', () => true);
    assert.deepEqual(poller[ENV.tableName], { Ref: tableId });
    const secret = (desc: string) => findOne(resources, 'AWS::SecretsManager::Secret', (p) => p.Description.startsWith(desc));
    const rec = resources[functionId(resources, 'reconciler')]!.Properties.Environment.Variables;
    assert.deepEqual(rec[ENV.reckonAppSecretArn], { Ref: secret('Reckon One app') });
    const reports = findOne(resources, 'AWS::S3::Bucket', (p) => p.LoggingConfiguration !== undefined);
    assert.deepEqual(rec[ENV.reportBucket], { Ref: reports });
  });

  it('the secret prefix and RUST_LOG come from props (context in bin/app.ts)', () => {
    const t = Template.fromStack(buildStack({ tenantSecretPrefix: 'acme/clinics/', rustLog: 'debug' }).stack);
    t.allResourcesProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ TENANT_SECRET_PREFIX: 'acme/clinics/', RUST_LOG: 'debug' }) },
    });
  });

  it('rejects a secret prefix that is not a secret-name folder', () => {
    assert.throws(() => buildStack({ tenantSecretPrefix: 'a b/' }), /tenantSecretPrefix 'a b\/'/);
    assert.throws(() => buildStack({ tenantSecretPrefix: 'no-slash' }), /tenantSecretPrefix/);
  });

  it('serves every clinic without a per-clinic resource: no TENANT_ID, one dashboard', () => {
    for (const name of FUNCTION_NAMES) {
      const vars = resources[functionId(resources, name)]!.Properties.Environment.Variables as Record<string, unknown>;
      assert.equal(vars.TENANT_ID, undefined, name);
    }
    assert.equal(Object.values(resources).filter((r) => r.Type === 'AWS::CloudWatch::Dashboard').length, 1);
    const body = JSON.stringify(Object.values(resources).find((r) => r.Type === 'AWS::CloudWatch::Dashboard')!.Properties);
    for (const metric of ['WatermarkAgeSeconds', 'PollFailures', 'ReconciliationMismatches', 'ReckonReauthorizationNeeded']) {
      const searches = body.split("SEARCH('").slice(1).map((part) => part.split("'")[0]!);
      assert.ok(
        searches.some((q) => q.startsWith('{ClinikoReckonSync,TenantId} MetricName=') && q.includes(metric)),
        `per-tenant ${metric}`,
      );
    }
    assert.match(body, /ApproximateAgeOfOldestMessage/);
  });
});

describe('schedules', () => {
  it('poller every minute, no retries piling up', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 minute)',
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'ENABLED',
      Target: Match.objectLike({
        Arn: getAttArnObj(functionId(resources, 'poller')),
        RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 },
      }),
    });
  });

  it(`reconciler nightly at 02:00 ${BUSINESS_TIME_ZONE}`, () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 2 * * ? *)',
      ScheduleExpressionTimezone: 'Australia/Sydney',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: Match.objectLike({ Arn: getAttArnObj(functionId(resources, 'reconciler')) }),
    });
  });

  it('the poller schedule has no time zone (a rate needs none)', () => {
    const id = findOne(resources, 'AWS::Scheduler::Schedule', (p) => p.ScheduleExpression === 'rate(1 minute)');
    assert.equal(resources[id]!.Properties.ScheduleExpressionTimezone, undefined);
  });
});

describe('secrets', () => {
  // Only the consultancy's app: each clinic's secrets are written by `tenants add --aws`.
  for (const [desc, fields] of [['Reckon One app credentials', ['client_id', 'client_secret', 'subscription_key']]] as const) {
    it(`${desc}: KMS-encrypted, JSON fields ${fields.join(', ')}, no value in the template`, () => {
      const id = findOne(resources, 'AWS::SecretsManager::Secret', (p) => p.Description.startsWith(desc));
      const p = resources[id]!.Properties;
      assert.deepEqual(p.KmsKeyId, keyArn);
      const value = JSON.parse(p.SecretString as string) as Record<string, string>;
      assert.deepEqual(Object.keys(value).sort(), [...fields]);
      assert.ok(Object.values(value).every((v) => v === ''), 'placeholders only');
    });
  }
});

describe('S3 buckets', () => {
  const reportsId = findOne(resources, 'AWS::S3::Bucket', (p) => p.LoggingConfiguration !== undefined);
  const logsId = findOne(resources, 'AWS::S3::Bucket', (p) => p.LoggingConfiguration === undefined);
  const blockAll = { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true };

  it('reports: KMS, no public access, lifecycle expiry, access logs, retained, unversioned', () => {
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            {
              BucketKeyEnabled: true,
              ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: keyArn },
            },
          ],
        },
        PublicAccessBlockConfiguration: blockAll,
        LifecycleConfiguration: { Rules: [Match.objectLike({ ExpirationInDays: REPORT_RETENTION_DAYS, Status: 'Enabled' })] },
        LoggingConfiguration: { DestinationBucketName: { Ref: logsId }, LogFilePrefix: 'reports/' },
      },
    });
    assert.equal(resources[reportsId]!.Properties.VersioningConfiguration, undefined);
  });

  it('access logs: SSE-S3 (what log delivery supports), no public access, expiry', () => {
    const p = resources[logsId]!.Properties;
    assert.equal(p.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm, 'AES256');
    assert.deepEqual(p.PublicAccessBlockConfiguration, blockAll);
    assert.ok(p.LifecycleConfiguration.Rules[0].ExpirationInDays > 0);
  });

  for (const which of ['reports', 'access logs']) {
    it(`${which}: bucket policy denies requests without TLS`, () => {
      const id = which === 'reports' ? reportsId : logsId;
      template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: id },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 's3:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    });
  }

  it('access logs are delivered by the S3 logging service through the bucket policy, from the reports bucket only', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logsId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'logging.s3.amazonaws.com' },
            Action: 's3:PutObject',
            Condition: Match.objectLike({ ArnLike: { 'aws:SourceArn': getAttArnObj(reportsId) } }),
          }),
        ]),
      },
    });
  });
});

describe('SNS alarm topic', () => {
  it('is KMS-encrypted, refuses non-TLS publishing, emails the AlarmEmail parameter', () => {
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: keyArn });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: { Ref: 'AlarmEmail' } });
  });
});
