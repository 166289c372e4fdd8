use std::time::Duration;

/// Everything that can go wrong talking to Cliniko; each says whether a retry can help.
#[derive(Debug, thiserror::Error)]
pub enum ClinikoError {
    /// The client cannot even be built (bad key, base URL, user agent).
    #[error("Cliniko configuration: {0}")]
    Config(String),
    /// Connection refused or reset, timeout, TLS: the request may not have arrived.
    #[error("Cliniko request to {endpoint} failed (retryable)")]
    Transport {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    /// Still throttled (429) after the client's own waiting and retries.
    #[error("Cliniko rate limit exceeded at {endpoint}; retry after {retry_after:?} (retryable)")]
    RateLimited {
        endpoint: String,
        retry_after: Duration,
    },
    /// Any other non-success answer; `message` is Cliniko's, secrets never included.
    #[error("Cliniko answered {status} at {endpoint}: {message} ({})", retry_hint(*status))]
    Status {
        status: u16,
        endpoint: String,
        message: String,
    },
    /// A record that does not have the documented shape, naming the record and field.
    #[error("Cliniko {resource} {id}: field `{field}`: {problem}")]
    InvalidRecord {
        resource: &'static str,
        id: String,
        field: String,
        problem: String,
    },
    /// A record that cannot be read, the message naming the record and field (an
    /// invoice also when one of its items cannot be read).
    #[error("{0}")]
    Unreadable(String),
    /// A body that is not the documented JSON at all.
    #[error("unexpected Cliniko response from {endpoint}: {detail}")]
    Decode { endpoint: String, detail: String },
}

impl ClinikoError {
    /// Whether the same request may succeed later (the record should wait, not fail).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClinikoError::Transport { .. } | ClinikoError::RateLimited { .. } => true,
            ClinikoError::Status { status, .. } => *status == 429 || *status >= 500,
            ClinikoError::Config(_)
            | ClinikoError::InvalidRecord { .. }
            | ClinikoError::Unreadable(_)
            | ClinikoError::Decode { .. } => false,
        }
    }
}

fn retry_hint(status: u16) -> &'static str {
    if status == 429 || status >= 500 {
        "retryable"
    } else {
        "not retryable"
    }
}

/// At the port: a passing failure is retried, anything else parks the record.
impl From<ClinikoError> for crate::ports::SourceError {
    fn from(e: ClinikoError) -> Self {
        let class = if e.is_retryable() {
            crate::ports::ErrorClass::Retry
        } else {
            crate::ports::ErrorClass::Park
        };
        crate::ports::SourceError::new(class, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{ErrorClass, SourceError};

    #[test]
    fn at_the_port_passing_failures_retry_and_the_rest_park() {
        let status = |status| ClinikoError::Status {
            status,
            endpoint: "GET /patients".into(),
            message: "m".into(),
        };
        let cases = [
            (status(503), ErrorClass::Retry),
            (status(429), ErrorClass::Retry),
            (
                ClinikoError::RateLimited {
                    endpoint: "GET /patients".into(),
                    retry_after: Duration::from_secs(3),
                },
                ErrorClass::Retry,
            ),
            (status(401), ErrorClass::Park),
            (status(404), ErrorClass::Park),
            (ClinikoError::Config("no key".into()), ErrorClass::Park),
            (
                ClinikoError::Unreadable("patient 7".into()),
                ErrorClass::Park,
            ),
            (
                ClinikoError::Decode {
                    endpoint: "GET /patients".into(),
                    detail: "not JSON".into(),
                },
                ErrorClass::Park,
            ),
        ];
        for (error, class) in cases {
            let message = error.to_string();
            let port = SourceError::from(error);
            assert_eq!(port.class(), class, "{message}");
            assert_eq!(port.to_string(), message, "the message is kept");
            assert!(port.cause::<ClinikoError>().is_some());
        }
    }
}
