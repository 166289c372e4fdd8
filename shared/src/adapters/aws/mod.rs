//! AWS adapters for the ports (cargo feature `aws`): DynamoDB for [`StateStore`], SQS for
//! [`WorkQueue`], Secrets Manager for [`TokenStore`] and the app secrets, plus a DynamoDB
//! lease so one Lambda at a time refreshes the Reckon tokens. They mirror the SQLite twin
//! (`crate::adapters::sqlite`) behaviour for behaviour.
//!
//! # Endpoints and clients
//!
//! [`load_sdk_config`] reads everything from the environment through
//! `aws_config::defaults(BehaviorVersion::latest())`: region, credentials and the endpoint
//! (`AWS_ENDPOINT_URL`, or `AWS_ENDPOINT_URL_DYNAMODB` etc.), so tests point the same code at
//! moto (`scripts/with-moto`) with no local-mode switch. HTTPS goes through hyper 1 + rustls
//! 0.23 with the *ring* provider, the same TLS stack reqwest 0.12 uses in this workspace (no
//! aws-lc, no second rustls).
//!
//! # The DynamoDB table (the contract with the CDK stack)
//!
//! One table, string keys `pk` (partition) and `sk` (sort), one global secondary index
//! `gsi1` with string keys `gsi1pk`/`gsi1sk` (any projection: lookups through the index
//! re-read the base item with a consistent read and check it still matches, so `KEYS_ONLY`
//! works and a lagging index never returns a stale answer), TTL attribute `expires_at`
//! (Unix seconds). Every partition key starts with `T#{tenant}#`, so tenants never share a
//! partition. Timestamps are stored as fixed-width RFC 3339 UTC text with microseconds
//! (`2026-05-28T10:00:00.000000Z`), so string order is time order in conditions and sort keys.
//!
//! | item | `pk` | `sk` | attributes | `gsi1pk` / `gsi1sk` |
//! |---|---|---|---|---|
//! | watermark | `T#{t}#WM` | kind (`patient`, …) | `at` | — |
//! | cross-reference | `T#{t}#XREF#{kind}` | Cliniko id | `reckon_id`, `version`, `content_hash`, `reckon_name`? | `T#{t}#RID#{kind}#{reckon_id}` / Cliniko id |
//! | name of a cross-reference | `T#{t}#XNAME#{kind}` | Cliniko id | `name`, `version` | `T#{t}#NAME#{kind}#{lower-case name}` / `XREF#{id}` |
//! | intent | `T#{t}#INTENT#{kind}` | Cliniko id | `marker`, `started_at`, `expires_at` (7 days) | `T#{t}#NAME#{kind}#{lower-case marker}` / `INTENT#{id}` |
//! | failure | `T#{t}#FAIL` | `{kind}#{id}` | `version`, `error`, `retryable`, `attempts`, `last_at` | — |
//! | audit entry | `T#{t}#AUDIT#{yyyy-mm-dd}` (UTC day of `at`) | `{at}#{kind}#{id}#{uuid}` | the entry's fields, `expires_at` (400 days) | — |
//! | token lease | `T#{t}#LEASE` | `reckon-tokens` | `owner`, `lease_until_ms`, `expires_at` | — |
//! | tenant | `TENANTS` | tenant id | `config` (TOML text), `status`, `reason`?, `added_at`, `changed_at` | — |
//!
//! - Watermarks move forward only: `UpdateItem` with
//!   `attribute_not_exists(at) OR at < :new`; a refused condition is success (a newer
//!   watermark is already there).
//! - A cross-reference and its name item are written in one `TransactWriteItems`; the
//!   cross-reference `Put` carries `attribute_not_exists(pk) OR version <= :v`, and a refused
//!   condition is `Ok(false)` (an equal version may re-record, as in SQLite). The name item is
//!   keyed by Cliniko id, so renaming a record replaces its name entry instead of leaving a
//!   stale one; it is deleted when the cross-reference has no name.
//! - Reverse lookups go through `gsi1`: by Reckon id (`T#{t}#RID#…`), and by lower-cased name
//!   (`T#{t}#NAME#…`), which covers cross-reference names *and* intent markers in one query,
//!   like the SQLite `UNION`. Names are lower-cased with Unicode rules (`str::to_lowercase`),
//!   a superset of SQLite's ASCII `NOCASE`.
//! - Audit entries are bucketed by UTC day so no partition grows without bound; sorted by
//!   time inside the day.
//!
//! # Errors
//!
//! SDK errors become [`StateError::Backend`] with the full error chain in `detail` (never a
//! secret value: request and response bodies are not included) and `retryable` set for
//! throttling, 5xx, transaction conflicts, timeouts and connection failures.
//!
//! [`StateStore`]: crate::ports::StateStore
//! [`WorkQueue`]: crate::ports::WorkQueue
//! [`TokenStore`]: crate::ports::TokenStore

