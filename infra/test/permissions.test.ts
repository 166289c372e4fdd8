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
const cliniko = ref(secret('Cliniko'));
const reckonApp = ref(secret('Reckon One app'));
const tokens = ref(secret('Reckon One OAuth'));
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
const tableRead = {
  'dynamodb:BatchGetItem': [table, tableIndexes],
  'dynamodb:ConditionCheckItem': [table, tableIndexes],
  'dynamodb:DescribeTable': [table, tableIndexes],
  'dynamodb:GetItem': [table, tableIndexes],
  'dynamodb:GetRecords': [table, tableIndexes],
  'dynamodb:GetShardIterator': [table, tableIndexes],
  'dynamodb:Query': [table, tableIndexes],
  'dynamodb:Scan': [table, tableIndexes],
};
const tableWrite = {
  'dynamodb:BatchWriteItem': [table, tableIndexes],
  'dynamodb:DeleteItem': [table, tableIndexes],
  'dynamodb:PutItem': [table, tableIndexes],
  'dynamodb:UpdateItem': [table, tableIndexes],
};
const secretRead = (...arns: string[]) => ({
  'secretsmanager:DescribeSecret': arns,
  'secretsmanager:GetSecretValue': arns,
});
const keyUse = {
  'kms:Decrypt': [key],
  'kms:DescribeKey': [key],
  'kms:Encrypt': [key],
  'kms:GenerateDataKey*': [key],
  'kms:ReEncrypt*': [key],
};

describe('least-privilege permissions of each function', () => {
  it('poller: read the table, write watermarks (put/update only), send to the three queues, read the Cliniko secret', () => {
    assertExactly('poller', {
      ...logs('poller'),
      ...tableRead,
      'dynamodb:PutItem': [table],
      'dynamodb:UpdateItem': [table],
      'sqs:SendMessage': ENTITY_QUEUES.map((q) => getAttArn(queueId(q.entity))),
      'sqs:GetQueueAttributes': ENTITY_QUEUES.map((q) => getAttArn(queueId(q.entity))),
      'sqs:GetQueueUrl': ENTITY_QUEUES.map((q) => getAttArn(queueId(q.entity))),
      ...secretRead(cliniko),
      ...keyUse,
    });
  });

  for (const { entity, consumer } of ENTITY_QUEUES) {
    it(`${consumer}: table read/write, read both secrets, read/write tokens, consume only the ${entity} queue`, () => {
      const q = getAttArn(queueId(entity));
      assertExactly(consumer, {
        ...logs(consumer),
        ...tableRead,
        ...tableWrite,
        ...secretRead(cliniko, reckonApp, tokens),
        'secretsmanager:PutSecretValue': [tokens],
        'sqs:ReceiveMessage': [q],
        'sqs:DeleteMessage': [q],
        'sqs:ChangeMessageVisibility': [q],
        'sqs:GetQueueAttributes': [q],
        'sqs:GetQueueUrl': [q],
        ...keyUse,
        // from the explicit token write (redundant with GenerateDataKey* from the queue/table grants)
        'kms:GenerateDataKey': [key],
      });
    });
  }

  it('reconciler: table read, partition-scoped writes, both secrets, tokens read/write, put report objects, send repairs', () => {
    const objects = JSON.stringify({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [reportsId, 'Arn'] }, '/*']] });
    const queues = ENTITY_QUEUES.map((q) => getAttArn(queueId(q.entity)));
    assertExactly('reconciler', {
      ...logs('reconciler'),
      ...tableRead,
      'dynamodb:PutItem': [table],
      'dynamodb:DeleteItem': [table],
      ...secretRead(cliniko, reckonApp, tokens),
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
    const roleId = resources[functionId(resources, 'reconciler')]!.Properties.Role['Fn::GetAtt'][0] as string;
    const writes = roleStatements(resources, roleId).filter((st) =>
      [st.Action].flat().some((a: string) => a === 'dynamodb:PutItem' || a === 'dynamodb:DeleteItem'),
    );
    assert.equal(writes.length, 1, JSON.stringify(writes));
    const leading = writes[0]!.Condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'];
    const text = JSON.stringify(leading);
    for (const partition of ['#LEASE', '#XREF#*', '#XNAME#*', '#AUDIT#*']) {
      assert.ok(text.includes(partition), `${partition} in ${text}`);
    }
    assert.equal((leading as unknown[]).length, 4, text);
    assert.ok(!text.includes('#WM') && !text.includes('INTENT'), 'no watermark or intent writes');
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
