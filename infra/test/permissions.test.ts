import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { ENTITY_QUEUES, FUNCTION_NAMES } from '../lib/constants';
import { actionMap, buildStack, findOne, functionId, getAttArn, ref, Resource, roleStatements } from './helpers';

const { stack } = buildStack();
const resources = Template.fromStack(stack).toJSON().Resources as Record<string, Resource>;

const tableId = findOne(resources, 'AWS::DynamoDB::Table', () => true);
const keyId = findOne(resources, 'AWS::KMS::Key', () => true);
const secret = (desc: string) => findOne(resources, 'AWS::SecretsManager::Secret', (p) => p.Description.startsWith(desc));
const reckonApp = ref(secret('Reckon One app'));
/** Every tenant's secret of one kind under the default prefix, as the template renders it. */
const tenantSecrets = (name: string) =>
  JSON.stringify({
    'Fn::Join': [
      '',
      ['arn:', { Ref: 'AWS::Partition' }, `:secretsmanager:ap-southeast-2:123456789012:secret:cliniko-reckon/tenants/*/${name}-??????`],
    ],
  });
const cliniko = tenantSecrets('cliniko');
const tokens = tenantSecrets('reckon-tokens');
const reportsId = findOne(resources, 'AWS::S3::Bucket', (p) => p.LoggingConfiguration !== undefined);
const queueId = (entity: string) => {
  const prefix = entity.charAt(0).toUpperCase() + entity.slice(1) + 'Queue';
  return Object.keys(resources).find(
    (id) => resources[id]!.Type === 'AWS::SQS::Queue' && id.startsWith(prefix) && !id.startsWith(`${prefix}DeadLetterQueue`),
  )!;
};

const table = getAttArn(tableId);
const tableIndexes = JSON.stringify({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId, 'Arn'] }, '/index/*']] });
const key = getAttArn(keyId);

function permissionsOf(name: string): Map<string, Set<string>> {
  const fn = resources[functionId(resources, name)]!;
  const roleId = fn.Properties.Role['Fn::GetAtt'][0] as string;
  return actionMap(roleStatements(resources, roleId));
}

function logGroupOf(name: string): string {
  return getAttArn(resources[functionId(resources, name)]!.Properties.LoggingConfig.LogGroup.Ref as string);
}

/** Asserts the role's permissions are exactly `expected` (action -> resources), nothing more. */
function assertExactly(name: string, expected: Record<string, string[]>): void {
  const actual = permissionsOf(name);
  const toObj = (m: Map<string, Set<string>>) =>
    Object.fromEntries([...m.entries()].map(([a, rs]) => [a, [...rs].sort()]).sort(([a], [b]) => (a! < b! ? -1 : 1)));
  const exp = new Map(Object.entries(expected).map(([a, rs]) => [a, new Set(rs)]));
  assert.deepEqual(toObj(actual), toObj(exp), `permissions of ${name}`);
}

const logs = (name: string) => ({
  'logs:CreateLogStream': [logGroupOf(name)],
  'logs:PutLogEvents': [logGroupOf(name)],
});
const both = [table, tableIndexes];
const appSecretRead = {
  'secretsmanager:DescribeSecret': [reckonApp],
  'secretsmanager:GetSecretValue': [reckonApp],
};
/** From CDK's grant to send to the encrypted queues. */
const keyUse = {
  'kms:Decrypt': [key],
  'kms:Encrypt': [key],
  'kms:GenerateDataKey*': [key],
  'kms:ReEncrypt*': [key],
};

/** The `dynamodb:LeadingKeys` partitions each DynamoDB action of a function is limited to. */
function partitionsOf(name: string): Map<string, string[]> {
  const roleId = resources[functionId(resources, name)]!.Properties.Role['Fn::GetAtt'][0] as string;
  const out = new Map<string, string[]>();
  for (const st of roleStatements(resources, roleId)) {
    for (const action of [st.Action].flat() as string[]) {
      if (!action.startsWith('dynamodb:')) continue;
      const leading = st.Condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'] as string[] | undefined;
      assert.ok(leading, `${name}: ${action} without dynamodb:LeadingKeys`);
      out.set(action, [...(out.get(action) ?? []), ...leading].sort());
    }
  }
  return out;
}