mod dynamo;
mod reports;
mod secrets;
mod sqs;
mod tenants;

pub use dynamo::{DynamoState, create_state_table};
pub use reports::S3Reports;
pub use secrets::{
    AppSecrets, AppSecretsError, LeaseGuard, LeasedTokenStore, ReckonAppSecret, SecretsTokenStore,
    TokenLease, load_app_secrets, load_cliniko_api_key, load_reckon_app_secret,
};
pub use sqs::{DecodeError, MAX_MESSAGE_BYTES, QueueUrls, SqsQueue, decode_message};
pub use tenants::{DynamoTenants, TENANTS_PK};

use crate::ports::StateError;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls;
use chrono::{DateTime, SecondsFormat, Utc};

/// The SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL`),
/// over the workspace's TLS stack (rustls with ring).
pub async fn load_sdk_config() -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}

/// Timestamps as fixed-width UTC text, so string order is time order.
pub(crate) fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn parse_ts(key: &str, text: &str) -> Result<DateTime<Utc>, StateError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(key, e))
}

pub(crate) fn corrupt(key: &str, e: impl std::fmt::Display) -> StateError {
    StateError::Corrupt {
        key: key.to_string(),
        detail: e.to_string(),
    }
}

/// Service error codes that clear up when retried later.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "LimitExceededException",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalServerErrorException",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "KMSThrottlingException",
];

/// Whether an SDK failure is worth retrying: throttling, 5xx, timeouts, connection trouble.
pub(crate) fn is_retryable<E, R>(err: &SdkError<E, R>, status: Option<u16>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            RETRYABLE_CODES.contains(&code) || status.is_some_and(|s| s == 429 || s >= 500)
        }
        // Could not even build the request: a bug or bad configuration.
        _ => false,
    }
}

/// An SDK failure as a [`StateError::Backend`], naming the operation and keeping the whole
/// error chain in `detail`.
pub(crate) fn backend<E>(op: &str, err: SdkError<E, HttpResponse>) -> StateError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let retryable = is_retryable(&err, status);
    StateError::Backend {
        detail: format!("{op}: {}", DisplayErrorContext(&err)),
        retryable,
    }
}

/// Tenant ids become part of every key, so they must be [`TenantId`]s (no separator).
///
/// [`TenantId`]: crate::domain::TenantId
pub(crate) fn check_tenant(tenant: &str) -> Result<(), StateError> {
    crate::domain::TenantId::new(tenant)
        .map(|_| ())
        .map_err(|e| StateError::Backend {
            detail: e.to_string(),
            retryable: false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;

    fn service(code: &str) -> SdkError<GetItemError, ()> {
        SdkError::service_error(
            GetItemError::generic(ErrorMetadata::builder().code(code).build()),
            (),
        )
    }

    #[test]
    fn throttling_5xx_and_timeouts_are_retryable_the_rest_not() {
        assert!(is_retryable(&service("ThrottlingException"), Some(400)));
        assert!(is_retryable(
            &service("ProvisionedThroughputExceededException"),
            Some(400)
        ));
        assert!(is_retryable(
            &service("TransactionConflictException"),
            Some(400)
        ));
        assert!(is_retryable(&service("SomethingNew"), Some(503)));
        assert!(is_retryable(&service("SomethingNew"), Some(429)));
        assert!(is_retryable(
            &SdkError::<GetItemError, ()>::timeout_error("slow"),
            None
        ));
        assert!(!is_retryable(&service("ValidationException"), Some(400)));
        assert!(!is_retryable(
            &service("ResourceNotFoundException"),
            Some(400)
        ));
        assert!(!is_retryable(
            &SdkError::<GetItemError, ()>::construction_failure("bad input"),
            None
        ));
    }

    #[test]
    fn tenants_cannot_break_out_of_their_keys() {
        assert!(check_tenant("clinic-1").is_ok());
        assert!(check_tenant("").is_err());
        assert!(check_tenant("a#WM").is_err());
        assert!(check_tenant("a\nb").is_err());
    }

    #[test]
    fn timestamps_sort_as_text() {
        let a = DateTime::from_timestamp(1_780_000_000, 5_000).unwrap_or_default();
        let b = DateTime::from_timestamp(1_780_000_001, 0).unwrap_or_default();
        assert!(ts(a) < ts(b));
        assert_eq!(ts(a).len(), ts(b).len());
        assert_eq!(parse_ts("t", &ts(a)).ok(), Some(a));
    }
}
