//! [`StateStore`] over one DynamoDB table; the key design is in the parent module's docs.

use super::{backend, check_tenant, corrupt, parse_ts, ts};
use crate::domain::{ClinikoId, EntityKind, ReckonId};
use crate::ports::{AuditEntry, CrossRef, Failure, Intent, Outcome, StateError, StateStore};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// How long an intent outlives its start before DynamoDB's TTL removes it.
const INTENT_TTL: TimeDelta = TimeDelta::days(7);
/// How long audit entries are kept.
const AUDIT_TTL: TimeDelta = TimeDelta::days(400);

/// The state of one tenant in the shared table. Cheap to clone (the client is an `Arc`).
#[derive(Clone)]
pub struct DynamoState {
    client: Client,
    table: String,
    tenant: String,
}

impl std::fmt::Debug for DynamoState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoState")
            .field("table", &self.table)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn get_s<'a>(item: &'a Item, key: &str, attr: &str) -> Result<&'a str, StateError> {
    match item.get(attr) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(_) => Err(corrupt(key, format!("attribute {attr} is not a string"))),
        None => Err(corrupt(key, format!("attribute {attr} is missing"))),
    }
}

pub(super) fn get_opt_s(item: &Item, key: &str, attr: &str) -> Result<Option<String>, StateError> {
    match item.get(attr) {
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(AttributeValue::Null(_)) | None => Ok(None),
        Some(_) => Err(corrupt(key, format!("attribute {attr} is not a string"))),
    }
}

fn get_n(item: &Item, key: &str, attr: &str) -> Result<i64, StateError> {
    match item.get(attr) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|e| corrupt(key, format!("attribute {attr}: {e}"))),
        Some(_) => Err(corrupt(key, format!("attribute {attr} is not a number"))),
        None => Err(corrupt(key, format!("attribute {attr} is missing"))),
    }
}

fn get_bool(item: &Item, key: &str, attr: &str) -> Result<bool, StateError> {
    match item.get(attr) {
        Some(AttributeValue::Bool(v)) => Ok(*v),
        Some(_) => Err(corrupt(key, format!("attribute {attr} is not a boolean"))),
        None => Err(corrupt(key, format!("attribute {attr} is missing"))),
    }
}

fn kind_of(key: &str, text: &str) -> Result<EntityKind, StateError> {
    EntityKind::parse(text).ok_or_else(|| corrupt(key, format!("unknown entity kind {text:?}")))
}

fn cliniko_id(key: &str, text: &str) -> Result<ClinikoId, StateError> {
    text.parse()
        .map_err(|e| corrupt(key, format!("cliniko id {text:?}: {e}")))
}

fn reckon_id(key: &str, text: &str) -> Result<ReckonId, StateError> {
    text.parse()
        .map_err(|e| corrupt(key, format!("reckon id {text:?}: {e}")))
}

fn outcome_of(key: &str, text: &str) -> Result<Outcome, StateError> {
    Outcome::parse(text).ok_or_else(|| corrupt(key, format!("unknown outcome {text:?}")))
}

/// Names compare case-insensitively (Reckon's uniqueness rule).
fn fold(name: &str) -> String {
    name.to_lowercase()
}

fn epoch_secs(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

/// Creates the state table with the schema the CDK stack deploys (`pk`/`sk`, on-demand,
/// GSI `gsi1` on `gsi1pk`/`gsi1sk` projecting everything). For local emulators and tests;
/// in AWS the stack owns the table (with TTL on `expires_at` and point-in-time recovery).
pub async fn create_state_table(client: &Client, table: &str) -> Result<(), StateError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let invalid = |e: aws_sdk_dynamodb::error::BuildError| corrupt("table definition", e);
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(invalid)
    };
    let key = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(invalid)
    };
    let gsi1 = GlobalSecondaryIndex::builder()
        .index_name("gsi1")
        .key_schema(key("gsi1pk", KeyType::Hash)?)
        .key_schema(key("gsi1sk", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(invalid)?;
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(gsi1)
        .send()
        .await
        .map_err(|e| backend("DynamoDB CreateTable", e))?;
    Ok(())
}

/// Every item of partition `pk` in `table` (all pages, consistent reads), in sort-key
/// order, keeping only the `projection` attributes when given.
pub(super) async fn query_partition(
    client: &Client,
    table: &str,
    pk: &str,
    projection: Option<&str>,
) -> Result<Vec<Item>, StateError> {
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("#pk = :pk")
            .set_projection_expression(projection.map(str::to_string))
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| backend("DynamoDB Query", e))?;
        out.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(out),
        }
    }
}

