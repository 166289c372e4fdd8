//! The HTTP side: one GET with headers, pacing, retries and typed errors; paging; and the
//! [`ClinikoSource`] implementation.

use super::ClinikoError;
use super::config::{self, ClinikoClientConfig};
use super::dto::{
    AppointmentDto, AppointmentTypeLineDto, BillableItemDto, BusinessDto, InvoiceDto,
    InvoiceItemDto, ItemRow, PatientDto, ProductDto, TaxDto, Wire, decode,
};
use super::pacing::Pacer;
use super::query::{ListQuery, PER_PAGE};
use crate::domain::{
    AppointmentTypeLine, Business, ClinikoId, EntityKind, Invoice, Record, Reversal, Tax,
};
use crate::ports::{self, Changes, ClinikoSource, PageCursor, SourceError, Unreadable};
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};
use secrecy::ExposeSecret;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tracing::{debug, instrument, warn};
use url::Url;

/// A Cliniko API v1 client. Cheap to clone: clones share the connection pool, the request
/// counter and the rate-limit pacing.
#[derive(Clone)]
pub struct ClinikoClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    /// `Basic base64(key:)`, marked sensitive so it never shows in Debug output.
    auth: HeaderValue,
    pacer: Pacer,
    requests: AtomicU64,
    max_attempts: u32,
    backoff_base: Duration,
    max_backoff: Duration,
    max_rate_limit_wait: Duration,
    user_agent: String,
}

impl std::fmt::Debug for ClinikoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClinikoClient")
            .field("base_url", &self.inner.base.as_str())
            .field("user_agent", &self.inner.user_agent)
            .field("requests_made", &self.requests_made())
            .finish_non_exhaustive()
    }
}

/// The resource path of each entity kind.
fn resource(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Patient => "patients",
        EntityKind::Product => "products",
        EntityKind::BillableItem => "billable_items",
        EntityKind::Invoice => "invoices",
        EntityKind::Appointment => "individual_appointments",
    }
}

/// How long a 429 asks us to wait: `X-RateLimit-Reset` (unix seconds) first, then
/// `Retry-After` (seconds), else `None` (the caller backs off). Capped at `cap`.
pub(super) fn rate_limit_wait(
    headers: &HeaderMap,
    now: DateTime<Utc>,
    cap: Duration,
) -> Option<Duration> {
    let header_int = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let wait = if let Some(reset) = header_int("x-ratelimit-reset") {
        // Wait until just after the reset second begins on the server.
        let ms = reset.saturating_mul(1000) - now.timestamp_millis() + 100;
        if ms > 0 {
            Some(Duration::from_millis(ms as u64))
        } else {
            header_int(RETRY_AFTER.as_str()).map(|s| Duration::from_secs(s.max(0) as u64))
        }
    } else {
        header_int(RETRY_AFTER.as_str()).map(|s| Duration::from_secs(s.max(0) as u64))
    };
    wait.map(|w| w.min(cap))
}

/// Full-jitter exponential backoff: uniform in [d/2, d] with d = base·2^(attempt-1) ≤ max.
fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
    let d = exp.min(max);
    let ms = d.as_millis() as u64;
    if ms < 2 {
        return d;
    }
    Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
}

/// A short, secret-free description of an error answer: Cliniko's `message`, or the start of
/// a plain-text body. Never the whole body.
fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body)
        && let Some(m) = v.get("message").and_then(Value::as_str)
    {
        return m.chars().take(200).collect();
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(no message)".into()
    } else {
        text.chars().take(200).collect()
    }
}

/// What one GET ended in, short of an error.
enum Fetched {
    Body(Value),
    NotFound,
}

/// One page of a list: its records (still JSON) and where the next page is.
struct Page {
    records: Vec<Value>,
    next: Option<Url>,
}

