//! [`WorkQueue`] over SQS: one queue per route (patients; products and billable items;
//! invoices), message bodies are the [`WorkItem`] JSON (it carries `schema`), sent with
//! `SendMessageBatch`. [`decode_message`] is the workers' side.

use super::backend;
use crate::domain::EntityKind;
use crate::ports::{NotQueued, StateError, WORK_SCHEMA, WorkItem, WorkQueue};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

/// SQS's limit for one message body, and for the bodies of one batch together.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// SQS's limit of entries in one `SendMessageBatch`.
const MAX_BATCH_ENTRIES: usize = 10;

/// The queue URL of each route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrls {
    pub patients: String,
    /// Products and billable items (both become Reckon items).
    pub products: String,
    pub invoices: String,
}

impl QueueUrls {
    pub fn for_kind(&self, kind: EntityKind) -> &str {
        match kind {
            EntityKind::Patient => &self.patients,
            EntityKind::Product | EntityKind::BillableItem => &self.products,
            // An appointment is invoiced by the invoice worker: one writer of invoices.
            EntityKind::Invoice | EntityKind::Appointment => &self.invoices,
        }
    }
}

/// The poller's side of the SQS queues. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    urls: QueueUrls,
    /// Stamped on every message (`WorkItem::tenant`).
    tenant: crate::domain::TenantId,
}

/// One encoded message, named for errors.
struct Outgoing {
    name: String,
    body: String,
}

impl SqsQueue {
    /// The queues of the `default` tenant; see [`SqsQueue::for_tenant`].
    pub fn new(client: Client, urls: QueueUrls) -> SqsQueue {
        SqsQueue {
            client,
            urls,
            tenant: crate::domain::TenantId::default(),
        }
    }

    /// The same queues, stamping `tenant` on what it sends.
    pub fn for_tenant(self, tenant: crate::domain::TenantId) -> SqsQueue {
        SqsQueue { tenant, ..self }
    }

    pub fn urls(&self) -> &QueueUrls {
        &self.urls
    }

    /// Sends one batch; returns the messages SQS refused, with its reason for each.
    async fn send_batch<'a>(
        &self,
        url: &str,
        batch: &[&'a Outgoing],
    ) -> Result<Vec<(&'a Outgoing, String, bool)>, StateError> {
        let mut request = self.client.send_message_batch().queue_url(url);
        for (i, m) in batch.iter().enumerate() {
            // The tenant as the message group: on a standard queue this makes it an SQS fair
            // queue, so one clinic's backlog does not lengthen the other clinics' dwell time.
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(&m.body)
                .message_group_id(self.tenant.as_str())
                .build()
                .map_err(|e| StateError::Backend {
                    detail: format!("building the SQS entry for {}: {e}", m.name),
                    retryable: false,
                })?;
            request = request.entries(entry);
        }
        let out = request
            .send()
            .await
            .map_err(|e| backend("SQS SendMessageBatch", e))?;
        let mut refused = Vec::new();
        for f in out.failed() {
            let Some(m) = f.id().parse::<usize>().ok().and_then(|i| batch.get(i)) else {
                return Err(StateError::Backend {
                    detail: format!(
                        "SQS SendMessageBatch reported an unknown entry id {:?}",
                        f.id()
                    ),
                    retryable: true,
                });
            };
            let reason = format!("{}: {}", f.code(), f.message().unwrap_or("no message"));
            refused.push((*m, reason, !f.sender_fault()));
        }
        Ok(refused)
    }
}

/// Splits messages into batches of at most ten entries and `MAX_MESSAGE_BYTES` of bodies.
fn batches<'a>(messages: &[&'a Outgoing]) -> Vec<Vec<&'a Outgoing>> {
    let mut out: Vec<Vec<&Outgoing>> = Vec::new();
    let mut size = 0;
    for &m in messages {
        let fits = out.last().is_some_and(|b| {
            b.len() < MAX_BATCH_ENTRIES && size + m.body.len() <= MAX_MESSAGE_BYTES
        });
        if !fits {
            out.push(Vec::new());
            size = 0;
        }
        size += m.body.len();
        if let Some(b) = out.last_mut() {
            b.push(m);
        }
    }
    out
}

