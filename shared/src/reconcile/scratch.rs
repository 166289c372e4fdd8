//! The reconciliation's working set, kept in a private temporary SQLite database on disk
//! (deleted when the run ends) rather than in memory: the Reckon book waiting for its
//! Cliniko twins, the links, and the lookups the comparison builds as it streams Cliniko.
//! Memory then stays at SQLite's page cache however large the clinic; the disk needed is
//! roughly 200 bytes per record (60 MB for 300,000 invoices, within Lambda's 512 MB `/tmp`).
//!
//! Records are stored as JSON of the domain types; a `seen` flag marks those whose Cliniko
//! twin has been compared, so what is left unseen at the end is what no link knows.

use crate::domain::*;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The scratch database failed (disk full, unwritable temporary directory).
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error("reconciliation scratch database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("reconciliation scratch record: {0}")]
    Json(#[from] serde_json::Error),
}

/// Page cache for the scratch database: what reconciliation's memory is bounded by.
const CACHE_KIB: i64 = 16 * 1024;

const SCHEMA: &str = "
    CREATE TABLE book (
        kind INTEGER NOT NULL,      -- 0 customer, 1 item, 2 invoice, 3 credit note
        id BLOB NOT NULL,
        body TEXT NOT NULL,
        seen INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (kind, id)
    ) WITHOUT ROWID;
    CREATE TABLE links (
        kind TEXT NOT NULL,
        cliniko_id INTEGER NOT NULL,
        reckon_id BLOB NOT NULL,
        PRIMARY KEY (kind, cliniko_id)
    ) WITHOUT ROWID;
    CREATE TABLE linked_keys (
        key TEXT PRIMARY KEY,
        cliniko_id INTEGER NOT NULL,
        reckon_id BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE patient_names (
        cliniko_id INTEGER PRIMARY KEY,
        name TEXT NOT NULL
    );
";

/// Which part of the Reckon book a stored record belongs to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shelf {
    Customers = 0,
    Items = 1,
    Invoices = 2,
    CreditNotes = 3,
}

pub(super) struct Scratch {
    db: Connection,
}

fn rid(blob: Vec<u8>) -> Result<ReckonId, rusqlite::Error> {
    uuid::Uuid::from_slice(&blob).map(ReckonId).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, e.into())
    })
}

fn cid(n: i64) -> ClinikoId {
    ClinikoId(n as u64)
}

impl Scratch {
    /// A new, empty scratch database (SQLite's private temporary file: `SQLITE_TMPDIR`,
    /// `TMPDIR` or `/tmp`).
    pub fn open() -> Result<Scratch, ScratchError> {
        let db = Connection::open("")?;
        // Nothing here needs to survive a crash: no journal, no syncs, one transaction.
        db.pragma_update(None, "journal_mode", "OFF")?;
        db.pragma_update(None, "synchronous", "OFF")?;
        db.pragma_update(None, "cache_size", -CACHE_KIB)?;
        db.execute_batch(SCHEMA)?;
        db.execute_batch("BEGIN")?;
        Ok(Scratch { db })
    }

    pub fn put<T: Serialize>(
        &self,
        shelf: Shelf,
        id: ReckonId,
        record: &T,
    ) -> Result<(), ScratchError> {
        let body = serde_json::to_string(record)?;
        self.db
            .prepare_cached("INSERT OR REPLACE INTO book (kind, id, body) VALUES (?1, ?2, ?3)")?
            .execute(params![shelf as i64, id.0.as_bytes().as_slice(), body])?;
        Ok(())
    }

