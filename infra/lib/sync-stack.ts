import * as path from 'node:path';
import { CfnParameter, Duration, RemovalPolicy, SecretValue, Stack, StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { SyncAlarms } from './alarms';
import { BUSINESS_TIME_ZONE, ENTITY_QUEUES, ENV, EntityType, FUNCTION_TIMEOUT_SECONDS, FunctionName } from './constants';
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
 * maxConcurrency = 2 (the smallest value Lambda accepts) per queue, so at most 6 workers run
 * at once across the three queues. Cliniko allows 200 requests per minute per API user and all
 * functions share one API key; Reckon One does not document its limit (the Rust clients default
 * to a cautious 60/min). Each worker also paces itself in-process, so 6 concurrent workers stay
 * inside both budgets, while 2 per queue still drains a backlog and keeps one slow record from
 * stalling its queue. Raise it only together with the clients' requests-per-minute settings.
 */
export const WORKER_EVENT_SOURCE = {
  batchSize: 10,
  maxConcurrency: 2,
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
  /** Tenant (clinic) served by this deployment; `TENANT_ID` and the metrics' `TenantId`. Default: `default`. */
  readonly tenantId?: string;
  /** `RUST_LOG` of every function. Default: `info`. */
  readonly rustLog?: string;
}

/** The serverless Cliniko -> Reckon One sync: see shared/DESIGN.md for the pipeline. */
export class SyncStack extends Stack {
  readonly functions: Record<FunctionName, RustFunction>;
  readonly queues: Record<EntityType, EntityQueue>;
  /** The cdk-nag findings accepted in this stack, with their reasons. */
  readonly nagAcknowledgements: NagAcknowledgement[];

  constructor(scope: Construct, id: string, props: SyncStackProps = {}) {
    super(scope, id, props);
    const assetsDir = path.resolve(REPO_ROOT, props.lambdaAssetsDir ?? DEFAULT_LAMBDA_ASSETS_DIR);
    const tenantId = props.tenantId ?? 'default';
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(tenantId)) {
      throw new Error(`tenantId '${tenantId}' must be 1-64 letters, digits, '_', '.' or '-'`);
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

    // ---- Secrets. Created with empty fields; operators fill them (see README). Vendor
    // values are never in the template; CloudFormation does not reset a secret's value
    // while this template value stays unchanged.
    const clinikoSecret = new secretsmanager.Secret(this, 'ClinikoSecret', {
      description: 'Cliniko API key and User-Agent: {"api_key": "...", "user_agent": "App (email)"}',
      encryptionKey: key,
      secretObjectValue: { api_key: SecretValue.unsafePlainText(''), user_agent: SecretValue.unsafePlainText('') },
    });
    const reckonAppSecret = new secretsmanager.Secret(this, 'ReckonAppSecret', {
      description: 'Reckon One app credentials: {"client_id", "client_secret", "subscription_key"}',
      encryptionKey: key,
      secretObjectValue: {
        client_id: SecretValue.unsafePlainText(''),
        client_secret: SecretValue.unsafePlainText(''),
        subscription_key: SecretValue.unsafePlainText(''),
      },
    });
    const reckonTokensSecret = new secretsmanager.Secret(this, 'ReckonTokensSecret', {
      description:
        'Reckon One OAuth tokens {"access_token", "refresh_token", "expires_at"}: seeded by `cliniko-reckon connect`, then written by the functions',
      encryptionKey: key,
      secretObjectValue: {
        access_token: SecretValue.unsafePlainText(''),
        refresh_token: SecretValue.unsafePlainText(''),
        expires_at: SecretValue.unsafePlainText(''),
      },
    });

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
    const common = {
      [ENV.tableName]: table.tableName,
      [ENV.tenantId]: tenantId,
      [ENV.rustLog]: rustLog,
    };
    const reckonEnv = {
      [ENV.clinikoSecretArn]: clinikoSecret.secretArn,
      [ENV.reckonAppSecretArn]: reckonAppSecret.secretArn,
      [ENV.reckonTokensSecretArn]: reckonTokensSecret.secretArn,
    };
    const fn = (name: FunctionName, environment: Record<string, string>) =>
      new RustFunction(this, capitalise(name), { name, assetsDir, environment });

    // poller: reads Cliniko, enqueues changes, advances watermarks.
    const poller = fn('poller', {
      ...common,
      [ENV.patientsQueueUrl]: queues.patients.queue.queueUrl,
      [ENV.productsQueueUrl]: queues.products.queue.queueUrl,
      [ENV.invoicesQueueUrl]: queues.invoices.queue.queueUrl,
      [ENV.clinikoSecretArn]: clinikoSecret.secretArn,
    });
    table.grantReadData(poller.function);
    // Watermarks (and applied-version markers) are single-item conditional writes.
    poller.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
        resources: [table.tableArn],
      }),
    );
    for (const q of Object.values(queues)) q.queue.grantSendMessages(poller.function);
    clinikoSecret.grantRead(poller.function);

    // workers: one per entity type, each consuming its own queue.
    const workers = {} as Record<EntityType, RustFunction>;
    for (const q of ENTITY_QUEUES) {
      const worker = fn(q.consumer, {
        ...common,
        ...reckonEnv,
        [ENV.maxReceiveCount]: String(MAX_RECEIVE_COUNT),
      });
      table.grantReadWriteData(worker.function);
      clinikoSecret.grantRead(worker.function);
      reckonAppSecret.grantRead(worker.function);
      // Refreshing the OAuth token pair rotates the refresh token: it must be written back.
      reckonTokensSecret.grantRead(worker.function);
      grantPutSecretValue(worker.role, reckonTokensSecret, key);
      // Adds sqs:ReceiveMessage/DeleteMessage/... on this queue (and kms:Decrypt) to the role.
      worker.function.addEventSource(new SqsEventSource(queues[q.entity].queue, { ...WORKER_EVENT_SOURCE }));
      workers[q.entity] = worker;
    }

    // reconciler: reads both sides, writes reports and metrics (metrics go through EMF log
    // lines, so no cloudwatch:PutMetricData is needed).
    const reconciler = fn('reconciler', {
      ...common,
      ...reckonEnv,
      [ENV.reportBucket]: reports.bucketName,
      // An invocation with {"repair": true} queues what the sync can put right.
      [ENV.patientsQueueUrl]: queues.patients.queue.queueUrl,
      [ENV.productsQueueUrl]: queues.products.queue.queueUrl,
      [ENV.invoicesQueueUrl]: queues.invoices.queue.queueUrl,
    });
    table.grantReadData(reconciler.function);
    // Writes, by partition only: the token-refresh lease (`T#{tenant}#LEASE`, put and
    // delete); and for a repair, clearing a cross-reference's stored content or dropping a
    // link to a deleted Reckon record (`XREF#*` with its `XNAME#*` name claim, transactional)
    // and the audit entry saying so (`AUDIT#*`).
    reconciler.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:PutItem', 'dynamodb:DeleteItem'],
        resources: [table.tableArn],
        conditions: {
          'ForAllValues:StringLike': {
            'dynamodb:LeadingKeys': [
              `T#${tenantId}#LEASE`,
              `T#${tenantId}#XREF#*`,
              `T#${tenantId}#XNAME#*`,
              `T#${tenantId}#AUDIT#*`,
            ],
          },
        },
      }),
    );
    for (const q of Object.values(queues)) q.queue.grantSendMessages(reconciler.function);
    clinikoSecret.grantRead(reconciler.function);
    reckonAppSecret.grantRead(reconciler.function);
    // Reading Reckon needs a valid access token; refreshing one rotates the refresh token,
    // which must be written back or the next caller is locked out.
    reckonTokensSecret.grantRead(reconciler.function);
    grantPutSecretValue(reconciler.role, reckonTokensSecret, key);
    reconciler.role.addToPolicy(
      new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [reports.arnForObjects('*')] }),
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
      tenantId,
      functions: Object.fromEntries(Object.entries(this.functions).map(([n, f]) => [n, f.function])),
      queues,
    });

    this.nagAcknowledgements = addNagSuppressions(this, {
      table,
      reportsBucket: reports,
      secrets: [clinikoSecret, reckonAppSecret, reckonTokensSecret],
      tableReaders: [poller, ...Object.values(workers), reconciler],
      keyGrantees: [poller, ...Object.values(workers), reconciler],
      reportWriter: reconciler,
    });
  }
}

/**
 * Write access to one secret's value and nothing else (CDK's `grantWrite` adds UpdateSecret and
 * UpdateSecretVersionStage, which could re-key or re-stage the secret).
 */
function grantPutSecretValue(role: iam.IRole, secret: secretsmanager.ISecret, key: kms.IKey): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ['secretsmanager:PutSecretValue'], resources: [secret.secretArn] }),
  );
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
