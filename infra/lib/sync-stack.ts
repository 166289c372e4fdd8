import * as path from 'node:path';
import { ArnFormat, CfnOutput, CfnParameter, Duration, RemovalPolicy, SecretValue, Stack, StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { SyncAlarms } from './alarms';
import {
  BUSINESS_TIME_ZONE,
  DEFAULT_TENANT_SECRET_PREFIX,
  ENTITY_QUEUES,
  ENV,
  EntityType,
  FUNCTION_TIMEOUT_SECONDS,
  FunctionName,
  TENANTS_PARTITION,
} from './constants';
import { SyncDashboard } from './dashboard';
import { EntityQueue, MAX_RECEIVE_COUNT } from './entity-queue';
import { addNagSuppressions, NagAcknowledgement } from './nag-suppressions';
import { RustFunction } from './rust-function';
import { FunctionSchedule } from './schedules';
import { StateTable } from './state-table';

/** Repository root (this file is infra/lib/sync-stack.ts). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** cargo lambda's default output directory, relative to the repository root. */
export const DEFAULT_LAMBDA_ASSETS_DIR = path.join('target', 'lambda');

/**
 * Event source mapping settings shared by the three workers.
 *
 * The queues are shared by every tenant. Isolation between clinics (docs/many-clinics.md):
 * the poller stamps each message with its tenant as the SQS fair-queue message group, so a
 * clinic with a backlog does not lengthen the others' dwell time; a worker applies each
 * tenant's messages of a batch concurrently, and a clinic whose Reckon keeps failing is not
 * tried again for 30 s (its messages return, and on their last receive are kept as passing
 * failures for the poller's re-queue, not dead-lettered). maxConcurrency caps the workers per
 * queue: each paces itself per tenant credential in-process, so at most 4 per queue keeps one
 * clinic inside Cliniko's 200 requests per minute per API user and a cautious Reckon rate while
 * several clinics' batches run side by side. Raise it together with the clients' pacing.
 */
export const WORKER_EVENT_SOURCE = {
  batchSize: 10,
  maxConcurrency: 4,
  reportBatchItemFailures: true,
} as const;

/** Days a reconciliation report is kept. */
export const REPORT_RETENTION_DAYS = 400;
/** Days the S3 server access logs of the report bucket are kept. */
export const ACCESS_LOG_RETENTION_DAYS = 400;

export interface SyncStackProps extends StackProps {
  /**
   * Directory holding `<function>/bootstrap.zip` (`cargo lambda build --release --arm64
   * --output-format zip`). Relative paths are read from the repository root. Default: `target/lambda`.
   */
  readonly lambdaAssetsDir?: string;
  /**
   * Name prefix of the tenants' secrets (`{prefix}{tenant}/cliniko`, `{prefix}{tenant}/reckon-tokens`).
   * Default: `cliniko-reckon/tenants/`. Functions may read only secrets under it.
   */
  readonly tenantSecretPrefix?: string;
  /** `RUST_LOG` of every function. Default: `info`. */
  readonly rustLog?: string;
}

/** The serverless Cliniko -> Reckon One sync for many clinics: README.md ("On AWS") and docs/many-clinics.md. */
export class SyncStack extends Stack {
  readonly functions: Record<FunctionName, RustFunction>;
  readonly queues: Record<EntityType, EntityQueue>;
  /** The cdk-nag findings accepted in this stack, with their reasons. */
  readonly nagAcknowledgements: NagAcknowledgement[];

  constructor(scope: Construct, id: string, props: SyncStackProps = {}) {
    super(scope, id, props);
    const assetsDir = path.resolve(REPO_ROOT, props.lambdaAssetsDir ?? DEFAULT_LAMBDA_ASSETS_DIR);
    const secretPrefix = props.tenantSecretPrefix ?? DEFAULT_TENANT_SECRET_PREFIX;
    if (!/^[A-Za-z0-9/_+=.@-]{1,200}\/$/.test(secretPrefix)) {
      throw new Error(`tenantSecretPrefix '${secretPrefix}' must be secret-name characters ending in '/'`);
    }
    const rustLog = props.rustLog ?? 'info';

    const alarmEmail = new CfnParameter(this, 'AlarmEmail', {
      type: 'String',
      description: 'Email address that receives the sync alarms (confirm the subscription email).',
      allowedPattern: '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$',
      constraintDescription: 'must be an email address',
    });

    // ---- Encryption: one customer-managed key for the table, queues, topic, secrets, reports.
    const key = new kms.Key(this, 'DataKey', {
      description: 'Cliniko Reckon Sync: patient and accounting data at rest',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudWatch alarms publish to the encrypted topic: they need the key to do so.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublishToEncryptedTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'], // in a key policy, '*' means this key
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );

    // ---- State
    const { table } = new StateTable(this, 'State', { encryptionKey: key });

    // ---- Secrets. The consultancy's Reckon app is one secret, created with empty fields for
    // operators to fill (see README); each tenant's Cliniko key and Reckon tokens are written by
    // `cliniko-reckon --aws-table TABLE tenants add` / `connect` under `secretPrefix`, never by this
    // template, so adding a clinic needs no deploy.
    const reckonAppSecret = new secretsmanager.Secret(this, 'ReckonAppSecret', {
      description: 'Reckon One app credentials: {"client_id", "client_secret", "subscription_key"}',
      encryptionKey: key,
      secretObjectValue: {
        client_id: SecretValue.unsafePlainText(''),
        client_secret: SecretValue.unsafePlainText(''),
        subscription_key: SecretValue.unsafePlainText(''),
      },
    });
    // Secret ARNs end in `-` and six random characters.
    const tenantSecret = (name: 'cliniko' | 'reckon-tokens') =>
      Stack.of(this).formatArn({
        service: 'secretsmanager',
        resource: 'secret',
        resourceName: `${secretPrefix}*/${name}-??????`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
    const clinikoSecrets = tenantSecret('cliniko');
    const tokenSecrets = tenantSecret('reckon-tokens');

    // ---- Reconciliation reports, with server access logs in their own bucket.
    const accessLogs = new s3.Bucket(this, 'AccessLogsBucket', {
      // S3 server access logging can only deliver to SSE-S3 buckets.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(ACCESS_LOG_RETENTION_DAYS) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const reports = new s3.Bucket(this, 'ReportsBucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Each report has a new dated key and is never overwritten: versioning would add nothing.
      versioned: false,
      lifecycleRules: [{ expiration: Duration.days(REPORT_RETENTION_DAYS) }],
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'reports/',
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // ---- Queues, one per entity type, each sized from its consumer's timeout.
    const queues = {} as Record<EntityType, EntityQueue>;
    for (const q of ENTITY_QUEUES) {
      queues[q.entity] = new EntityQueue(this, `${capitalise(q.entity)}Queue`, {
        entity: q.entity,
        encryptionKey: key,
        consumerTimeout: Duration.seconds(FUNCTION_TIMEOUT_SECONDS[q.consumer]),
      });
    }
    this.queues = queues;

    // ---- Functions. Environment variables are the Rust functions' contract (lib/constants.ts).
    // Every function serves every tenant of the directory (the `TENANTS` items of the table).
    const common = {
      [ENV.tableName]: table.tableName,
      [ENV.tenantSecretPrefix]: secretPrefix,
      [ENV.rustLog]: rustLog,
    };
    const queueEnv = {
      [ENV.patientsQueueUrl]: queues.patients.queue.queueUrl,
      [ENV.productsQueueUrl]: queues.products.queue.queueUrl,
      [ENV.invoicesQueueUrl]: queues.invoices.queue.queueUrl,
    };
    const fn = (name: FunctionName, environment: Record<string, string>) =>
      new RustFunction(this, capitalise(name), { name, assetsDir, environment });
    // Table access by partition (`dynamodb:LeadingKeys`): tenant state is `T#{tenant}#...`,
    // the directory is `TENANTS`; the index's partitions are `T#{tenant}#...` too. A
    // transaction (a cross-reference with its name claim) is authorised item by item.
    const tableAccess = (role: iam.Role, actions: string[], partitions: string[]) =>
      role.addToPolicy(
        new iam.PolicyStatement({
          actions,
          resources: [table.tableArn, `${table.tableArn}/index/*`],
          conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': partitions } },
        }),
      );
    const readSecrets = (role: iam.Role, arns: string[]) => {
      role.addToPolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: arns }));
      // The tenants' secrets are encrypted with the stack's key (`--kms-key` of `tenants add`).
      role.addToPolicy(new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [key.keyArn] }));
    };

    // poller: lists the tenants, reads each one's Cliniko, enqueues changes, advances its
    // watermarks and marks re-queued failures as tried.
    const poller = fn('poller', { ...common, ...queueEnv });
    tableAccess(poller.role, ['dynamodb:GetItem', 'dynamodb:Query'], [TENANTS_PARTITION, 'T#*#WM', 'T#*#XREF#*', 'T#*#FAIL']);
    tableAccess(poller.role, ['dynamodb:PutItem', 'dynamodb:UpdateItem'], ['T#*#WM', 'T#*#FAIL']);
    for (const q of Object.values(queues)) q.queue.grantSendMessages(poller.function);
    readSecrets(poller.role, [clinikoSecrets]);

    // workers: one per entity type, each consuming its own queue, for every tenant.
    const workers = {} as Record<EntityType, RustFunction>;
    for (const q of ENTITY_QUEUES) {
      const worker = fn(q.consumer, {
        ...common,
        [ENV.reckonAppSecretArn]: reckonAppSecret.secretArn,
        [ENV.maxReceiveCount]: String(MAX_RECEIVE_COUNT),
      });
      tableAccess(
        worker.role,
        [
          'dynamodb:GetItem',
          'dynamodb:Query',
          'dynamodb:PutItem',
          'dynamodb:UpdateItem',
          'dynamodb:DeleteItem',
          'dynamodb:ConditionCheckItem',
        ],
        ['T#*'],
      );
      // The directory: read the tenant, and mark it as needing Reckon connected again.
      tableAccess(worker.role, ['dynamodb:GetItem', 'dynamodb:UpdateItem'], [TENANTS_PARTITION]);
      reckonAppSecret.grantRead(worker.function);
      readSecrets(worker.role, [clinikoSecrets, tokenSecrets]);
      // Refreshing the OAuth token pair rotates the refresh token: it must be written back.
      grantPutSecretValue(worker.role, tokenSecrets, key);
      // Adds sqs:ReceiveMessage/DeleteMessage/... on this queue (and kms:Decrypt) to the role.
      worker.function.addEventSource(new SqsEventSource(queues[q.entity].queue, { ...WORKER_EVENT_SOURCE }));
      workers[q.entity] = worker;
    }

    // reconciler: reads both sides of each tenant, writes reports and metrics (metrics go
    // through EMF log lines, so no cloudwatch:PutMetricData is needed).
    const reconciler = fn('reconciler', {
      ...common,
      [ENV.reckonAppSecretArn]: reckonAppSecret.secretArn,
      [ENV.reportBucket]: reports.bucketName,
      // An invocation with {"repair": true} queues what the sync can put right.
      ...queueEnv,
    });
    tableAccess(reconciler.role, ['dynamodb:GetItem', 'dynamodb:Query'], [TENANTS_PARTITION, 'T#*']);
    // Writes, by partition only: the token-refresh lease (`T#{tenant}#LEASE`, put and
    // delete); and for a repair, clearing a cross-reference's stored content or dropping a
    // link to a deleted Reckon record (`XREF#*` with its `XNAME#*` name claim, transactional)
    // and the audit entry saying so (`AUDIT#*`).
    tableAccess(
      reconciler.role,
      ['dynamodb:PutItem', 'dynamodb:DeleteItem'],
      ['T#*#LEASE', 'T#*#XREF#*', 'T#*#XNAME#*', 'T#*#AUDIT#*'],
    );
    for (const q of Object.values(queues)) q.queue.grantSendMessages(reconciler.function);
    reckonAppSecret.grantRead(reconciler.function);
    // Reading Reckon needs a valid access token; refreshing one rotates the refresh token,
    // which must be written back or the next caller is locked out.
    readSecrets(reconciler.role, [clinikoSecrets, tokenSecrets]);
    grantPutSecretValue(reconciler.role, tokenSecrets, key);
    reconciler.role.addToPolicy(
      new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [reports.arnForObjects('reports/*')] }),
    );
    reconciler.role.addToPolicy(
      new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [key.keyArn] }),
    );

    this.functions = {
      poller,
      'patient-sync': workers.patients,
      'product-sync': workers.products,
      'invoice-sync': workers.invoices,
      reconciler,
    };

    // ---- Schedules
    new FunctionSchedule(this, 'PollerSchedule', {
      target: poller.function,
      description: 'poller every minute',
      scheduleExpression: 'rate(1 minute)',
      // A missed minute is covered by the next one: never pile up invocations.
      maximumRetryAttempts: 0,
      maximumEventAgeSeconds: 60,
    });
    new FunctionSchedule(this, 'ReconcilerSchedule', {
      target: reconciler.function,
      description: `reconciler nightly at 02:00 ${BUSINESS_TIME_ZONE}`,
      scheduleExpression: 'cron(0 2 * * ? *)',
      timeZone: BUSINESS_TIME_ZONE,
      maximumRetryAttempts: 3,
      maximumEventAgeSeconds: 3600,
    });

    // ---- Alarms
    new SyncAlarms(this, 'Alarms', {
      alarmEmail: alarmEmail.valueAsString,
      encryptionKey: key,
      functions: Object.fromEntries(Object.entries(this.functions).map(([n, f]) => [n, f.function])),
      queues,
    });

    new SyncDashboard(this, 'Dashboard', { queues });

    // What `cliniko-reckon --aws-table TABLE tenants add` needs to know about this deployment.
    new CfnOutput(this, 'StateTableName', { value: table.tableName });
    new CfnOutput(this, 'TenantSecretPrefix', { value: secretPrefix });
    new CfnOutput(this, 'DataKeyArn', { value: key.keyArn });

    this.nagAcknowledgements = addNagSuppressions(this, {
      table,
      reportsBucket: reports,
      secrets: [reckonAppSecret],
      tableReaders: [poller, ...Object.values(workers), reconciler],
      keyGrantees: [poller, reconciler],
      reportWriter: reconciler,
      tenantSecretPrefix: secretPrefix,
      clinikoSecretReaders: [poller, ...Object.values(workers), reconciler],
      tokenSecretUsers: [...Object.values(workers), reconciler],
    });
  }
}

/**
 * Write access to one secret's value and nothing else (CDK's `grantWrite` adds UpdateSecret and
 * UpdateSecretVersionStage, which could re-key or re-stage the secret).
 */
function grantPutSecretValue(role: iam.IRole, secretArn: string, key: kms.IKey): void {
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['secretsmanager:PutSecretValue'], resources: [secretArn] }));
  // Secrets Manager encrypts the new version with the secret's customer-managed key.
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [key.keyArn] }),
  );
}

function capitalise(s: string): string {
  return s
    .split('-')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}