    /// The record, whether or not it has been taken.
    pub fn get<T: DeserializeOwned>(
        &self,
        shelf: Shelf,
        id: ReckonId,
    ) -> Result<Option<T>, ScratchError> {
        let body: Option<String> = self
            .db
            .prepare_cached("SELECT body FROM book WHERE kind = ?1 AND id = ?2")?
            .query_row(params![shelf as i64, id.0.as_bytes().as_slice()], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(match body {
            Some(b) => Some(serde_json::from_str(&b)?),
            None => None,
        })
    }

    /// The record if it has not been taken yet, marking it taken.
    pub fn take<T: DeserializeOwned>(
        &self,
        shelf: Shelf,
        id: ReckonId,
    ) -> Result<Option<T>, ScratchError> {
        let body: Option<String> = self
            .db
            .prepare_cached(
                "UPDATE book SET seen = 1 WHERE kind = ?1 AND id = ?2 AND seen = 0 RETURNING body",
            )?
            .query_row(params![shelf as i64, id.0.as_bytes().as_slice()], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(match body {
            Some(b) => Some(serde_json::from_str(&b)?),
            None => None,
        })
    }

    /// Every record not taken, in Reckon id order.
    pub fn untaken<T: DeserializeOwned>(
        &self,
        shelf: Shelf,
    ) -> Result<Vec<(ReckonId, T)>, ScratchError> {
        let mut stmt = self
            .db
            .prepare_cached("SELECT id, body FROM book WHERE kind = ?1 AND seen = 0 ORDER BY id")?;
        let rows = stmt.query_map(params![shelf as i64], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row?;
            out.push((rid(id)?, serde_json::from_str(&body)?));
        }
        Ok(out)
    }

    pub fn count(&self, shelf: Shelf) -> Result<u64, ScratchError> {
        let n: i64 = self
            .db
            .prepare_cached("SELECT COUNT(*) FROM book WHERE kind = ?1")?
            .query_row(params![shelf as i64], |r| r.get(0))?;
        Ok(n as u64)
    }

    pub fn put_link(
        &self,
        kind: EntityKind,
        cliniko: ClinikoId,
        reckon: ReckonId,
    ) -> Result<(), ScratchError> {
        self.db
            .prepare_cached(
                "INSERT OR REPLACE INTO links (kind, cliniko_id, reckon_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                kind.as_str(),
                cliniko.0 as i64,
                reckon.0.as_bytes().as_slice()
            ])?;
        Ok(())
    }

    pub fn link(
        &self,
        kind: EntityKind,
        cliniko: ClinikoId,
    ) -> Result<Option<ReckonId>, ScratchError> {
        let blob: Option<Vec<u8>> = self
            .db
            .prepare_cached("SELECT reckon_id FROM links WHERE kind = ?1 AND cliniko_id = ?2")?
            .query_row(params![kind.as_str(), cliniko.0 as i64], |r| r.get(0))
            .optional()?;
        Ok(blob.map(rid).transpose()?)
    }

    /// Remembers that a linked pair answers to `key` (a folded name, email or reference).
    pub fn put_key(&self, key: &str, ids: (ClinikoId, ReckonId)) -> Result<(), ScratchError> {
        self.db
            .prepare_cached(
                "INSERT OR REPLACE INTO linked_keys (key, cliniko_id, reckon_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![key, ids.0.0 as i64, ids.1.0.as_bytes().as_slice()])?;
        Ok(())
    }

    pub fn key(&self, key: &str) -> Result<Option<(ClinikoId, ReckonId)>, ScratchError> {
        let row: Option<(i64, Vec<u8>)> = self
            .db
            .prepare_cached("SELECT cliniko_id, reckon_id FROM linked_keys WHERE key = ?1")?
            .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(match row {
            Some((c, r)) => Some((cid(c), rid(r)?)),
            None => None,
        })
    }

    pub fn put_patient_name(&self, id: ClinikoId, name: &str) -> Result<(), ScratchError> {
        self.db
            .prepare_cached(
                "INSERT OR REPLACE INTO patient_names (cliniko_id, name) VALUES (?1, ?2)",
            )?
            .execute(params![id.0 as i64, name])?;
        Ok(())
    }

    pub fn patient_name(&self, id: ClinikoId) -> Result<Option<String>, ScratchError> {
        Ok(self
            .db
            .prepare_cached("SELECT name FROM patient_names WHERE cliniko_id = ?1")?
            .query_row(params![id.0 as i64], |r| r.get(0))
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> ReckonId {
        ReckonId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn a_record_is_taken_once_and_untaken_ones_remain() {
        let s = Scratch::open().unwrap();
        s.put(Shelf::Items, id(1), &"one".to_string()).unwrap();
        s.put(Shelf::Items, id(2), &"two".to_string()).unwrap();
        s.put(Shelf::Customers, id(1), &"customer".to_string())
            .unwrap();
        assert_eq!(
            s.take::<String>(Shelf::Items, id(1)).unwrap().as_deref(),
            Some("one")
        );
        assert_eq!(s.take::<String>(Shelf::Items, id(1)).unwrap(), None);
        assert_eq!(
            s.get::<String>(Shelf::Items, id(1)).unwrap().as_deref(),
            Some("one")
        );
        let left: Vec<(ReckonId, String)> = s.untaken(Shelf::Items).unwrap();
        assert_eq!(left, vec![(id(2), "two".to_string())]);
        assert_eq!(s.count(Shelf::Items).unwrap(), 2);
        assert_eq!(s.count(Shelf::Customers).unwrap(), 1);
    }

    #[test]
    fn links_keys_and_names_round_trip() {
        let s = Scratch::open().unwrap();
        s.put_link(EntityKind::Invoice, ClinikoId(u64::MAX >> 1), id(9))
            .unwrap();
        assert_eq!(
            s.link(EntityKind::Invoice, ClinikoId(u64::MAX >> 1))
                .unwrap(),
            Some(id(9))
        );
        assert_eq!(
            s.link(EntityKind::Patient, ClinikoId(u64::MAX >> 1))
                .unwrap(),
            None
        );
        s.put_key("email:a@b.c", (ClinikoId(3), id(4))).unwrap();
        assert_eq!(s.key("email:a@b.c").unwrap(), Some((ClinikoId(3), id(4))));
        assert_eq!(s.key("email:x@b.c").unwrap(), None);
        s.put_patient_name(ClinikoId(3), "Jane Citizen").unwrap();
        assert_eq!(
            s.patient_name(ClinikoId(3)).unwrap().as_deref(),
            Some("Jane Citizen")
        );
    }
}
