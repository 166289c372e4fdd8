//! The HTTP side of the Reckon client: book-scoped URLs, the two credentials on every call,
//! merge-patch, paging, retries (429 `Retry-After`, jittered backoff on 5xx and transport
//! errors), one token refresh on a 401, Reckon's 400 body as field errors, and the
//! [`ReckonSink`] port on top.

use super::auth::{ReckonOAuth, TokenManager};
use super::dto::{self, ErrorBody};
use super::{ReckonClientConfig, ReckonError};
use crate::domain::{
    CreditNoteDraft, CreditNoteStatus, CustomerDraft, InvoiceDraft, ItemDraft, LedgerAccount,
    ReckonCreditNote, ReckonCustomer, ReckonCustomerRecord, ReckonId, ReckonInvoice,
    ReckonInvoiceRecord, ReckonInvoiceStatus, ReckonItem, ReckonItemRecord,
};
use crate::ports::{
    CreditNoteSink, CustomerSink, InvoiceSink, ItemSink, Page, PageCursor, PaymentDraft,
    ReckonBook, SinkError, TokenStore,
};
use rand::Rng;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, LINK, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use url::Url;

const MERGE_PATCH: &str = "application/merge-patch+json";
/// Safety stop for paging (100 per page → a million records).
const MAX_PAGES: u32 = 10_000;