describe('least-privilege permissions of each function', () => {
  it('poller: get/query its partitions, write watermarks and failures, send to the three queues, read Cliniko keys', () => {
    assertExactly('poller', {
      ...logs('poller'),
      'dynamodb:GetItem': both,
      'dynamodb:Query': both,
      'dynamodb:PutItem': both,
      'dynamodb:UpdateItem': both,
      'sqs:SendMessage': ENTITY_QUEUES.map((q) => getAttArn(queueId(q.entity))),
      'sqs:GetQueueAttributes': ENTITY_QUEUES.map((q) => getAttArn(queueId(q.entity))),
      'sqs:GetQueueUrl': ENTITY_QUEUES.map((q) => getAttArn(queueId(q.entity))),
      'secretsmanager:GetSecretValue': [cliniko],
      ...keyUse,
    });
    const partitions = partitionsOf('poller');
    assert.deepEqual(partitions.get('dynamodb:PutItem'), ['T#*#FAIL', 'T#*#WM']);
    assert.deepEqual(partitions.get('dynamodb:UpdateItem'), ['T#*#FAIL', 'T#*#WM']);
    assert.deepEqual(partitions.get('dynamodb:GetItem'), ['T#*#FAIL', 'T#*#WM', 'T#*#XREF#*', 'TENANTS']);
  });

  for (const { entity, consumer } of ENTITY_QUEUES) {
    it(`${consumer}: tenant state read/write, the directory read and status only, tenants' secrets, only the ${entity} queue`, () => {
      const q = getAttArn(queueId(entity));
      assertExactly(consumer, {
        ...logs(consumer),
        'dynamodb:GetItem': both,
        'dynamodb:Query': both,
        'dynamodb:PutItem': both,
        'dynamodb:UpdateItem': both,
        'dynamodb:DeleteItem': both,
        'dynamodb:ConditionCheckItem': both,
        ...appSecretRead,
        'secretsmanager:GetSecretValue': [cliniko, tokens, reckonApp],
        'secretsmanager:PutSecretValue': [tokens],
        'sqs:ReceiveMessage': [q],
        'sqs:DeleteMessage': [q],
        'sqs:ChangeMessageVisibility': [q],
        'sqs:GetQueueAttributes': [q],
        'sqs:GetQueueUrl': [q],
        'kms:Decrypt': [key],
        'kms:GenerateDataKey': [key],
      });
      const partitions = partitionsOf(consumer);
      for (const write of ['dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem']) {
        assert.deepEqual(partitions.get(write), ['T#*'], `${consumer}: ${write} never touches the directory`);
      }
      assert.deepEqual(partitions.get('dynamodb:UpdateItem'), ['T#*', 'TENANTS'], 'status of its tenant');
    });
  }

  it('reconciler: reads, partition-scoped writes, tenants\' secrets, put report objects, send repairs', () => {
    const objects = JSON.stringify({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [reportsId, 'Arn'] }, '/reports/*']] });
    const queues = ENTITY_QUEUES.map((q) => getAttArn(queueId(q.entity)));
    assertExactly('reconciler', {
      ...logs('reconciler'),
      'dynamodb:GetItem': both,
      'dynamodb:Query': both,
      'dynamodb:PutItem': both,
      'dynamodb:DeleteItem': both,
      ...appSecretRead,
      'secretsmanager:GetSecretValue': [cliniko, tokens, reckonApp],
      'secretsmanager:PutSecretValue': [tokens],
      's3:PutObject': [objects],
      'sqs:SendMessage': queues,
      'sqs:GetQueueAttributes': queues,
      'sqs:GetQueueUrl': queues,
      ...keyUse,
      'kms:GenerateDataKey': [key],
    });
  });

  it('reconciler: its table writes are limited to the lease, cross-reference, name and audit partitions', () => {
    const partitions = partitionsOf('reconciler');
    for (const write of ['dynamodb:PutItem', 'dynamodb:DeleteItem']) {
      assert.deepEqual(partitions.get(write), ['T#*#AUDIT#*', 'T#*#LEASE', 'T#*#XNAME#*', 'T#*#XREF#*']);
    }
    assert.ok(!partitions.has('dynamodb:UpdateItem'));
  });

  it('no function may scan the table or write the tenant directory beyond a status', () => {
    for (const name of FUNCTION_NAMES) {
      const partitions = partitionsOf(name);
      assert.ok(!partitions.has('dynamodb:Scan') && !partitions.has('dynamodb:BatchWriteItem'), name);
      for (const write of ['dynamodb:PutItem', 'dynamodb:DeleteItem']) {
        assert.ok(!(partitions.get(write) ?? []).includes('TENANTS'), `${name}: ${write} on TENANTS`);
      }
    }
  });

  it('no function may put metric data (EMF log lines carry the metrics) or use wildcards for all resources', () => {
    for (const name of FUNCTION_NAMES) {
      const perms = permissionsOf(name);
      assert.ok(!perms.has('cloudwatch:PutMetricData'), name);
      for (const [action, rs] of perms) assert.ok(!rs.has('"*"'), `${name}: ${action} on *`);
    }
  });
});

describe('scheduler roles', () => {
  for (const name of ['poller', 'reconciler']) {
    it(`${name} schedule: its role may invoke exactly ${name}, assumed only by this account's schedules`, () => {
      const fnId = functionId(resources, name);
      const scheduleId = findOne(
        resources,
        'AWS::Scheduler::Schedule',
        (p) => JSON.stringify(p.Target.Arn) === getAttArn(fnId),
      );
      const roleId = resources[scheduleId]!.Properties.Target.RoleArn['Fn::GetAtt'][0] as string;
      const role = resources[roleId]!.Properties;
      assert.deepEqual(role.AssumeRolePolicyDocument.Statement, [
        {
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Service: 'scheduler.amazonaws.com' },
          Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } },
        },
      ]);
      const perms = actionMap(roleStatements(resources, roleId));
      assert.deepEqual([...perms.keys()], ['lambda:InvokeFunction']);
      assert.deepEqual([...perms.get('lambda:InvokeFunction')!], [getAttArn(fnId)]);
    });
  }
});
