//! The errors the source and sink ports return: the vendor client's own error kept as the
//! cause (its message and chain unchanged), plus the one thing the pipeline decides on —
//! what the failure means for the work.

use std::error::Error;
use std::fmt;

/// What a failure means for the work in hand. Every adapter classifies its own errors, so
/// the pipeline's failure policy (`crate::pipeline::disposition`) never looks inside a
/// vendor's error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Passing: the same call may succeed later (an outage, a rate limit, a timeout).
    Retry,
    /// This record cannot succeed as it is (refused, unreadable): park it for a person.
    Park,
    /// Nothing of this tenant can succeed until a person acts (e.g. Reckon must be
    /// connected again): keep the work, stop the tenant.
    StopTenant,
}

type Cause = Box<dyn Error + Send + Sync + 'static>;

macro_rules! port_error {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            class: ErrorClass,
            cause: Cause,
        }

        impl $name {
            pub fn new(class: ErrorClass, cause: impl Into<Cause>) -> Self {
                $name { class, cause: cause.into() }
            }

            pub fn class(&self) -> ErrorClass {
                self.class
            }

            /// Whether the same call may succeed later.
            pub fn is_retryable(&self) -> bool {
                self.class == ErrorClass::Retry
            }

            /// The adapter's own error, when it is an `E` (tests and diagnostics).
            pub fn cause<E: Error + 'static>(&self) -> Option<&E> {
                self.cause.downcast_ref::<E>()
            }
        }

        // Transparent: the cause's message, and the cause's own chain below it.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.cause, f)
            }
        }

        impl Error for $name {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                self.cause.source()
            }
        }
    };
}

port_error!(
    /// A failure reading the source (Cliniko).
    SourceError
);

port_error!(
    /// A failure reading or writing the sink (the Reckon book).
    SinkError
);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer says {0}")]
    struct Outer(String, #[source] std::io::Error);

    #[test]
    fn a_port_error_shows_its_cause_and_keeps_the_chain() {
        let io = std::io::Error::other("connection reset");
        let e = SinkError::new(ErrorClass::Retry, Outer("hello".into(), io));
        assert_eq!(e.to_string(), "outer says hello");
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("connection reset")
        );
        assert!(e.is_retryable());
        assert!(e.cause::<Outer>().is_some());
        assert!(e.cause::<std::io::Error>().is_none());
        let stop = SourceError::new(ErrorClass::StopTenant, "reconnect");
        assert!(!stop.is_retryable());
        assert_eq!(stop.class(), ErrorClass::StopTenant);
    }
}