enum Payload<'a> {
    None,
    Json(&'a Value),
    MergePatch(&'a Value),
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Client-side pacing: a token bucket of `per_minute` requests (burst the same).
struct Pacer {
    per_minute: f64,
    state: tokio::sync::Mutex<(f64, Instant)>,
}

impl Pacer {
    fn new(per_minute: u32) -> Option<Pacer> {
        (per_minute > 0).then(|| Pacer {
            per_minute: f64::from(per_minute),
            state: tokio::sync::Mutex::new((f64::from(per_minute), Instant::now())),
        })
    }

    async fn take(&self) {
        let mut state = self.state.lock().await;
        loop {
            let now = Instant::now();
            let refill = now.duration_since(state.1).as_secs_f64() * self.per_minute / 60.0;
            state.0 = (state.0 + refill).min(self.per_minute);
            state.1 = now;
            if state.0 >= 1.0 {
                state.0 -= 1.0;
                return;
            }
            let wait = (1.0 - state.0) * 60.0 / self.per_minute;
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

/// The Reckon One v2 client for one book, over a token store `S`.
pub struct ReckonClient<S> {
    config: ReckonClientConfig,
    http: reqwest::Client,
    tokens: TokenManager<S>,
    pacer: Option<Pacer>,
    requests: AtomicU64,
}

impl<S> std::fmt::Debug for ReckonClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReckonClient")
            .field("config", &self.config)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl<S: TokenStore> ReckonClient<S> {
    pub fn new(config: ReckonClientConfig, store: S) -> Result<Self, ReckonError> {
        config.validate()?;
        let oauth = ReckonOAuth::new(&config)?;
        let tokens = TokenManager::new(oauth, store, config.refresh_margin);
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| ReckonError::Config(format!("HTTP client: {e}")))?;
        Ok(ReckonClient {
            pacer: Pacer::new(config.requests_per_minute),
            config,
            http,
            tokens,
            requests: AtomicU64::new(0),
        })
    }

    /// Receipts go to `account` from now on (the account check found the configured one
    /// missing and chose another).
    pub fn set_receipt_account(&mut self, account: String) {
        self.config.receipt_account = account;
    }

    pub fn config(&self) -> &ReckonClientConfig {
        &self.config
    }

    pub fn tokens(&self) -> &TokenManager<S> {
        &self.tokens
    }

    /// The consent URL for the connect flow.
    pub fn authorize_url(&self, state: &str) -> Url {
        self.tokens.oauth().authorize_url(state)
    }

    /// Exchanges the code from the redirect and stores the tokens.
    pub async fn connect(&self, code: &str) -> Result<(), ReckonError> {
        self.tokens.connect(code).await
    }

    /// Every ledger account in the book (to check configured account names).
    pub async fn ledger_accounts(&self) -> Result<Vec<LedgerAccount>, ReckonError> {
        let rows: Vec<dto::LedgerAccountOut> = self.list_all("ledgeraccounts", None).await?;
        rows.into_iter()
            .map(|a| {
                let id = a.id.parse().map_err(|_| ReckonError::Decode {
                    endpoint: "GET /ledgeraccounts".into(),
                    detail: format!("ledger account id {:?} is not a GUID", a.id),
                })?;
                Ok(LedgerAccount {
                    id,
                    name: a.name,
                    account_type: a.account_type.unwrap_or_default(),
                    active: a.status.as_deref() != Some("Inactive"),
                })
            })
            .collect()
    }

    /// The one check of what the configuration names in the book, as every shell runs it
    /// before syncing (`pipeline::accounts`): the ledger accounts (the receipt account is
    /// this client's) and, when configured, `invoicing.payment_terms`. Returns the notes
    /// about replacements; an error names the setting.
    pub async fn check_book(
        &mut self,
        mapping: &mut crate::mapping::MappingConfig,
    ) -> Result<Vec<String>, String> {
        use crate::pipeline::accounts::{AccountSettings, check_accounts, check_payment_terms};
        let keys = mapping.account_keys;
        let settings = AccountSettings {
            product_income: keys.product_income,
            service_income: keys.service_income,
            receipt: keys.receipt,
        };
        let chart = self.ledger_accounts().await.map_err(|e| e.to_string());
        let mut receipt = self.config.receipt_account.clone();
        let mut notes = check_accounts(
            chart.as_deref().map_err(Clone::clone),
            mapping,
            &mut receipt,
            settings,
        )?;
        if mapping.invoicing.payment_terms.is_some() {
            let terms = self.payment_terms().await.map_err(|e| e.to_string());
            notes.extend(check_payment_terms(
                terms.as_deref().map_err(Clone::clone),
                mapping,
            )?);
        }
        self.set_receipt_account(receipt);
        Ok(notes)
    }

    /// The book's payment terms, every page.
    pub async fn payment_terms(&self) -> Result<Vec<crate::domain::PaymentTerm>, ReckonError> {
        let rows: Vec<dto::PaymentTermOut> = self.list_all("terms", None).await?;
        Ok(rows
            .into_iter()
            .map(|t| crate::domain::PaymentTerm {
                active: t.status.as_deref() != Some("Inactive"),
                id: t.id,
                name: t.name,
            })
            .collect())
    }

    /// API requests sent so far (retries included; token-endpoint calls not).
    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.config.backoff_base.as_secs_f64();
        let exp = (base * 2f64.powi(attempt.saturating_sub(1).min(16) as i32))
            .min(self.config.max_backoff.as_secs_f64());
        let jittered = rand::rng().random_range(exp / 2.0..=exp.max(f64::MIN_POSITIVE));
        Duration::from_secs_f64(jittered)
    }

    /// One call with retries. `path` is relative to the book; the endpoint name used in
    /// errors and logs is `METHOD /path` without the query (filters may hold names).
    async fn execute(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        payload: Payload<'_>,
    ) -> Result<Answer, ReckonError> {
        let url = self.config.book_url(path)?;
        let endpoint = format!("{method} /{}", path.trim_start_matches('/'));
        // POST is not idempotent: only retry what cannot have created anything.
        let idempotent = method != Method::POST;
        let body = match &payload {
            Payload::None => None,
            Payload::Json(v) | Payload::MergePatch(v) => {
                Some(serde_json::to_vec(v).map_err(|e| ReckonError::Decode {
                    endpoint: endpoint.clone(),
                    detail: format!("could not encode the body: {e}"),
                })?)
            }
        };
        let content_type = match payload {
            Payload::None => None,
            Payload::Json(_) => Some("application/json"),
            Payload::MergePatch(_) => Some(MERGE_PATCH),
        };
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            if let Some(p) = &self.pacer {
                p.take().await;
            }
            let token = self.tokens.access_token().await?;
            let mut rb = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose_secret())
                .header(
                    "Ocp-Apim-Subscription-Key",
                    self.config.subscription_key.expose_secret(),
                )
                .header(ACCEPT, "application/json");
            if !query.is_empty() {
                rb = rb.query(query);
            }
            if let (Some(ct), Some(b)) = (content_type, &body) {
                rb = rb.header(CONTENT_TYPE, ct).body(b.clone());
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let sent = rb.send().await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    let e = e.without_url();
                    if (idempotent || e.is_connect()) && attempt < self.config.max_attempts {
                        tracing::warn!(%endpoint, attempt, "Reckon transport error; retrying");
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    return Err(ReckonError::Transport {
                        endpoint,
                        source: e,
                    });
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            let body_bytes = match response.bytes().await {
                Ok(b) => b.to_vec(),
                Err(e) => {
                    let e = e.without_url();
                    if idempotent && attempt < self.config.max_attempts {
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    return Err(ReckonError::Transport {
                        endpoint,
                        source: e,
                    });
                }
            };
            tracing::debug!(%endpoint, status = status.as_u16(), attempt, "Reckon answered");
            if status.is_success() {
                return Ok(Answer {
                    status,
                    headers,
                    body: body_bytes,
                });
            }
            let error = ErrorBody::parse(&body_bytes);
            match status.as_u16() {
                // A 401 from the API (not the gateway's key check): refresh once and retry.
                401 if !refreshed && !error.is_gateway() => {
                    refreshed = true;
                    attempt -= 1;
                    self.tokens.refresh_after_rejection(&token).await?;
                    continue;
                }
                429 => {
                    let wait = retry_after(&headers).unwrap_or_else(|| self.backoff(attempt));
                    if attempt < self.config.max_attempts {
                        let wait = wait.min(self.config.max_backoff);
                        tracing::warn!(%endpoint, ?wait, "Reckon rate limit; waiting");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(ReckonError::RateLimited {
                        endpoint,
                        retry_after: wait,
                    });
                }
                s if s >= 500 => {
                    // 503 means the request was not processed: safe even for POST.
                    if (idempotent || s == 503) && attempt < self.config.max_attempts {
                        tracing::warn!(%endpoint, status = s, attempt, "Reckon server error; retrying");
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    return Err(ReckonError::Status {
                        status: s,
                        endpoint,
                        message: error.message_or("server error"),
                    });
                }
                400 => {
                    return Err(ReckonError::Validation {
                        endpoint,
                        message: error.message_or("The request is invalid."),
                        errors: error.field_errors(),
                    });
                }
                s => {
                    return Err(ReckonError::Status {
                        status: s,
                        endpoint,
                        message: error.message_or(status.canonical_reason().unwrap_or("error")),
                    });
                }
            }
        }
    }

    fn decode<T: DeserializeOwned>(endpoint: &str, body: &[u8]) -> Result<T, ReckonError> {
        serde_json::from_slice(body).map_err(|e| ReckonError::Decode {
            endpoint: endpoint.to_string(),
            detail: e.to_string(),
        })
    }

    /// One page (1-based) of a list endpoint at `page_size`, and whether more follow (the
    /// `Link` header's `rel="next"`, else a full page short of `X-Total-Count`).
    async fn list_page<T: DeserializeOwned>(
        &self,
        path: &str,
        filter: Option<&str>,
        page: u32,
        seen_before: usize,
    ) -> Result<(Vec<T>, bool), ReckonError> {
        let per_page = self.config.page_size;
        let mut query = vec![
            ("page", page.to_string()),
            ("perpage", per_page.to_string()),
        ];
        if let Some(f) = filter {
            query.push(("filter", f.to_string()));
        }
        let answer = self
            .execute(Method::GET, path, &query, Payload::None)
            .await?;
        let endpoint = format!("GET /{path}");
        let body: dto::ListBody<T> = Self::decode(&endpoint, &answer.body)?;
        let got = body.list.len();
        let total: Option<usize> = answer
            .headers
            .get("X-Total-Count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let more = match answer.headers.get(LINK).and_then(|v| v.to_str().ok()) {
            Some(link) => link_has_next(link),
            None => got >= per_page as usize && total.is_none_or(|t| seen_before + got < t),
        };
        Ok((body.list, more && got > 0))
    }

    /// Every record of a list endpoint, page by page at `page_size`, until `Link` has no
    /// `next` (or, without `Link`, a short page or `X-Total-Count` reached).
    async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        filter: Option<String>,
    ) -> Result<Vec<T>, ReckonError> {
        let mut all: Vec<T> = Vec::new();
        for page in 1..=MAX_PAGES {
            let (list, more) = self
                .list_page(path, filter.as_deref(), page, all.len())
                .await?;
            all.extend(list);
            if !more {
                return Ok(all);
            }
        }
        Err(ReckonError::Decode {
            endpoint: format!("GET /{path}"),
            detail: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// A page of a full read; the cursor is `"{page}:{records seen before it}"`.
    async fn book_page<T: DeserializeOwned>(
        &self,
        path: &str,
        cursor: Option<PageCursor>,
    ) -> Result<(Vec<T>, Option<PageCursor>), ReckonError> {
        let (page, seen) = match &cursor {
            None => (1, 0),
            Some(PageCursor(c)) => c
                .split_once(':')
                .and_then(|(p, s)| Some((p.parse::<u32>().ok()?, s.parse::<usize>().ok()?)))
                .filter(|(p, _)| *p >= 1 && *p <= MAX_PAGES)
                .ok_or_else(|| ReckonError::Decode {
                    endpoint: format!("GET /{path}"),
                    detail: format!("not a page cursor: {c:?}"),
                })?,
        };
        let (list, more) = self.list_page(path, None, page, seen).await?;
        let next = more.then(|| PageCursor(format!("{}:{}", page + 1, seen + list.len())));
        Ok((list, next))
    }

    async fn get_one<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ReckonError> {
        match self.execute(Method::GET, path, &[], Payload::None).await {
            Ok(answer) => Self::decode(&format!("GET /{path}"), &answer.body).map(Some),
            Err(ReckonError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create(&self, path: &str, body: &Value) -> Result<ReckonId, ReckonError> {
        let answer = self
            .execute(Method::POST, path, &[], Payload::Json(body))
            .await?;
        if answer.status != StatusCode::CREATED && answer.status != StatusCode::OK {
            tracing::debug!(status = answer.status.as_u16(), "unexpected create status");
        }
        let created: dto::Created = Self::decode(&format!("POST /{path}"), &answer.body)?;
        Ok(created.id)
    }

    async fn put(&self, path: &str, body: &Value) -> Result<(), ReckonError> {
        self.execute(Method::PUT, path, &[], Payload::Json(body))
            .await
            .map(|_| ())
    }

    async fn patch(&self, path: &str, body: &Value) -> Result<(), ReckonError> {
        self.execute(Method::PATCH, path, &[], Payload::MergePatch(body))
            .await
            .map(|_| ())
    }

    fn to_value<T: serde::Serialize>(endpoint: &str, v: &T) -> Result<Value, ReckonError> {
        serde_json::to_value(v).map_err(|e| ReckonError::Decode {
            endpoint: endpoint.to_string(),
            detail: format!("could not encode the body: {e}"),
        })
    }

    async fn set_invoice_status(
        &self,
        id: ReckonId,
        target: ReckonInvoiceStatus,
    ) -> Result<(), ReckonError> {
        self.patch(&format!("invoices/{id}"), &dto::status_patch(target))
            .await
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Whether an RFC 5988 `Link` header has a `rel="next"` entry.
pub(crate) fn link_has_next(link: &str) -> bool {
    link.split(',').any(|part| {
        part.split(';').skip(1).any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=")
                .map(|r| r.trim_matches('"').split_whitespace().any(|r| r == "next"))
                .unwrap_or(false)
        })
    })
}

impl<S: TokenStore> CustomerSink for ReckonClient<S> {
    #[tracing::instrument(skip_all)]
    async fn customers(&self) -> Result<Vec<ReckonCustomer>, SinkError> {
        let views: Vec<dto::CustomerView> = self.list_all("customers", None).await?;
        Ok(views.into_iter().map(|v| v.into_domain()).collect())
    }

    #[tracing::instrument(skip_all)]
    async fn find_customer_by_name(&self, name: &str) -> Result<Option<ReckonCustomer>, SinkError> {
        let views: Vec<dto::CustomerView> = self
            .list_all("customers", dto::eq_filter("name", name))
            .await?;
        Ok(views
            .into_iter()
            .find(|v| v.name == name)
            .map(|v| v.into_domain()))
    }

    #[tracing::instrument(skip_all)]
    async fn create_customer(&self, customer: &CustomerDraft) -> Result<ReckonId, SinkError> {
        let input = dto::CustomerInput::from_draft(customer)?;
        let body = Self::to_value("POST /customers", &input)?;
        self.create("customers", &body)
            .await
            .map_err(SinkError::from)
    }

    /// GET then PUT: the draft owns name, status, addresses, phones and email; what the
    /// sync does not manage (notes, ABN, credit limit, terms) is carried over.
    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn update_customer(
        &self,
        id: ReckonId,
        customer: &CustomerDraft,
    ) -> Result<(), SinkError> {
        let mut input = dto::CustomerInput::from_draft(customer)?;
        let path = format!("customers/{id}");
        let existing: Value = self.get_one(&path).await?.ok_or(ReckonError::Status {
            status: 404,
            endpoint: format!("GET /{path}"),
            message: "Resource not found.".into(),
        })?;
        input.preserve_from(&existing);
        let body = Self::to_value("PUT /customers", &input)?;
        self.put(&path, &body).await.map_err(SinkError::from)
    }
}

impl<S: TokenStore> ItemSink for ReckonClient<S> {
    #[tracing::instrument(skip_all)]
    async fn find_item_by_name(&self, name: &str) -> Result<Option<ReckonItem>, SinkError> {
        let views: Vec<dto::ItemView> =
            self.list_all("items", dto::eq_filter("name", name)).await?;
        Ok(views
            .into_iter()
            .find(|v| v.name == name)
            .map(|v| v.into_domain()))
    }

    #[tracing::instrument(skip_all)]
    async fn find_items_by_code(&self, code: &str) -> Result<Vec<ReckonItem>, SinkError> {
        let views: Vec<dto::ItemView> = self
            .list_all("items", dto::eq_filter("itemCode", code))
            .await?;
        Ok(views
            .into_iter()
            .filter(|v| v.item_code.as_deref() == Some(code))
            .map(|v| v.into_domain())
            .collect())
    }

    #[tracing::instrument(skip_all)]
    async fn create_item(&self, item: &ItemDraft) -> Result<ReckonId, SinkError> {
        let input = dto::ItemInput::from_draft(item)?;
        let body = Self::to_value("POST /items", &input)?;
        self.create("items", &body).await.map_err(SinkError::from)
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn update_item(&self, id: ReckonId, item: &ItemDraft) -> Result<(), SinkError> {
        let input = dto::ItemInput::from_draft(item)?;
        let body = Self::to_value("PUT /items", &input)?;
        self.put(&format!("items/{id}"), &body)
            .await
            .map_err(SinkError::from)
    }
}

impl<S: TokenStore> InvoiceSink for ReckonClient<S> {
    #[tracing::instrument(skip_all)]
    async fn find_invoices_by_reference(
        &self,
        reference: &str,
    ) -> Result<Vec<ReckonInvoice>, SinkError> {
        let views: Vec<dto::InvoiceView> = self
            .list_all("invoices", dto::eq_filter("reference", reference))
            .await?;
        views
            .into_iter()
            .filter(|v| v.reference.as_deref() == Some(reference))
            .map(|v| v.into_domain("GET /invoices"))
            .collect::<Result<_, ReckonError>>()
            .map_err(SinkError::from)
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn invoice(&self, id: ReckonId) -> Result<Option<ReckonInvoice>, SinkError> {
        let path = format!("invoices/{id}");
        match self.get_one::<dto::InvoiceView>(&path).await? {
            Some(v) => v
                .into_domain(&format!("GET /{path}"))
                .map(Some)
                .map_err(SinkError::from),
            None => Ok(None),
        }
    }

    /// POST (Reckon creates a Draft), then a merge-patch of `status` unless Draft is wanted.
    #[tracing::instrument(skip_all)]
    async fn create_invoice(&self, invoice: &InvoiceDraft) -> Result<ReckonId, SinkError> {
        let input =
            dto::InvoiceInput::from_draft(invoice, self.config.invoice_template.as_deref())?;
        let body = Self::to_value("POST /invoices", &input)?;
        let id = self.create("invoices", &body).await?;
        if invoice.status != ReckonInvoiceStatus::Draft {
            self.set_invoice_status(id, invoice.status).await?;
        }
        Ok(id)
    }

    /// PUT (replaces header and lines), then the status merge-patch.
    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn update_invoice(&self, id: ReckonId, invoice: &InvoiceDraft) -> Result<(), SinkError> {
        let input =
            dto::InvoiceInput::from_draft(invoice, self.config.invoice_template.as_deref())?;
        let body = Self::to_value("PUT /invoices", &input)?;
        self.put(&format!("invoices/{id}"), &body).await?;
        self.set_invoice_status(id, invoice.status)
            .await
            .map_err(SinkError::from)
    }

    /// A receipt for `amount` into the configured deposit account, linked to the invoice.
    #[tracing::instrument(skip_all)]
    async fn record_payment(&self, payment: &PaymentDraft) -> Result<ReckonId, SinkError> {
        let input = dto::ReceiptInput::from_payment(
            payment,
            &self.config.receipt_account,
            self.config.payment_method.as_deref(),
        )?;
        let body = Self::to_value("POST /receipts", &input)?;
        self.create("receipts", &body)
            .await
            .map_err(SinkError::from)
    }
}

impl<S: TokenStore> CreditNoteSink for ReckonClient<S> {
    #[tracing::instrument(skip_all)]
    async fn find_credit_notes_by_reference(
        &self,
        reference: &str,
    ) -> Result<Vec<ReckonCreditNote>, SinkError> {
        let views: Vec<dto::CreditNoteView> = self
            .list_all("creditnotes", dto::eq_filter("reference", reference))
            .await?;
        views
            .into_iter()
            .filter(|v| v.reference.as_deref() == Some(reference))
            .map(|v| v.into_domain("GET /creditnotes"))
            .collect::<Result<_, ReckonError>>()
            .map_err(SinkError::from)
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn credit_note(&self, id: ReckonId) -> Result<Option<ReckonCreditNote>, SinkError> {
        let path = format!("creditnotes/{id}");
        match self.get_one::<dto::CreditNoteView>(&path).await? {
            Some(v) => v
                .into_domain(&format!("GET /{path}"))
                .map(Some)
                .map_err(SinkError::from),
            None => Ok(None),
        }
    }

    /// POST (Reckon creates a Draft), then a merge-patch of `status` unless Draft is wanted.
    #[tracing::instrument(skip_all)]
    async fn create_credit_note(&self, credit: &CreditNoteDraft) -> Result<ReckonId, SinkError> {
        let input = dto::CreditNoteInput::from_draft(credit)?;
        let body = Self::to_value("POST /creditnotes", &input)?;
        let id = self.create("creditnotes", &body).await?;
        if credit.status != CreditNoteStatus::Draft {
            self.patch(
                &format!("creditnotes/{id}"),
                &dto::credit_status_patch(credit.status),
            )
            .await?;
        }
        Ok(id)
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn update_credit_note(
        &self,
        id: ReckonId,
        credit: &CreditNoteDraft,
    ) -> Result<(), SinkError> {
        let input = dto::CreditNoteInput::from_draft(credit)?;
        let body = Self::to_value("PUT /creditnotes", &input)?;
        self.put(&format!("creditnotes/{id}"), &body).await?;
        self.patch(
            &format!("creditnotes/{id}"),
            &dto::credit_status_patch(credit.status),
        )
        .await
        .map_err(SinkError::from)
    }

    /// `POST /creditnotes/{id}/transactionlinks` (the answer's id is a link id, not a GUID).
    #[tracing::instrument(skip_all, fields(credit = %credit, invoice = %invoice))]
    async fn allocate_credit_note(
        &self,
        credit: ReckonId,
        invoice: ReckonId,
        amount: Decimal,
    ) -> Result<(), SinkError> {
        let input = dto::CreditLinkInput {
            transaction_id: invoice.to_string(),
            transaction_type: "Invoice",
            transaction_amount: amount,
        };
        let body = Self::to_value("POST /creditnotes/transactionlinks", &input)?;
        self.execute(
            Method::POST,
            &format!("creditnotes/{credit}/transactionlinks"),
            &[],
            Payload::Json(&body),
        )
        .await
        .map(|_| ())
        .map_err(SinkError::from)
    }
}

impl<S: TokenStore> ReckonBook for ReckonClient<S> {
    #[tracing::instrument(skip_all)]
    async fn customer_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> Result<Page<ReckonCustomerRecord>, SinkError> {
        let (views, next) = self
            .book_page::<dto::CustomerFullView>("customers", cursor)
            .await?;
        Ok(Page::new(
            views.into_iter().map(|v| v.into_domain()).collect(),
            next,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn item_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> Result<Page<ReckonItemRecord>, SinkError> {
        let (views, next) = self.book_page::<dto::ItemFullView>("items", cursor).await?;
        Ok(Page::new(
            views.into_iter().map(|v| v.into_domain()).collect(),
            next,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn invoice_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> Result<Page<ReckonInvoiceRecord>, SinkError> {
        let (views, next) = self
            .book_page::<dto::InvoiceFullView>("invoices", cursor)
            .await?;
        let items = views
            .into_iter()
            .map(|v| v.into_domain("GET /invoices"))
            .collect::<Result<_, _>>()?;
        Ok(Page::new(items, next))
    }

    #[tracing::instrument(skip_all)]
    async fn credit_note_page(
        &self,
        cursor: Option<PageCursor>,
    ) -> Result<Page<ReckonCreditNote>, SinkError> {
        let (views, next) = self
            .book_page::<dto::CreditNoteView>("creditnotes", cursor)
            .await?;
        let items = views
            .into_iter()
            .map(|v| v.into_domain("GET /creditnotes"))
            .collect::<Result<_, _>>()?;
        Ok(Page::new(items, next))
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn customer(&self, id: ReckonId) -> Result<Option<ReckonCustomerRecord>, SinkError> {
        let view = self
            .get_one::<dto::CustomerFullView>(&format!("customers/{id}"))
            .await?;
        Ok(view.map(|v| v.into_domain()))
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn item(&self, id: ReckonId) -> Result<Option<ReckonItemRecord>, SinkError> {
        let view = self
            .get_one::<dto::ItemFullView>(&format!("items/{id}"))
            .await?;
        Ok(view.map(|v| v.into_domain()))
    }

    #[tracing::instrument(skip_all, fields(id = %id))]
    async fn invoice_record(&self, id: ReckonId) -> Result<Option<ReckonInvoiceRecord>, SinkError> {
        let path = format!("invoices/{id}");
        match self.get_one::<dto::InvoiceFullView>(&path).await? {
            Some(v) => v
                .into_domain(&format!("GET /{path}"))
                .map(Some)
                .map_err(SinkError::from),
            None => Ok(None),
        }
    }
}

/// Convenience: a client whose store is bootstrapped with `refresh_token` (one refresh).
pub async fn bootstrap_client<S: TokenStore>(
    config: ReckonClientConfig,
    store: S,
    refresh_token: SecretString,
) -> Result<ReckonClient<S>, ReckonError> {
    let client = ReckonClient::new(config, store)?;
    client
        .tokens()
        .bootstrap_from_refresh_token(refresh_token)
        .await?;
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn link_next_is_detected() {
        let link = r#"<http://h/r1/v2/b/customers?page=1&perPage=3>; rel="first", <http://h/r1/v2/b/customers?page=2&perPage=3>; rel="next", <http://h/x?page=3>; rel="last""#;
        assert!(link_has_next(link));
        let last = r#"<http://h/x?page=1>; rel="first", <http://h/x?page=2>; rel="prev", <http://h/x?page=3>; rel="last""#;
        assert!(!link_has_next(last));
        assert!(link_has_next(r#"<http://h/x?page=2>; rel="prev next""#));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            retry_after(&h),
            Some(Duration::ZERO),
            "a past date means now"
        );
    }
}