impl DynamoState {
    /// The state of `tenant` in `table` (created by the CDK stack, or by the tests with the
    /// same schema). The tenant id must be non-empty and free of `#`.
    pub fn new(
        client: Client,
        table: impl Into<String>,
        tenant: impl Into<String>,
    ) -> Result<DynamoState, StateError> {
        let tenant = tenant.into();
        check_tenant(&tenant)?;
        Ok(DynamoState {
            client,
            table: table.into(),
            tenant,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    fn pk(&self, rest: &str) -> String {
        format!("T#{}#{rest}", self.tenant)
    }

    fn xref_pk(&self, kind: EntityKind) -> String {
        self.pk(&format!("XREF#{kind}"))
    }

    fn xname_pk(&self, kind: EntityKind) -> String {
        self.pk(&format!("XNAME#{kind}"))
    }

    fn intent_pk(&self, kind: EntityKind) -> String {
        self.pk(&format!("INTENT#{kind}"))
    }

    fn rid_gsi(&self, kind: EntityKind, id: ReckonId) -> String {
        self.pk(&format!("RID#{kind}#{id}"))
    }

    fn name_gsi(&self, kind: EntityKind, name: &str) -> String {
        self.pk(&format!("NAME#{kind}#{}", fold(name)))
    }

    fn audit_pk(&self, day: NaiveDate) -> String {
        self.pk(&format!("AUDIT#{}", day.format("%Y-%m-%d")))
    }

    /// One item by key, read consistently.
    async fn get(&self, pk: String, sk: String) -> Result<Option<Item>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("DynamoDB GetItem", e))?;
        Ok(out.item)
    }

    async fn delete(&self, pk: String, sk: String) -> Result<(), StateError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .send()
            .await
            .map_err(|e| backend("DynamoDB DeleteItem", e))?;
        Ok(())
    }

    /// Every item of a partition (all pages), in sort-key order.
    async fn query_partition(&self, pk: String) -> Result<Vec<Item>, StateError> {
        self.query_partition_projected(pk, None).await
    }

    /// As [`Self::query_partition`], keeping only the `projection` attributes when given (a
    /// page then carries many more items).
    async fn query_partition_projected(
        &self,
        pk: String,
        projection: Option<&str>,
    ) -> Result<Vec<Item>, StateError> {
        query_partition(&self.client, &self.table, &pk, projection).await
    }

    /// The base-table keys `(pk, sk)` of the items `gsi1` holds under `gsi1pk` (all pages).
    /// The index is eventually consistent: callers re-read each base item and check it.
    async fn gsi_keys(&self, gsi1pk: String) -> Result<Vec<(String, String)>, StateError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("gsi1")
                .key_condition_expression("#g = :g")
                .expression_attribute_names("#g", "gsi1pk")
                .expression_attribute_values(":g", s(gsi1pk.clone()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("DynamoDB Query gsi1", e))?;
            for item in page.items.unwrap_or_default() {
                let pk = get_s(&item, "gsi1", "pk")?.to_string();
                let sk = get_s(&item, "gsi1", "sk")?.to_string();
                out.push((pk, sk));
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(out),
            }
        }
    }

    fn xref_from_item(&self, kind: EntityKind, item: &Item) -> Result<CrossRef, StateError> {
        let key = format!("cross-reference {kind}");
        let id = cliniko_id(&key, get_s(item, &key, "sk")?)?;
        let key = format!("cross-reference {kind} {id}");
        Ok(CrossRef {
            kind,
            cliniko_id: id,
            reckon_id: reckon_id(&key, get_s(item, &key, "reckon_id")?)?,
            version: parse_ts(&key, get_s(item, &key, "version")?)?,
            content_hash: get_s(item, &key, "content_hash")?.to_string(),
            reckon_name: get_opt_s(item, &key, "reckon_name")?,
            adopted: item
                .get("adopted")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        })
    }

    /// All watermarks of this tenant, for `status`.
    pub async fn watermarks(&self) -> Result<Vec<(EntityKind, DateTime<Utc>)>, StateError> {
        let mut out = Vec::new();
        for item in self.query_partition(self.pk("WM")).await? {
            let kind = kind_of("watermark", get_s(&item, "watermark", "sk")?)?;
            let key = format!("watermark {kind}");
            out.push((kind, parse_ts(&key, get_s(&item, &key, "at")?)?));
        }
        Ok(out)
    }

    /// The audit entries of one UTC day, oldest first.
    pub async fn audit_for_day(&self, day: NaiveDate) -> Result<Vec<AuditEntry>, StateError> {
        let mut out = Vec::new();
        for item in self.query_partition(self.audit_pk(day)).await? {
            let key = format!("audit {}", get_s(&item, "audit", "sk")?);
            out.push(AuditEntry {
                at: parse_ts(&key, get_s(&item, &key, "at")?)?,
                kind: kind_of(&key, get_s(&item, &key, "kind")?)?,
                cliniko_id: cliniko_id(&key, get_s(&item, &key, "cliniko_id")?)?,
                version: parse_ts(&key, get_s(&item, &key, "version")?)?,
                outcome: outcome_of(&key, get_s(&item, &key, "outcome")?)?,
                reckon_id: get_opt_s(&item, &key, "reckon_id")?
                    .map(|r| reckon_id(&key, &r))
                    .transpose()?,
                detail: get_s(&item, &key, "detail")?.to_string(),
            });
        }
        Ok(out)
    }
}

