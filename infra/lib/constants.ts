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
 * Custom metric names (EMF `MetricName`s). Every metric carries one dimension, `TenantId`.
 */
export const METRICS = {
  /**
   * Emitted by the poller after each cycle, per entity type: seconds between now and the
   * oldest watermark of the tenant (how far behind Cliniko the sync is). Extra dimension
   * sets are allowed, the alarm reads the `TenantId`-only series.
   */
  watermarkAgeSeconds: 'WatermarkAgeSeconds',
  /** Emitted by the reconciler once per run: count of records that differ between the sides. */
  reconciliationMismatches: 'ReconciliationMismatches',
  /**
   * Emitted (value 1) by any function that finds Reckon refusing the stored refresh token:
   * a person must run `cliniko-reckon connect` again.
   */
  reckonReauthorizationNeeded: 'ReckonReauthorizationNeeded',
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
  /** JSON `{"api_key": "...", "user_agent": "..."}`. */
  clinikoSecretArn: 'CLINIKO_SECRET_ARN',
  /** JSON `{"client_id": "...", "client_secret": "...", "subscription_key": "..."}`. */
  reckonAppSecretArn: 'RECKON_APP_SECRET_ARN',
  /** JSON `{"access_token": "...", "refresh_token": "...", "expires_at": "RFC 3339"}`, written by the functions. */
  reckonTokensSecretArn: 'RECKON_TOKENS_SECRET_ARN',
  /** S3 bucket name for reconciliation reports (reconciler only). */
  reportBucket: 'REPORT_BUCKET',
  /** Tenant (clinic) this deployment serves; context `tenantId` or parameter, default `default`. */
  tenantId: 'TENANT_ID',
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

/** The time zone of the clinic's business day, used by the nightly schedule. */
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
