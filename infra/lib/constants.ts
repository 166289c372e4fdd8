/**
 * Names shared between this CDK app and the Rust functions.
 *
 * The Rust side must use exactly these strings: the metric namespace and names are what the
 * functions emit through CloudWatch Embedded Metric Format (EMF) log lines, and the
 * environment variable names are the configuration contract of every function.
 */

/** CloudWatch namespace of the custom metrics the functions emit (EMF `Namespace`). */
export const METRIC_NAMESPACE = 'ClinikoReckonSync';

/**
 * Custom metric names (EMF `MetricName`s). Each value is published twice: with the dimension
 * `TenantId` (one series per clinic: the dashboard's graphs and the per-clinic alarms, whose
 * contributors are the clinics) and with no dimension (every clinic together: the
 * `PollerSilent` alarm, which fires when no clinic reports at all).
 */
export const METRICS = {
  /**
   * Emitted by the poller after each cycle, per entity type: seconds between now and the
   * oldest watermark of the tenant (how far behind Cliniko the sync is).
   */
  watermarkAgeSeconds: 'WatermarkAgeSeconds',
  /** Emitted by the reconciler once per run: count of records that differ between the sides. */
  reconciliationMismatches: 'ReconciliationMismatches',
  /**
   * Emitted (value 1) by any function that finds Reckon refusing the stored refresh token:
   * a person must run `cliniko-reckon connect` again.
   */
  reckonReauthorizationNeeded: 'ReckonReauthorizationNeeded',
  /** Emitted (value 1) by the poller for each tenant whose poll failed or could not start. */
  pollFailures: 'PollFailures',
} as const;

/** The dimension every custom metric carries. */
export const TENANT_DIMENSION = 'TenantId';

/** The Lambda functions, named like their crates under `functions/`. */
export const FUNCTION_NAMES = ['poller', 'patient-sync', 'product-sync', 'invoice-sync', 'reconciler'] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

/** Entity types, one SQS queue (and DLQ) each, with the worker that consumes it. */
export const ENTITY_QUEUES = [
  { entity: 'patients', consumer: 'patient-sync', queueUrlEnv: 'PATIENTS_QUEUE_URL' },
  { entity: 'products', consumer: 'product-sync', queueUrlEnv: 'PRODUCTS_QUEUE_URL' },
  { entity: 'invoices', consumer: 'invoice-sync', queueUrlEnv: 'INVOICES_QUEUE_URL' },
] as const satisfies readonly { entity: string; consumer: FunctionName; queueUrlEnv: string }[];
export type EntityType = (typeof ENTITY_QUEUES)[number]['entity'];

/**
 * Environment variables: the configuration contract of the Rust functions.
 * Each function gets only the ones it uses (see `lib/sync-stack.ts`).
 */
export const ENV = {
  /** DynamoDB single table (pk/sk, GSI `gsi1` on gsi1pk/gsi1sk, TTL attribute `expires_at`). */
  tableName: 'TABLE_NAME',
  patientsQueueUrl: 'PATIENTS_QUEUE_URL',
  productsQueueUrl: 'PRODUCTS_QUEUE_URL',
  invoicesQueueUrl: 'INVOICES_QUEUE_URL',
  /**
   * Where each tenant's secrets are: `{prefix}{tenant}/cliniko` (`{"api_key"}`) and
   * `{prefix}{tenant}/reckon-tokens` (`{"access_token", "refresh_token", "expires_at"}`, written
   * by the functions). Written by `cliniko-reckon --aws-table TABLE tenants add` and `connect`.
   */
  tenantSecretPrefix: 'TENANT_SECRET_PREFIX',
  /** The consultancy's Reckon app, one for every tenant: `{"client_id", "client_secret", "subscription_key"}`. */
  reckonAppSecretArn: 'RECKON_APP_SECRET_ARN',
  /** S3 bucket name for reconciliation reports (reconciler only). */
  reportBucket: 'REPORT_BUCKET',
  /** Tenants the poller polls at once (poller only). */
  pollConcurrency: 'POLL_CONCURRENCY',
  /** tracing filter, e.g. `info` or `info,shared=debug`. */
  rustLog: 'RUST_LOG',
  /** The worker's queue `maxReceiveCount` (workers only): the last receive parks the record before the DLQ. */
  maxReceiveCount: 'MAX_RECEIVE_COUNT',
} as const;

/** The TTL attribute of the table (epoch seconds). */
export const TTL_ATTRIBUTE = 'expires_at';

/** Keys of the single table and of its reverse-lookup index. */
export const TABLE_KEYS = {
  partitionKey: 'pk',
  sortKey: 'sk',
  gsi1Name: 'gsi1',
  gsi1PartitionKey: 'gsi1pk',
  gsi1SortKey: 'gsi1sk',
} as const;

/** The time zone of the nightly reconciliation's schedule. */
export const BUSINESS_TIME_ZONE = 'Australia/Sydney';

/** Log retention of every function's log group, in days. */
export const LOG_RETENTION_DAYS = 90;

/** Lambda timeouts in seconds; queue visibility timeouts are derived from these (6x). */
export const FUNCTION_TIMEOUT_SECONDS: Record<FunctionName, number> = {
  poller: 50, // must finish inside its one-minute schedule
  'patient-sync': 60,
  'product-sync': 60,
  'invoice-sync': 90, // may create the customer first (dependency resolution)
  reconciler: 900, // reads both sides in full
};

export const FUNCTION_MEMORY_MB: Record<FunctionName, number> = {
  poller: 256,
  'patient-sync': 256,
  'product-sync': 256,
  'invoice-sync': 256,
  reconciler: 1024,
};

/** The partition of the tenant directory in the state table (one item per tenant). */
export const TENANTS_PARTITION = 'TENANTS';

/** Default `TENANT_SECRET_PREFIX`: the Rust side's `wiring::DEFAULT_SECRET_PREFIX`. */
export const DEFAULT_TENANT_SECRET_PREFIX = 'cliniko-reckon/tenants/';