/// Whether a cancelled transaction was cancelled by the condition on its first action.
fn condition_refused(err: &SdkError<TransactWriteItemsError, impl std::fmt::Debug>) -> bool {
    match err {
        SdkError::ServiceError(service) => match service.err() {
            TransactWriteItemsError::TransactionCanceledException(e) => e
                .cancellation_reasons()
                .first()
                .and_then(|r| r.code())
                .is_some_and(|c| c == "ConditionalCheckFailed"),
            _ => false,
        },
        _ => false,
    }
}

impl StateStore for DynamoState {
    async fn watermark(&self, kind: EntityKind) -> Result<Option<DateTime<Utc>>, StateError> {
        let item = self.get(self.pk("WM"), kind.as_str().to_string()).await?;
        let key = format!("watermark {kind}");
        item.map(|i| parse_ts(&key, get_s(&i, &key, "at")?))
            .transpose()
    }

    async fn advance_watermark(
        &self,
        kind: EntityKind,
        to: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(self.pk("WM")))
            .key("sk", s(kind.as_str()))
            .update_expression("SET #at = :new")
            .condition_expression("attribute_not_exists(#at) OR #at < :new")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":new", s(ts(to)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A later watermark is already stored: never move backwards.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(backend("DynamoDB UpdateItem (watermark)", e)),
        }
    }

    async fn cross_ref(
        &self,
        kind: EntityKind,
        id: ClinikoId,
    ) -> Result<Option<CrossRef>, StateError> {
        self.get(self.xref_pk(kind), id.to_string())
            .await?
            .map(|item| self.xref_from_item(kind, &item))
            .transpose()
    }

    async fn links(&self, kind: EntityKind) -> Result<Vec<(ClinikoId, ReckonId)>, StateError> {
        let items = self
            .query_partition_projected(self.xref_pk(kind), Some("sk, reckon_id"))
            .await?;
        items
            .iter()
            .map(|item| {
                let sk = get_s(item, "cross-reference", "sk")?;
                let key = format!("cross-reference {kind} {sk}");
                Ok((
                    cliniko_id(&key, sk)?,
                    reckon_id(&key, get_s(item, &key, "reckon_id")?)?,
                ))
            })
            .collect()
    }

    async fn cross_ref_by_reckon(
        &self,
        kind: EntityKind,
        id: ReckonId,
    ) -> Result<Option<CrossRef>, StateError> {
        let xref_pk = self.xref_pk(kind);
        for (pk, sk) in self.gsi_keys(self.rid_gsi(kind, id)).await? {
            if pk != xref_pk {
                continue;
            }
            if let Some(item) = self.get(pk, sk).await? {
                let xref = self.xref_from_item(kind, &item)?;
                if xref.reckon_id == id {
                    return Ok(Some(xref));
                }
            }
        }
        Ok(None)
    }

    async fn name_owner(
        &self,
        kind: EntityKind,
        name: &str,
    ) -> Result<Option<ClinikoId>, StateError> {
        let wanted = fold(name);
        let (xname_pk, intent_pk) = (self.xname_pk(kind), self.intent_pk(kind));
        for (pk, sk) in self.gsi_keys(self.name_gsi(kind, name)).await? {
            let attr = if pk == xname_pk {
                "name"
            } else if pk == intent_pk {
                "marker"
            } else {
                continue;
            };
            // Re-read: the index may lag behind a rename or a cleared intent.
            if let Some(item) = self.get(pk, sk.clone()).await? {
                let key = format!("name of {kind} {sk}");
                if fold(get_s(&item, &key, attr)?) == wanted {
                    return cliniko_id(&key, &sk).map(Some);
                }
            }
        }
        Ok(None)
    }

    async fn put_cross_ref(&self, x: &CrossRef) -> Result<bool, StateError> {
        let id = x.cliniko_id.to_string();
        let version = ts(x.version);
        let mut xref = Put::builder()
            .table_name(&self.table)
            .item("pk", s(self.xref_pk(x.kind)))
            .item("sk", s(&id))
            .item("reckon_id", s(x.reckon_id.to_string()))
            .item("version", s(&version))
            .item("content_hash", s(&x.content_hash))
            .item("gsi1pk", s(self.rid_gsi(x.kind, x.reckon_id)))
            .item("gsi1sk", s(&id))
            .condition_expression("attribute_not_exists(#pk) OR #v <= :v")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", s(&version));
        if let Some(name) = &x.reckon_name {
            xref = xref.item("reckon_name", s(name));
        }
        if x.adopted {
            xref = xref.item("adopted", AttributeValue::Bool(true));
        }
        let xref = xref.build().map_err(|e| StateError::Backend {
            detail: format!("building the cross-reference put: {e}"),
            retryable: false,
        })?;
        let name_item = match &x.reckon_name {
            Some(name) => TransactWriteItem::builder().put(
                Put::builder()
                    .table_name(&self.table)
                    .item("pk", s(self.xname_pk(x.kind)))
                    .item("sk", s(&id))
                    .item("name", s(name))
                    .item("version", s(&version))
                    .item("gsi1pk", s(self.name_gsi(x.kind, name)))
                    .item("gsi1sk", s(format!("XREF#{id}")))
                    .build()
                    .map_err(|e| StateError::Backend {
                        detail: format!("building the name put: {e}"),
                        retryable: false,
                    })?,
            ),
            None => TransactWriteItem::builder().delete(
                Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(self.xname_pk(x.kind)))
                    .key("sk", s(&id))
                    .build()
                    .map_err(|e| StateError::Backend {
                        detail: format!("building the name delete: {e}"),
                        retryable: false,
                    })?,
            ),
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(xref).build())
            .transact_items(name_item.build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_refused(&e) => Ok(false),
            Err(e) => Err(backend("DynamoDB TransactWriteItems (cross-reference)", e)),
        }
    }

    async fn forget_cross_ref(
        &self,
        kind: EntityKind,
        id: ClinikoId,
        reckon_id: ReckonId,
    ) -> Result<bool, StateError> {
        let building = |e: aws_sdk_dynamodb::error::BuildError| StateError::Backend {
            detail: format!("building the cross-reference delete: {e}"),
            retryable: false,
        };
        let xref = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(self.xref_pk(kind)))
            .key("sk", s(id.to_string()))
            .condition_expression("#r = :r")
            .expression_attribute_names("#r", "reckon_id")
            .expression_attribute_values(":r", s(reckon_id.to_string()))
            .build()
            .map_err(building)?;
        let name = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(self.xname_pk(kind)))
            .key("sk", s(id.to_string()))
            .build()
            .map_err(building)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(xref).build())
            .transact_items(TransactWriteItem::builder().delete(name).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_refused(&e) => Ok(false),
            Err(e) => Err(backend(
                "DynamoDB TransactWriteItems (forget cross-reference)",
                e,
            )),
        }
    }

    async fn intent(&self, kind: EntityKind, id: ClinikoId) -> Result<Option<Intent>, StateError> {
        let Some(item) = self.get(self.intent_pk(kind), id.to_string()).await? else {
            return Ok(None);
        };
        let key = format!("intent {kind} {id}");
        Ok(Some(Intent {
            kind,
            cliniko_id: id,
            marker: get_s(&item, &key, "marker")?.to_string(),
            started_at: parse_ts(&key, get_s(&item, &key, "started_at")?)?,
            owner: get_opt_s(&item, &key, "owner")?.unwrap_or_default(),
        }))
    }

    async fn put_intent(&self, i: &Intent) -> Result<bool, StateError> {
        let id = i.cliniko_id.to_string();
        let expires = epoch_secs(i.started_at.max(Utc::now()) + INTENT_TTL);
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(self.intent_pk(i.kind)))
            .item("sk", s(&id))
            .item("marker", s(&i.marker))
            .item("started_at", s(ts(i.started_at)))
            .item("owner", s(&i.owner))
            .item("expires_at", n(expires))
            .item("gsi1pk", s(self.name_gsi(i.kind, &i.marker)))
            .item("gsi1sk", s(format!("INTENT#{id}")))
            // Two workers can never both create one record: the claim is taken only when
            // no other worker's attempt started within INTENT_CLAIM (this worker may retry
            // its own at once).
            .condition_expression("attribute_not_exists(#pk) OR #at <= :stale OR #owner = :me")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#at", "started_at")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":me", s(&i.owner))
            .expression_attribute_values(":stale", s(ts(i.started_at - crate::ports::INTENT_CLAIM)))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(backend("DynamoDB PutItem (intent)", e)),
        }
    }

    async fn clear_intent(&self, kind: EntityKind, id: ClinikoId) -> Result<(), StateError> {
        self.delete(self.intent_pk(kind), id.to_string()).await
    }

    async fn audit(&self, e: &AuditEntry) -> Result<(), StateError> {
        let sk = format!(
            "{}#{}#{}#{}",
            ts(e.at),
            e.kind,
            e.cliniko_id,
            uuid::Uuid::new_v4()
        );
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(self.audit_pk(e.at.date_naive())))
            .item("sk", s(sk))
            .item("at", s(ts(e.at)))
            .item("kind", s(e.kind.as_str()))
            .item("cliniko_id", s(e.cliniko_id.to_string()))
            .item("version", s(ts(e.version)))
            .item("outcome", s(e.outcome.as_str()))
            .item("detail", s(&e.detail))
            .item(
                "expires_at",
                n(epoch_secs(e.at.max(Utc::now()) + AUDIT_TTL)),
            );
        if let Some(rid) = e.reckon_id {
            put = put.item("reckon_id", s(rid.to_string()));
        }
        put.send()
            .await
            .map_err(|e| backend("DynamoDB PutItem (audit)", e))?;
        Ok(())
    }

    async fn record_failure(&self, f: &Failure) -> Result<(), StateError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(self.pk("FAIL")))
            .item("sk", s(format!("{}#{}", f.kind, f.cliniko_id)))
            .item("kind", s(f.kind.as_str()))
            .item("cliniko_id", s(f.cliniko_id.to_string()))
            .item("version", s(ts(f.version)))
            .item("error", s(&f.error))
            .item("retryable", AttributeValue::Bool(f.retryable))
            .item("attempts", n(i64::from(f.attempts)))
            .item("last_at", s(ts(f.last_at)))
            .send()
            .await
            .map_err(|e| backend("DynamoDB PutItem (failure)", e))?;
        Ok(())
    }

    async fn clear_failure(&self, kind: EntityKind, id: ClinikoId) -> Result<(), StateError> {
        self.delete(self.pk("FAIL"), format!("{kind}#{id}")).await
    }

    async fn failures(&self) -> Result<Vec<Failure>, StateError> {
        let mut out = Vec::new();
        for item in self.query_partition(self.pk("FAIL")).await? {
            let key = format!("failure {}", get_s(&item, "failure", "sk")?);
            let attempts = get_n(&item, &key, "attempts")?;
            out.push(Failure {
                kind: kind_of(&key, get_s(&item, &key, "kind")?)?,
                cliniko_id: cliniko_id(&key, get_s(&item, &key, "cliniko_id")?)?,
                version: parse_ts(&key, get_s(&item, &key, "version")?)?,
                error: get_s(&item, &key, "error")?.to_string(),
                retryable: get_bool(&item, &key, "retryable")?,
                attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX),
                last_at: parse_ts(&key, get_s(&item, &key, "last_at")?)?,
            });
        }
        // Newest first, as the SQLite store answers.
        out.sort_by_key(|f| std::cmp::Reverse(f.last_at));
        Ok(out)
    }
}