impl WorkQueue for SqsQueue {
    /// Sends every item to its route's queue. Every message is encoded and size-checked
    /// before anything is sent: an oversized record is returned (named, with its size) for
    /// the caller to park, and the rest are sent. Entries SQS refuses in a batch are
    /// retried once; what is still refused is reported (retryable unless SQS blames the
    /// sender).
    async fn enqueue(&self, items: Vec<WorkItem>) -> Result<Vec<NotQueued>, StateError> {
        let mut routes: Vec<(&str, Vec<Outgoing>)> = Vec::new();
        let mut too_large = Vec::new();
        for item in &items {
            let kind = item.record.kind();
            let name = format!(
                "{kind} {} (version {})",
                item.record.id(),
                super::ts(item.record.version())
            );
            let stamped = WorkItem {
                tenant: self.tenant.clone(),
                ..item.clone()
            };
            let body = serde_json::to_string(&stamped).map_err(|e| StateError::Backend {
                detail: format!("encoding {name} as a queue message: {e}"),
                retryable: false,
            })?;
            if body.len() > MAX_MESSAGE_BYTES {
                too_large.push(NotQueued {
                    kind,
                    cliniko_id: item.record.id(),
                    version: item.record.version(),
                    reason: format!(
                        "{name} is {} bytes as a queue message, over SQS's limit of {MAX_MESSAGE_BYTES} bytes",
                        body.len()
                    ),
                });
                continue;
            }
            let url = self.urls.for_kind(kind);
            let message = Outgoing { name, body };
            match routes.iter_mut().find(|(u, _)| *u == url) {
                Some((_, ms)) => ms.push(message),
                None => routes.push((url, vec![message])),
            }
        }
        let mut failed: Vec<String> = Vec::new();
        let mut all_retryable = true;
        for (url, messages) in &routes {
            let messages: Vec<&Outgoing> = messages.iter().collect();
            let mut refused = Vec::new();
            for batch in batches(&messages) {
                refused.extend(self.send_batch(url, &batch).await?);
            }
            if refused.is_empty() {
                continue;
            }
            tracing::warn!(
                queue = %url,
                refused = refused.len(),
                "SQS refused some messages of a batch; retrying them once"
            );
            let again: Vec<&Outgoing> = refused.iter().map(|(m, _, _)| *m).collect();
            for batch in batches(&again) {
                for (m, reason, retryable) in self.send_batch(url, &batch).await? {
                    all_retryable &= retryable;
                    failed.push(format!("{} ({reason})", m.name));
                }
            }
        }
        if failed.is_empty() {
            Ok(too_large)
        } else {
            Err(StateError::Backend {
                detail: format!(
                    "SQS refused {} message(s) twice: {}",
                    failed.len(),
                    failed.join("; ")
                ),
                retryable: all_retryable,
            })
        }
    }
}

/// Why a queued message cannot be handed to a worker.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "queued message{} has schema {found}, newer than this build understands ({supported}); deploy the newer workers or replay it later",
        record.as_ref().map(|r| format!(" for {r}")).unwrap_or_default()
    )]
    TooNew {
        record: Option<String>,
        found: u32,
        supported: u32,
    },
    #[error(
        "queued message{} is not a valid work item at `{path}`: {source}",
        record.as_ref().map(|r| format!(" for {r}")).unwrap_or_default()
    )]
    Malformed {
        /// `kind id` when the body says that much.
        record: Option<String>,
        /// Where in the body decoding failed (`record.first_name`, …).
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Names the record a body is about, when it says (for errors only).
fn record_name(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let kind = value.get("kind")?.as_str()?;
    let id = value.get("record")?.get("id")?;
    let id = id
        .as_str()
        .map(str::to_string)
        .or_else(|| id.as_u64().map(|n| n.to_string()))?;
    Some(format!("{kind} {id}"))
}

/// Decodes one SQS message body into a [`WorkItem`]: accepts every schema up to
/// [`WORK_SCHEMA`] and refuses newer ones (checked before the rest of the body, whose shape
/// a newer schema may have changed).
pub fn decode_message(body: &str) -> Result<WorkItem, DecodeError> {
    #[derive(serde::Deserialize)]
    struct Head {
        schema: u32,
    }
    let head =
        serde_path_to_error::deserialize::<_, Head>(&mut serde_json::Deserializer::from_str(body))
            .map_err(|e| DecodeError::Malformed {
                record: record_name(body),
                path: e.path().to_string(),
                source: e.into_inner(),
            })?;
    if head.schema > WORK_SCHEMA {
        return Err(DecodeError::TooNew {
            record: record_name(body),
            found: head.schema,
            supported: WORK_SCHEMA,
        });
    }
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(body)).map_err(|e| {
        DecodeError::Malformed {
            record: record_name(body),
            path: e.path().to_string(),
            source: e.into_inner(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_count_and_size() {
        let small: Vec<Outgoing> = (0..25)
            .map(|i| Outgoing {
                name: format!("m{i}"),
                body: "x".repeat(100),
            })
            .collect();
        let refs: Vec<&Outgoing> = small.iter().collect();
        let sizes: Vec<usize> = batches(&refs).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);

        let big: Vec<Outgoing> = (0..5)
            .map(|i| Outgoing {
                name: format!("b{i}"),
                body: "x".repeat(100 * 1024),
            })
            .collect();
        let refs: Vec<&Outgoing> = big.iter().collect();
        let sizes: Vec<usize> = batches(&refs).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
    }

    #[test]
    fn newer_schemas_are_refused_clearly() {
        let body = r#"{"schema": 99, "kind": "patient", "record": {"id": "42", "shape": "new"}}"#;
        let err = decode_message(body).unwrap_err();
        assert!(matches!(err, DecodeError::TooNew { found: 99, .. }));
        let text = err.to_string();
        assert!(text.contains("patient 42"), "{text}");
        assert!(text.contains("schema 99"), "{text}");
    }

    #[test]
    fn malformed_bodies_name_the_record_and_field() {
        let body = r#"{"schema": 1, "enqueued_at": "2026-01-01T00:00:00Z", "kind": "patient", "record": {"id": "42"}}"#;
        let err = decode_message(body).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("patient 42"), "{err}");
        let err = decode_message("not json").unwrap_err();
        assert!(matches!(err, DecodeError::Malformed { record: None, .. }));
    }
}
