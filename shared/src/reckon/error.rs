use std::time::Duration;

/// One entry of Reckon's 400 `errors` list: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub location: String,
    pub message: String,
}

/// Everything that can go wrong talking to Reckon; each says whether a retry can help.
///
/// No variant ever carries a token, the client secret or the subscription key.
#[derive(Debug, thiserror::Error)]
pub enum ReckonError {
    #[error("Reckon configuration: {0}")]
    Config(String),
    /// No usable refresh token: someone must run `cliniko-reckon connect` again.
    #[error("Reckon needs to be connected again: {0}")]
    ReauthorizationNeeded(String),
    /// The token store failed; `retryable` keeps the store's own verdict (a throttled secret
    /// read or a lease wait that ran out clears up, a corrupt pair does not).
    #[error("Reckon token store: {detail}")]
    TokenStore { detail: String, retryable: bool },
    /// The identity server (token endpoint) failed for a reason other than a dead grant.
    #[error("Reckon identity server: {detail}")]
    Identity { detail: String, retryable: bool },
    #[error("Reckon request to {endpoint} failed")]
    Transport {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Reckon rate limit exceeded at {endpoint}; retry after {retry_after:?}")]
    RateLimited {
        endpoint: String,
        retry_after: Duration,
    },
    /// 400 with Reckon's error body, naming the fields (also used for values the client
    /// refuses before sending, e.g. a name longer than Reckon's documented limit).
    #[error("Reckon refused {endpoint}: {message}{}", fields_suffix(.errors))]
    Validation {
        endpoint: String,
        message: String,
        errors: Vec<FieldError>,
    },
    #[error("Reckon answered {status} at {endpoint}: {message}")]
    Status {
        status: u16,
        endpoint: String,
        message: String,
    },
    #[error("unexpected Reckon response from {endpoint}: {detail}")]
    Decode { endpoint: String, detail: String },
}

fn fields_suffix(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!(" [{}: {}]", e.location, e.message))
        .collect()
}

impl ReckonError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ReckonError::Transport { .. } | ReckonError::RateLimited { .. } => true,
            ReckonError::Status { status, .. } => *status == 429 || *status >= 500,
            ReckonError::Identity { retryable, .. } | ReckonError::TokenStore { retryable, .. } => {
                *retryable
            }
            ReckonError::Config(_)
            | ReckonError::ReauthorizationNeeded(_)
            | ReckonError::Validation { .. }
            | ReckonError::Decode { .. } => false,
        }
    }

    /// The field errors of a validation failure (empty for every other kind).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            ReckonError::Validation { errors, .. } => errors,
            _ => &[],
        }
    }
}

/// At the port: a dead connection stops the tenant, a passing failure is retried, anything
/// else parks the record.
impl From<ReckonError> for crate::ports::SinkError {
    fn from(e: ReckonError) -> Self {
        use crate::ports::ErrorClass;
        let class = match &e {
            ReckonError::ReauthorizationNeeded(_) => ErrorClass::StopTenant,
            e if e.is_retryable() => ErrorClass::Retry,
            _ => ErrorClass::Park,
        };
        crate::ports::SinkError::new(class, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{ErrorClass, SinkError};

    #[test]
    fn at_the_port_a_dead_connection_stops_the_tenant_passing_failures_retry_the_rest_park() {
        let status = |status| ReckonError::Status {
            status,
            endpoint: "POST /invoices".into(),
            message: "m".into(),
        };
        let cases = [
            (
                ReckonError::ReauthorizationNeeded("invalid_grant".into()),
                ErrorClass::StopTenant,
            ),
            (status(500), ErrorClass::Retry),
            (status(429), ErrorClass::Retry),
            (
                ReckonError::RateLimited {
                    endpoint: "POST /invoices".into(),
                    retry_after: Duration::from_secs(1),
                },
                ErrorClass::Retry,
            ),
            (
                ReckonError::TokenStore {
                    detail: "throttled".into(),
                    retryable: true,
                },
                ErrorClass::Retry,
            ),
            (
                ReckonError::TokenStore {
                    detail: "corrupt".into(),
                    retryable: false,
                },
                ErrorClass::Park,
            ),
            (
                ReckonError::Identity {
                    detail: "502".into(),
                    retryable: true,
                },
                ErrorClass::Retry,
            ),
            (status(404), ErrorClass::Park),
            (
                ReckonError::Validation {
                    endpoint: "POST /invoices".into(),
                    message: "bad".into(),
                    errors: vec![],
                },
                ErrorClass::Park,
            ),
            (ReckonError::Config("no book".into()), ErrorClass::Park),
        ];
        for (error, class) in cases {
            let message = error.to_string();
            let port = SinkError::from(error);
            assert_eq!(port.class(), class, "{message}");
            assert_eq!(port.to_string(), message, "the message is kept");
        }
    }
}
