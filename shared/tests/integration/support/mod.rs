//! Helpers shared by the adapter test binaries: the moto emulator's configuration, unique
//! names, fixed instants and ids, a fresh DynamoDB state table.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use cliniko_reckon::adapters::aws::{DynamoState, create_state_table, load_sdk_config};
use cliniko_reckon::domain::{ClinikoId, EntityKind, ReckonId};
use cliniko_reckon::ports::CrossRef;

/// The SDK configuration for moto, or `None` (with a note) when no emulator is configured.
/// Under CI a missing emulator is a failure, never a silent pass.
pub async fn moto() -> Option<aws_config::SdkConfig> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        let how = "run them via scripts/with-moto: \
                   scripts/with-moto cargo test -p cliniko-reckon --features aws --test integration aws_adapters";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "AWS_ENDPOINT_URL is not set, so the AWS adapter tests cannot reach an emulator; {how}"
            );
        }
        eprintln!("note: AWS_ENDPOINT_URL is not set; skipping the AWS adapter tests ({how})");
        return None;
    }
    Some(load_sdk_config().await)
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + secs, 0).single().unwrap()
}

pub fn rid(n: u128) -> ReckonId {
    ReckonId(uuid::Uuid::from_u128(n))
}

pub async fn create_table_named(client: &aws_sdk_dynamodb::Client, table: &str) {
    create_state_table(client, table).await.unwrap();
}

/// A state store for tenant `clinic-1` in a table of its own.
pub async fn state(config: &aws_config::SdkConfig) -> DynamoState {
    let client = aws_sdk_dynamodb::Client::new(config);
    let table = unique("state");
    create_table_named(&client, &table).await;
    DynamoState::new(client, table, "clinic-1").unwrap()
}

/// A patient's link to Reckon customer 7, named "Siobhán O'Brien", at `version`.
pub fn xref(id: ClinikoId, version: i64, hash: &str) -> CrossRef {
    CrossRef {
        kind: EntityKind::Patient,
        cliniko_id: id,
        reckon_id: rid(7),
        version: at(version),
        content_hash: hash.into(),
        reckon_name: Some("Siobhán O'Brien".into()),
        adopted: true,
    }
}
