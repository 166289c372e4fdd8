//! [`TenantDirectory`] in the state table: one item per tenant in the `TENANTS` partition
//! (the poller lists them with one query), holding the tenant's configuration as TOML text
//! (the same schema and validation as a local clinic file, without credentials: those are
//! in the tenant's secrets) and its status.

use super::dynamo::{get_opt_s, get_s, query_partition, s};
use super::{backend, corrupt, parse_ts, ts};
use crate::domain::TenantId;
use crate::ports::{StateError, TenantDirectory, TenantEntry, TenantStatus};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The partition holding every tenant's item (sort key: the tenant id).
pub const TENANTS_PK: &str = "TENANTS";

type Item = HashMap<String, AttributeValue>;

/// The tenants of one deployment. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DynamoTenants {
    client: Client,
    table: String,
}

fn entry(item: &Item) -> Result<TenantEntry, StateError> {
    let id = get_s(item, "TENANTS", "sk")?;
    let key = format!("TENANTS/{id}");
    let status = get_s(item, &key, "status")?;
    Ok(TenantEntry {
        id: TenantId::new(id).map_err(|e| corrupt(&key, e))?,
        config: get_s(item, &key, "config")?.to_string(),
        status: TenantStatus::parse(status)
            .ok_or_else(|| corrupt(&key, format!("unknown status {status:?}")))?,
        reason: get_opt_s(item, &key, "reason")?,
        added_at: parse_ts(&key, get_s(item, &key, "added_at")?)?,
        changed_at: parse_ts(&key, get_s(item, &key, "changed_at")?)?,
    })
}

impl DynamoTenants {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoTenants {
        DynamoTenants {
            client,
            table: table.into(),
        }
    }

    /// Deletes every item whose partition belongs to `tenant` (`T#{tenant}#…`). A scan: only
    /// for removing a tenant, which is rare and may take a while on a large book.
    async fn delete_tenant_items(&self, tenant: &TenantId) -> Result<(), StateError> {
        let prefix = format!("T#{tenant}#");
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :p)")
                .expression_attribute_values(":p", s(&prefix))
                .projection_expression("pk, sk")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("DynamoDB Scan", e))?;
            let keys: Vec<Item> = page
                .items()
                .iter()
                .map(|i| {
                    i.iter()
                        .filter(|(k, _)| k.as_str() == "pk" || k.as_str() == "sk")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .collect();
            for chunk in keys.chunks(25) {
                let mut pending: Vec<WriteRequest> = Vec::new();
                for key in chunk {
                    let delete = DeleteRequest::builder()
                        .set_key(Some(key.clone()))
                        .build()
                        .map_err(|e| corrupt("delete request", e))?;
                    pending.push(WriteRequest::builder().delete_request(delete).build());
                }
                // Unprocessed items (throttling) are sent again until none are left.
                for _ in 0..10 {
                    if pending.is_empty() {
                        break;
                    }
                    let out = self
                        .client
                        .batch_write_item()
                        .request_items(&self.table, std::mem::take(&mut pending))
                        .send()
                        .await
                        .map_err(|e| backend("DynamoDB BatchWriteItem", e))?;
                    pending = out
                        .unprocessed_items()
                        .and_then(|m| m.get(&self.table))
                        .cloned()
                        .unwrap_or_default();
                }
                if !pending.is_empty() {
                    return Err(StateError::Backend {
                        detail: format!(
                            "removing tenant {tenant}: DynamoDB kept refusing {} deletes",
                            pending.len()
                        ),
                        retryable: true,
                    });
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(()),
            }
        }
    }
}

impl TenantDirectory for DynamoTenants {
    /// An entry that cannot be read is logged and left out, so one bad item never stops
    /// the poller or the reconciler for every other clinic.
    async fn tenants(&self) -> Result<Vec<TenantEntry>, StateError> {
        let items = query_partition(&self.client, &self.table, TENANTS_PK, None).await?;
        Ok(items
            .iter()
            .filter_map(|item| match entry(item) {
                Ok(entry) => Some(entry),
                Err(e) => {
                    tracing::error!(error = %e, "a tenant item cannot be read; left out");
                    None
                }
            })
            .collect())
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantEntry>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(TENANTS_PK))
            .key("sk", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("DynamoDB GetItem", e))?;
        out.item().map(entry).transpose()
    }

    async fn put_tenant(&self, t: &TenantEntry) -> Result<(), StateError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(TENANTS_PK))
            .key("sk", s(t.id.as_str()))
            .update_expression(
                "SET config = :c, #st = if_not_exists(#st, :s), \
                 added_at = if_not_exists(added_at, :a), changed_at = if_not_exists(changed_at, :ch)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":c", s(&t.config))
            .expression_attribute_values(":s", s(t.status.as_str()))
            .expression_attribute_values(":a", s(ts(t.added_at)))
            .expression_attribute_values(":ch", s(ts(t.changed_at)))
            .send()
            .await
            .map_err(|e| backend("DynamoDB UpdateItem", e))?;
        Ok(())
    }

    async fn set_tenant_status(
        &self,
        id: &TenantId,
        status: TenantStatus,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(TENANTS_PK))
            .key("sk", s(id.as_str()))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":s", s(status.as_str()))
            .expression_attribute_values(":at", s(ts(at)));
        update = match reason {
            Some(r) => update
                .update_expression("SET #st = :s, changed_at = :at, reason = :r")
                .expression_attribute_values(":r", s(r)),
            None => update.update_expression("SET #st = :s, changed_at = :at REMOVE reason"),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(backend("DynamoDB UpdateItem", e)),
        }
    }

    async fn remove_tenant(&self, id: &TenantId) -> Result<bool, StateError> {
        let old = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(TENANTS_PK))
            .key("sk", s(id.as_str()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| backend("DynamoDB DeleteItem", e))?;
        self.delete_tenant_items(id).await?;
        Ok(old.attributes().is_some_and(|a| !a.is_empty()))
    }
}