impl ClinikoClient {
    pub fn new(cfg: ClinikoClientConfig) -> Result<Self, ClinikoError> {
        config::validate_user_agent(&cfg.user_agent)?;
        let base = config::base_url(&cfg)?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let ua = HeaderValue::from_str(&cfg.user_agent)
            .map_err(|_| ClinikoError::Config("the User-Agent is not a valid header".into()))?;
        headers.insert(USER_AGENT, ua);
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:", cfg.api_key.expose_secret()));
        let mut auth = HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
            ClinikoError::Config("the API key has characters a header cannot carry".into())
        })?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout)
            // Links must lead back to Cliniko; never follow a redirect with the key attached.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(base.scheme() == "https")
            .build()
            .map_err(|e| ClinikoError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(ClinikoClient {
            inner: Arc::new(Inner {
                http,
                base,
                auth,
                pacer: Pacer::new(cfg.requests_per_minute, Duration::from_secs(60)),
                requests: AtomicU64::new(0),
                max_attempts: cfg.max_attempts.max(1),
                backoff_base: cfg.backoff_base,
                max_backoff: cfg.max_backoff,
                max_rate_limit_wait: cfg.max_rate_limit_wait,
                user_agent: cfg.user_agent,
            }),
        })
    }

    /// HTTP requests sent so far (every attempt, retries included), by this client and its clones.
    pub fn requests_made(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// The API base URL in use (`https://api.au2.cliniko.com/v1`).
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    fn url(&self, path: &str, query: &ListQuery) -> Url {
        let mut url = self.inner.base.clone();
        let joined = format!("{}/{}", url.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        if !query.is_empty() {
            url.set_query(Some(&query.encode()));
        }
        url
    }

    /// GET with pacing and retries. 404 is `NotFound`; other 4xx are errors at once.
    async fn get(&self, url: &Url) -> Result<Fetched, ClinikoError> {
        let inner = &self.inner;
        let endpoint = format!("GET {}", url.path());
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            inner.pacer.acquire().await;
            inner.requests.fetch_add(1, Ordering::Relaxed);
            let sent = inner
                .http
                .get(url.clone())
                .header(AUTHORIZATION, inner.auth.clone())
                .send()
                .await;
            let (error, wait) = match sent {
                Err(e) => {
                    let wait = backoff(inner.backoff_base, inner.max_backoff, attempt);
                    (
                        ClinikoError::Transport {
                            endpoint: endpoint.clone(),
                            source: e.without_url(),
                        },
                        wait,
                    )
                }
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Err(e) => (
                            ClinikoError::Transport {
                                endpoint: endpoint.clone(),
                                source: e.without_url(),
                            },
                            backoff(inner.backoff_base, inner.max_backoff, attempt),
                        ),
                        Ok(body) if status.is_success() => {
                            return serde_json::from_slice(&body)
                                .map(Fetched::Body)
                                .map_err(|e| ClinikoError::Decode {
                                    endpoint,
                                    detail: format!("body is not JSON: {e}"),
                                });
                        }
                        Ok(_) if status == StatusCode::NOT_FOUND => return Ok(Fetched::NotFound),
                        Ok(_) if status == StatusCode::TOO_MANY_REQUESTS => {
                            let wait =
                                rate_limit_wait(&headers, Utc::now(), inner.max_rate_limit_wait)
                                    .unwrap_or_else(|| {
                                        backoff(inner.backoff_base, inner.max_backoff, attempt)
                                    });
                            // Every clone holds off until the window resets.
                            inner.pacer.block_for(wait);
                            (
                                ClinikoError::RateLimited {
                                    endpoint: endpoint.clone(),
                                    retry_after: wait,
                                },
                                Duration::ZERO,
                            )
                        }
                        Ok(body) => {
                            let error = ClinikoError::Status {
                                status: status.as_u16(),
                                endpoint: endpoint.clone(),
                                message: error_message(&body),
                            };
                            if !error.is_retryable() {
                                return Err(error);
                            }
                            (
                                error,
                                backoff(inner.backoff_base, inner.max_backoff, attempt),
                            )
                        }
                    }
                }
            };
            if attempt >= inner.max_attempts {
                warn!(%endpoint, attempt, error = %error, "Cliniko request failed; giving up");
                return Err(error);
            }
            warn!(%endpoint, attempt, error = %error, wait_ms = wait.as_millis() as u64, "Cliniko request failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// GET a list page; the records sit under the resource's plural key.
    async fn page(&self, url: &Url, plural: &str) -> Result<Page, ClinikoError> {
        let endpoint = || format!("GET {}", url.path());
        let mut body = match self.get(url).await? {
            Fetched::Body(b) => b,
            Fetched::NotFound => {
                return Err(ClinikoError::Status {
                    status: 404,
                    endpoint: endpoint(),
                    message: "list not found".into(),
                });
            }
        };
        let records = match body.get_mut(plural).map(Value::take) {
            Some(Value::Array(list)) => list,
            _ => {
                return Err(ClinikoError::Decode {
                    endpoint: endpoint(),
                    detail: format!("no `{plural}` list in the page"),
                });
            }
        };
        let next = match body.get("links").and_then(|l| l.get("next")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(self.checked_next(s, &endpoint())?),
            Some(_) => {
                return Err(ClinikoError::Decode {
                    endpoint: endpoint(),
                    detail: "`links.next` is not a string".into(),
                });
            }
        };
        Ok(Page { records, next })
    }

    /// A `links.next` URL, only if it leads back to the same host (the key goes with it).
    fn checked_next(&self, link: &str, endpoint: &str) -> Result<Url, ClinikoError> {
        let url = Url::parse(link).map_err(|_| ClinikoError::Decode {
            endpoint: endpoint.into(),
            detail: "`links.next` is not a URL".into(),
        })?;
        let base = &self.inner.base;
        if url.scheme() != base.scheme()
            || url.host_str() != base.host_str()
            || url.port_or_known_default() != base.port_or_known_default()
        {
            return Err(ClinikoError::Decode {
                endpoint: endpoint.into(),
                detail: "`links.next` points at another host".into(),
            });
        }
        Ok(url)
    }

    /// Every record of a list, all pages followed, decoded.
    async fn list_all<W: Wire>(
        &self,
        plural: &str,
        query: ListQuery,
    ) -> Result<Vec<W::Domain>, ClinikoError> {
        let mut out = Vec::new();
        let mut next = Some(self.url(plural, &query));
        while let Some(url) = next {
            let page = self.page(&url, plural).await?;
            debug!(
                resource = plural,
                records = page.records.len(),
                "Cliniko page"
            );
            for record in &page.records {
                out.push(decode::<W>(record)?);
            }
            next = page.next;
        }
        Ok(out)
    }

    /// The live items of the given invoices (one id-list query, every page followed), and
    /// for an invoice with an item that cannot be read, what is wrong with it (the invoice
    /// is then unreadable as a whole: a line short, its totals would not add up).
    async fn items_of(&self, invoices: &[ClinikoId]) -> Result<InvoiceItems, ClinikoError> {
        let mut found = InvoiceItems::default();
        for chunk in invoices.chunks(PER_PAGE as usize) {
            let query = ListQuery::new().ids("invoice_id", chunk).per_page(PER_PAGE);
            let mut next = Some(self.url("invoice_items", &query));
            while let Some(url) = next {
                let page = self.page(&url, "invoice_items").await?;
                for raw in &page.records {
                    match decode::<InvoiceItemDto>(raw) {
                        Ok(ItemRow { item, live }) => {
                            if live {
                                found.items.entry(item.invoice_id).or_default().push(item);
                            }
                        }
                        Err(e) => match raw_link_id(raw, "invoice") {
                            Some(invoice) => {
                                found.broken.entry(invoice).or_insert_with(|| e.to_string());
                            }
                            // Tied to no invoice we can name: the invoice's own totals
                            // check (lines against `total_amount`) stops it instead.
                            None => {
                                warn!(error = %e, "unreadable invoice item without an invoice link")
                            }
                        },
                    }
                }
                next = page.next;
            }
        }
        Ok(found)
    }

    /// The live credit notes reversing each of the given invoices (one id-list query on
    /// `original_invoice_id`, every page followed). A reversal that cannot be read fails
    /// its invoice (named, set aside like one with an unreadable item): settling the
    /// invoice without it could clear its balance twice.
    async fn reversals_of(&self, invoices: &[ClinikoId]) -> Result<Reversals, ClinikoError> {
        let mut found = Reversals::default();
        for chunk in invoices.chunks(PER_PAGE as usize) {
            let query = ListQuery::new()
                .ids("original_invoice_id", chunk)
                .per_page(PER_PAGE);
            let mut next = Some(self.url("invoices", &query));
            while let Some(url) = next {
                let page = self.page(&url, "invoices").await?;
                for raw in &page.records {
                    match decode::<InvoiceDto>(raw) {
                        Ok(credit) => {
                            if let Some(original) = credit.original_invoice_id {
                                found.items.entry(original).or_default().push(Reversal {
                                    id: credit.id,
                                    number: credit.number,
                                    status: credit.status,
                                    total_amount: credit.total_amount,
                                    created_at: credit.created_at,
                                });
                            }
                        }
                        Err(e) => match raw_link_id(raw, "original_invoice") {
                            Some(original) => {
                                found
                                    .broken
                                    .entry(original)
                                    .or_insert_with(|| format!("its credit note: {e}"));
                            }
                            None => {
                                warn!(error = %e, "unreadable credit note without an original invoice link")
                            }
                        },
                    }
                }
                next = page.next;
            }
        }
        Ok(found)
    }

    /// Decodes each record of a page on its own: one that cannot be read is set aside,
    /// named, and never stops the rest. Invoices come with their items. Versions stamped
    /// later than now (plus a little clock skew) are taken as now, so one bad clock can
    /// never push a watermark into the future.
    async fn decode_page(
        &self,
        kind: EntityKind,
        raw: &[Value],
    ) -> Result<(Vec<Record>, Vec<Unreadable>), ClinikoError> {
        fn each<W: Wire>(
            kind: EntityKind,
            raw: &[Value],
            wrap: fn(W::Domain) -> Record,
        ) -> (Vec<Record>, Vec<Unreadable>) {
            let mut records = Vec::with_capacity(raw.len());
            let mut unreadable = Vec::new();
            for value in raw {
                match decode::<W>(value) {
                    Ok(r) => records.push(wrap(r)),
                    Err(e) => unreadable.push(unreadable_of(kind, value, e.to_string())),
                }
            }
            (records, unreadable)
        }
        let (mut records, mut unreadable) = match kind {
            EntityKind::Patient => each::<PatientDto>(kind, raw, Record::Patient),
            EntityKind::Product => each::<ProductDto>(kind, raw, Record::Product),
            EntityKind::BillableItem => each::<BillableItemDto>(kind, raw, Record::BillableItem),
            EntityKind::Appointment => each::<AppointmentDto>(kind, raw, Record::Appointment),
            EntityKind::Invoice => {
                let (records, mut unreadable) = each::<InvoiceDto>(kind, raw, Record::Invoice);
                let ids: Vec<ClinikoId> = records.iter().map(Record::id).collect();
                let mut found = if ids.is_empty() {
                    InvoiceItems::default()
                } else {
                    self.items_of(&ids).await?
                };
                let closed: Vec<ClinikoId> = records
                    .iter()
                    .filter(|r| matches!(r, Record::Invoice(i) if i.wants_reversals()))
                    .map(Record::id)
                    .collect();
                let mut reversals = if closed.is_empty() {
                    Reversals::default()
                } else {
                    self.reversals_of(&closed).await?
                };
                let mut kept = Vec::with_capacity(records.len());
                for record in records {
                    let Record::Invoice(mut invoice) = record else {
                        continue;
                    };
                    if let Some(error) = found
                        .broken
                        .remove(&invoice.id)
                        .or_else(|| reversals.broken.remove(&invoice.id))
                    {
                        unreadable.push(Unreadable {
                            kind,
                            id: Some(invoice.id),
                            updated_at: Some(invoice.updated_at),
                            error: format!("Cliniko invoice {}: {error}", invoice.id),
                        });
                        continue;
                    }
                    invoice.items = found.items.remove(&invoice.id).unwrap_or_default();
                    invoice.reversals = reversals.items.remove(&invoice.id).unwrap_or_default();
                    kept.push(Record::Invoice(invoice));
                }
                (kept, unreadable)
            }
        };
        let now = Utc::now();
        let limit = now + crate::domain::FUTURE_TOLERANCE;
        for r in &mut records {
            if r.clamp_versions(limit, now) {
                warn!(kind = %kind, id = %r.id(), "Cliniko stamped a record later than now; its version is taken as now");
            }
        }
        for u in &mut unreadable {
            u.updated_at = u.updated_at.map(|t| if t > limit { now } else { t });
        }
        Ok((records, unreadable))
    }

    /// One page of `kind`: the records it could read, the ones it could not, and where the
    /// next page is.
    async fn record_page(
        &self,
        kind: EntityKind,
        url: &Url,
    ) -> Result<(Vec<Record>, Vec<Unreadable>, Option<Url>), ClinikoError> {
        let page = self.page(url, resource(kind)).await?;
        let (records, unreadable) = self.decode_page(kind, &page.records).await?;
        debug!(kind = %kind, records = records.len(), unreadable = unreadable.len(), "Cliniko page");
        Ok((records, unreadable, page.next))
    }
}

/// Invoice items by invoice, and the first problem of each invoice with an unreadable item.
#[derive(Default)]
struct InvoiceItems {
    items: HashMap<ClinikoId, Vec<crate::domain::InvoiceItem>>,
    broken: HashMap<ClinikoId, String>,
}

/// Credit notes by the invoice they reverse, and the first problem of each invoice with an
/// unreadable one.
#[derive(Default)]
struct Reversals {
    items: HashMap<ClinikoId, Vec<Reversal>>,
    broken: HashMap<ClinikoId, String>,
}

/// What a record that failed to decode still tells about itself: its id and `updated_at`
/// when those at least are readable.
fn unreadable_of(kind: EntityKind, raw: &Value, error: String) -> Unreadable {
    let id = match raw.get("id") {
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    let updated_at = raw
        .get("updated_at")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    Unreadable {
        kind,
        id: id.map(ClinikoId),
        updated_at,
        error,
    }
}

/// The id at the end of a raw record's `<name>.links.self`.
fn raw_link_id(raw: &Value, name: &str) -> Option<ClinikoId> {
    let link = raw.get(name)?.get("links")?.get("self")?.as_str()?;
    let url = Url::parse(link).ok()?;
    let last = url.path_segments()?.rev().find(|s| !s.is_empty())?;
    last.parse().ok().map(ClinikoId)
}

/// Archived rows, deleted ones for invoices and appointments (`deleted_at` is filterable
/// on both, openapi.yaml; `*` includes deleted rows), and cancelled appointments (lists
/// hide them unless asked): the sync and the reconciliation see them all.
fn every_record(kind: EntityKind) -> ListQuery {
    let query = ListQuery::new().any("archived_at");
    match kind {
        EntityKind::Invoice => query.any("deleted_at"),
        EntityKind::Appointment => query.any("cancelled_at").any("deleted_at"),
        EntityKind::Patient | EntityKind::Product | EntityKind::BillableItem => query,
    }
}

/// Keeps the newest version of each id (paging can show a record twice when it changes
/// mid-read), in `updated_at, id` order.
fn dedupe(records: Vec<Record>) -> Vec<Record> {
    let mut newest: HashMap<ClinikoId, Record> = HashMap::with_capacity(records.len());
    for r in records {
        match newest.get(&r.id()) {
            Some(seen) if seen.version() > r.version() => {}
            _ => {
                newest.insert(r.id(), r);
            }
        }
    }
    let mut out: Vec<Record> = newest.into_values().collect();
    out.sort_by_key(|r| (updated_at(r), r.id()));
    out
}

fn updated_at(r: &Record) -> DateTime<Utc> {
    match r {
        Record::Patient(p) => p.updated_at,
        Record::Product(p) => p.updated_at,
        Record::BillableItem(b) => b.updated_at,
        Record::Invoice(i) => i.updated_at,
        Record::Appointment(a) => a.updated_at,
    }
}

impl ClinikoSource for ClinikoClient {
    #[instrument(skip(self), fields(kind = %kind))]
    async fn changed_since(
        &self,
        kind: EntityKind,
        since: Option<DateTime<Utc>>,
    ) -> Result<Changes, SourceError> {
        let mut query = every_record(kind);
        if let Some(t) = since {
            query = query.at_or_after("updated_at", t);
        }
        let query = query.sort("updated_at,id").per_page(PER_PAGE);
        let mut records = Vec::new();
        let mut unreadable = Vec::new();
        let mut next = Some(self.url(resource(kind), &query));
        while let Some(url) = next {
            let (page, bad, after) = self.record_page(kind, &url).await?;
            records.extend(page);
            unreadable.extend(bad);
            next = after;
        }
        let records = dedupe(records);
        debug!(
            records = records.len(),
            unreadable = unreadable.len(),
            "Cliniko changes read"
        );
        Ok(Changes {
            records,
            unreadable,
        })
    }

    #[instrument(skip(self), fields(kind = %kind, id = %id))]
    async fn record(&self, kind: EntityKind, id: ClinikoId) -> Result<Option<Record>, SourceError> {
        // Archived (and cancelled, deleted) rows are hidden from a plain GET unless asked for.
        let query = every_record(kind);
        let url = self.url(&format!("{}/{}", resource(kind), id.0), &query);
        let value = match self.get(&url).await? {
            Fetched::NotFound => return Ok(None),
            Fetched::Body(v) => v,
        };
        let (mut records, unreadable) =
            self.decode_page(kind, std::slice::from_ref(&value)).await?;
        if let Some(bad) = unreadable.into_iter().next() {
            return Err(ClinikoError::Unreadable(bad.error).into());
        }
        Ok(records.pop())
    }

    #[instrument(skip(self))]
    #[instrument(skip(self, cursor), fields(kind = %kind))]
    async fn all_page(
        &self,
        kind: EntityKind,
        cursor: Option<PageCursor>,
    ) -> Result<ports::Page<Record>, SourceError> {
        let plural = resource(kind);
        let url = match cursor {
            // The cursor is a `links.next` this client accepted before; check it again.
            Some(PageCursor(next)) => self.checked_next(&next, plural)?,
            None => self.url(plural, &every_record(kind).sort("id").per_page(PER_PAGE)),
        };
        let (items, unreadable, next) = self.record_page(kind, &url).await?;
        Ok(ports::Page {
            items,
            next: next.map(|u| PageCursor(u.to_string())),
            unreadable,
        })
    }

    async fn taxes(&self) -> Result<Vec<Tax>, SourceError> {
        self.list_all::<TaxDto>("taxes", ListQuery::new().per_page(PER_PAGE))
            .await
            .map_err(SourceError::from)
    }

    #[instrument(skip(self))]
    async fn businesses(&self) -> Result<Vec<Business>, SourceError> {
        // Archived businesses too: old invoices still need their time zone.
        let query = ListQuery::new().any("archived_at").per_page(PER_PAGE);
        self.list_all::<BusinessDto>("businesses", query)
            .await
            .map_err(SourceError::from)
    }

    #[instrument(skip(self))]
    async fn appointment_type_lines(&self) -> Result<Vec<AppointmentTypeLine>, SourceError> {
        self.list_all::<AppointmentTypeLineDto>(
            "appointment_type_billable_items",
            ListQuery::new().per_page(PER_PAGE),
        )
        .await
        .map_err(SourceError::from)
    }

    #[instrument(skip(self))]
    async fn invoices_of_appointment(
        &self,
        appointment: ClinikoId,
    ) -> Result<Vec<Invoice>, SourceError> {
        let query = ListQuery::new()
            .filter("appointment_id", "=", &appointment.0.to_string())
            .per_page(PER_PAGE);
        let found = self.list_all::<InvoiceDto>("invoices", query).await?;
        // Lists hide archived and deleted invoices already; checked again, as a filter the
        // server ignored must not make a withdrawn invoice count.
        Ok(found
            .into_iter()
            .filter(|i| i.archived_at.is_none() && i.deleted_at.is_none())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn client(key: &str) -> ClinikoClient {
        ClinikoClient::new(ClinikoClientConfig::new(
            key.into(),
            "Cliniko Reckon Sync (ops@example.com)",
        ))
        .expect("client builds")
    }

    #[test]
    fn basic_auth_matches_the_documented_test_vector() {
        let c = client("MxJrZXkiOiI1Njd1amJmZTQ1NyJ9-au2");
        assert_eq!(
            c.inner.auth.to_str().unwrap(),
            "Basic TXhKclpYa2lPaUkxTmpkMWFtSm1aVFExTnlKOS1hdTI6"
        );
        assert!(c.inner.auth.is_sensitive());
        assert_eq!(c.base_url().as_str(), "https://api.au2.cliniko.com/v1");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("MxJrZXki") && !shown.contains("TXhK"),
            "{shown}"
        );
    }

    #[test]
    fn new_refuses_bad_user_agents_and_keys() {
        let bad_ua = ClinikoClient::new(ClinikoClientConfig::new("k-au1".into(), "curl/8"));
        assert!(matches!(bad_ua, Err(ClinikoError::Config(_))));
        let bad_key = ClinikoClient::new(ClinikoClientConfig::new(
            "k-somewhere".into(),
            "App (a@b.c)",
        ));
        assert!(matches!(bad_key, Err(ClinikoError::Config(_))));
    }

    #[test]
    fn urls_join_the_base_and_encode_the_query() {
        let c = client("k-uk2");
        let url = c.url(
            "patients",
            &ListQuery::new().any("archived_at").per_page(100),
        );
        assert_eq!(
            url.as_str(),
            "https://api.uk2.cliniko.com/v1/patients?q%5B%5D=archived_at%3A*&per_page=100"
        );
        assert!(
            c.checked_next("https://api.uk2.cliniko.com/v1/patients?page=2", "x")
                .is_ok()
        );
        assert!(
            c.checked_next("https://evil.example/v1/patients?page=2", "x")
                .is_err()
        );
        assert!(
            c.checked_next("http://api.uk2.cliniko.com/v1/patients?page=2", "x")
                .is_err()
        );
    }

    #[test]
    fn rate_limit_wait_prefers_the_reset_header_then_retry_after() {
        let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let cap = Duration::from_secs(65);
        let mut h = HeaderMap::new();
        assert_eq!(rate_limit_wait(&h, now, cap), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(rate_limit_wait(&h, now, cap), Some(Duration::from_secs(7)));
        let reset = now.timestamp() + 3;
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&reset.to_string()).unwrap(),
        );
        assert_eq!(
            rate_limit_wait(&h, now, cap),
            Some(Duration::from_millis(3100))
        );
        // Capped.
        assert_eq!(
            rate_limit_wait(&h, now, Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
        // A reset already past falls back to Retry-After.
        let past = now + chrono::TimeDelta::seconds(10);
        assert_eq!(rate_limit_wait(&h, past, cap), Some(Duration::from_secs(7)));
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_millis(1000);
        for _ in 0..50 {
            let first = backoff(base, max, 1);
            assert!(
                (50..=100).contains(&(first.as_millis() as u64)),
                "{first:?}"
            );
            let third = backoff(base, max, 3);
            assert!(
                (200..=400).contains(&(third.as_millis() as u64)),
                "{third:?}"
            );
            assert!(backoff(base, max, 30) <= max);
        }
    }

    #[test]
    fn error_messages_are_short_and_from_the_message_field() {
        assert_eq!(
            error_message(br#"{"message":"This column is not searchable."}"#),
            "This column is not searchable."
        );
        assert_eq!(
            error_message(b"HTTP Basic: Access denied.\n"),
            "HTTP Basic: Access denied."
        );
        assert_eq!(error_message(&[b'x'; 1000]).len(), 200);
    }
}
