//! Local mode's state: one SQLite file holding watermarks, cross-references, intents,
//! failures, the audit log, the durable work queue and the Reckon tokens. Every write is a
//! single statement or transaction, so a crash leaves the file consistent.

use super::state_file;
use crate::domain::{ClinikoId, EntityKind, ReckonId, TenantId};
use crate::ports::{
    AuditEntry, CrossRef, Failure, Intent, NotQueued, Outcome, StateError, StateStore,
    TenantDirectory, TenantEntry, TenantStatus, TokenSet, TokenStore, WORK_SCHEMA, WorkItem,
    WorkQueue,
};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS watermarks (
    tenant TEXT NOT NULL,
    kind   TEXT NOT NULL,
    at     TEXT NOT NULL,
    PRIMARY KEY (tenant, kind)
);
CREATE TABLE IF NOT EXISTS cross_refs (
    tenant       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    cliniko_id   TEXT NOT NULL,
    reckon_id    TEXT NOT NULL,
    version      TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    reckon_name  TEXT,
    adopted      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, kind, cliniko_id)
);
CREATE INDEX IF NOT EXISTS cross_refs_reckon ON cross_refs (tenant, kind, reckon_id);
CREATE INDEX IF NOT EXISTS cross_refs_name ON cross_refs (tenant, kind, reckon_name);
CREATE TABLE IF NOT EXISTS intents (
    tenant     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    cliniko_id TEXT NOT NULL,
    marker     TEXT NOT NULL,
    started_at TEXT NOT NULL,
    PRIMARY KEY (tenant, kind, cliniko_id)
);
CREATE TABLE IF NOT EXISTS failures (
    tenant     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    cliniko_id TEXT NOT NULL,
    version    TEXT NOT NULL,
    error      TEXT NOT NULL,
    retryable  INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    last_at    TEXT NOT NULL,
    PRIMARY KEY (tenant, kind, cliniko_id)
);
CREATE TABLE IF NOT EXISTS audit (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     TEXT NOT NULL,
    at         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    cliniko_id TEXT NOT NULL,
    version    TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    reckon_id  TEXT,
    detail     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_tenant ON audit (tenant, seq);
CREATE TABLE IF NOT EXISTS queue (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    rank         INTEGER NOT NULL,
    cliniko_id   TEXT NOT NULL,
    version      TEXT NOT NULL,
    body         TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    available_at TEXT NOT NULL,
    last_error   TEXT,
    UNIQUE (tenant, kind, cliniko_id, version)
);
CREATE INDEX IF NOT EXISTS queue_order ON queue (tenant, rank, available_at, seq);
CREATE TABLE IF NOT EXISTS tokens (
    tenant        TEXT PRIMARY KEY,
    access_token  TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tenants (
    id         TEXT PRIMARY KEY,
    config     TEXT NOT NULL,
    status     TEXT NOT NULL,
    added_at   TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    reason     TEXT
);
"#;

/// Schema 1 held one clinic and had no tenant column: its rows become the default tenant's.
/// One transaction, so a crash leaves either the old file or the new one.
const MIGRATE_FROM_1: &str = r#"
ALTER TABLE watermarks RENAME TO v1_watermarks;
ALTER TABLE cross_refs RENAME TO v1_cross_refs;
ALTER TABLE intents RENAME TO v1_intents;
ALTER TABLE failures RENAME TO v1_failures;
ALTER TABLE audit RENAME TO v1_audit;
ALTER TABLE queue RENAME TO v1_queue;
ALTER TABLE tokens RENAME TO v1_tokens;
DROP INDEX IF EXISTS cross_refs_reckon;
DROP INDEX IF EXISTS cross_refs_name;
DROP INDEX IF EXISTS queue_order;
"#;

const COPY_FROM_1: &str = r#"
INSERT INTO watermarks (tenant, kind, at) SELECT 'default', kind, at FROM v1_watermarks;
INSERT INTO cross_refs (tenant, kind, cliniko_id, reckon_id, version, content_hash, reckon_name, adopted)
  SELECT 'default', kind, cliniko_id, reckon_id, version, content_hash, reckon_name, adopted FROM v1_cross_refs;
INSERT INTO intents (tenant, kind, cliniko_id, marker, started_at)
  SELECT 'default', kind, cliniko_id, marker, started_at FROM v1_intents;
INSERT INTO failures (tenant, kind, cliniko_id, version, error, retryable, attempts, last_at)
  SELECT 'default', kind, cliniko_id, version, error, retryable, attempts, last_at FROM v1_failures;
INSERT INTO audit (seq, tenant, at, kind, cliniko_id, version, outcome, reckon_id, detail)
  SELECT seq, 'default', at, kind, cliniko_id, version, outcome, reckon_id, detail FROM v1_audit;
INSERT INTO queue (seq, tenant, kind, rank, cliniko_id, version, body, attempts, available_at, last_error)
  SELECT seq, 'default', kind, rank, cliniko_id, version, body, attempts, available_at, last_error FROM v1_queue;
INSERT INTO tokens (tenant, access_token, refresh_token, expires_at)
  SELECT 'default', access_token, refresh_token, expires_at FROM v1_tokens;
DROP TABLE v1_watermarks;
DROP TABLE v1_cross_refs;
DROP TABLE v1_intents;
DROP TABLE v1_failures;
DROP TABLE v1_audit;
DROP TABLE v1_queue;
DROP TABLE v1_tokens;
"#;

/// Timestamps as fixed-width UTC text, so SQLite's text order is time order.
fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(key: &str, text: &str) -> Result<DateTime<Utc>, StateError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(key, e))
}

fn corrupt(key: &str, e: impl std::fmt::Display) -> StateError {
    StateError::Corrupt {
        key: key.to_string(),
        detail: e.to_string(),
    }
}

fn backend(e: rusqlite::Error) -> StateError {
    // A busy or locked file clears up; anything else (disk full, corrupt file) will not.
    let retryable = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    StateError::Backend {
        detail: e.to_string(),
        retryable,
    }
}

fn kind_of(text: &str) -> Result<EntityKind, StateError> {
    EntityKind::parse(text).ok_or_else(|| corrupt("kind", format!("unknown entity kind {text:?}")))
}

fn cliniko_id(text: &str) -> Result<ClinikoId, StateError> {
    text.parse().map_err(|e| corrupt("cliniko_id", e))
}

fn reckon_id(text: &str) -> Result<ReckonId, StateError> {
    text.parse().map_err(|e| corrupt("reckon_id", e))
}

fn outcome_of(text: &str) -> Result<Outcome, StateError> {
    Outcome::parse(text).ok_or_else(|| corrupt("outcome", format!("unknown outcome {text:?}")))
}

/// Dependency order in the queue: patients and items before the invoices that use them.
fn rank(kind: EntityKind) -> i64 {
    match kind {
        EntityKind::Patient => 0,
        EntityKind::Product => 1,
        EntityKind::BillableItem => 2,
        EntityKind::Invoice => 3,
        EntityKind::Appointment => 4,
    }
}

/// A queued record claimed by a local worker; `ack` or `retry_later` it by `seq`.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub seq: i64,
    pub attempts: u32,
    pub item: WorkItem,
}

/// Counts for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub pending: u64,
    pub retrying: u64,
}

/// The SQLite file, shared by clones (one connection behind a mutex: local mode is one
/// process, and SQLite serialises writers anyway).
#[derive(Clone)]
pub struct SqliteState {
    conn: Arc<Mutex<Connection>>,
    /// The clinic this handle reads and writes; every row carries it.
    tenant: TenantId,
    path: Option<std::path::PathBuf>,
    /// Held while any clone lives when opened with [`SqliteState::open_writer`].
    writer: Option<Arc<state_file::WriterLock>>,
    /// Serialises token refreshes with other processes on the same file (none in memory).
    refresh: Option<Arc<state_file::RefreshLock>>,
}

impl std::fmt::Debug for SqliteState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteState")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl SqliteState {
    /// Opens (creating owner-only if needed) the state file, for reading or for a command
    /// that does not write sync state. Refuses a file that is not ours (see `state_file`).
    pub fn open(path: &Path) -> Result<SqliteState, StateError> {
        let (conn, created) = state_file::open(path)?;
        let mut state = Self::init(conn, Some(path), created)?;
        state.refresh = Some(Arc::new(state_file::RefreshLock::new(path, &state.tenant)));
        Ok(state)
    }

    /// Opens the state file as its only writer: fails at once with the holder's pid and
    /// start time while another process writes it. `command` is shown to that other one.
    pub fn open_writer(path: &Path, command: &str) -> Result<SqliteState, StateError> {
        let lock = state_file::lock_writer(path, command)?;
        let mut state = Self::open(path)?;
        state.writer = Some(Arc::new(lock));
        Ok(state)
    }

    pub fn open_in_memory() -> Result<SqliteState, StateError> {
        Self::init(Connection::open_in_memory().map_err(backend)?, None, true)
    }

    /// The same file (and writer lock) for another clinic's rows.
    pub fn for_tenant(&self, tenant: &TenantId) -> SqliteState {
        SqliteState {
            conn: self.conn.clone(),
            tenant: tenant.clone(),
            writer: self.writer.clone(),
            refresh: self
                .path
                .as_deref()
                .map(|path| Arc::new(state_file::RefreshLock::new(path, tenant))),
            path: self.path.clone(),
        }
    }

    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant
    }

    fn init(
        mut conn: Connection,
        path: Option<&Path>,
        created: bool,
    ) -> Result<SqliteState, StateError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        if let Some(path) = path {
            state_file::check_identity(&conn, path, created)?;
        }
        // WAL keeps readers (`status`) from blocking the sync; NORMAL is durable at
        // checkpoints and never corrupts.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(backend)?;
        migrate(&mut conn)?;
        Ok(SqliteState {
            conn: Arc::new(Mutex::new(conn)),
            tenant: TenantId::default_tenant(),
            path: path.map(Path::to_path_buf),
            writer: None,
            refresh: None,
        })
    }

    /// Whether this handle holds the writer lock.
    pub fn is_writer(&self) -> bool {
        self.writer.is_some()
    }

    fn db(&self) -> Result<MutexGuard<'_, Connection>, StateError> {
        self.conn.lock().map_err(|_| StateError::Backend {
            detail: "state connection poisoned by an earlier panic".into(),
            retryable: false,
        })
    }

    /// Up to `limit` queued records that are due, patients first and invoices last.
    pub fn claim(&self, limit: usize, now: DateTime<Utc>) -> Result<Vec<Claimed>, StateError> {
        let db = self.db()?;
        let mut stmt = db
            .prepare_cached(
                "SELECT seq, attempts, body FROM queue WHERE tenant = ?3 AND available_at <= ?1
                 ORDER BY rank, seq LIMIT ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![ts(now), limit as i64, self.tenant.as_str()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, attempts, body) = row.map_err(backend)?;
            let item = decode_work(&body).map_err(|e| corrupt(&format!("queue #{seq}"), e))?;
            out.push(Claimed {
                seq,
                attempts: attempts.max(0) as u32,
                item,
            });
        }
        Ok(out)
    }

    /// The record is done (applied, or recorded as failed for good).
    pub fn ack(&self, seq: i64) -> Result<(), StateError> {
        self.db()?
            .execute(
                "DELETE FROM queue WHERE seq = ?1 AND tenant = ?2",
                params![seq, self.tenant.as_str()],
            )
            .map_err(backend)?;
        Ok(())
    }

    /// Leaves the record queued, due again at `at`.
    pub fn retry_later(&self, seq: i64, at: DateTime<Utc>, error: &str) -> Result<(), StateError> {
        self.db()?
            .execute(
                "UPDATE queue SET attempts = attempts + 1, available_at = ?2, last_error = ?3
                 WHERE seq = ?1 AND tenant = ?4",
                params![seq, ts(at), error, self.tenant.as_str()],
            )
            .map_err(backend)?;
        Ok(())
    }

    pub fn queue_depth(&self) -> Result<QueueDepth, StateError> {
        let db = self.db()?;
        let (pending, retrying): (i64, i64) = db
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(attempts > 0), 0) FROM queue WHERE tenant = ?1",
                params![self.tenant.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(backend)?;
        Ok(QueueDepth {
            pending: pending.max(0) as u64,
            retrying: retrying.max(0) as u64,
        })
    }

    /// The earliest time a queued record becomes due, if any is queued.
    pub fn next_due(&self) -> Result<Option<DateTime<Utc>>, StateError> {
        let db = self.db()?;
        let at: Option<String> = db
            .query_row(
                "SELECT MIN(available_at) FROM queue WHERE tenant = ?1",
                params![self.tenant.as_str()],
                |r| r.get(0),
            )
            .map_err(backend)?;
        at.map(|t| parse_ts("queue.available_at", &t)).transpose()
    }

    /// All watermarks, for `status`.
    pub fn watermarks(&self) -> Result<Vec<(EntityKind, DateTime<Utc>)>, StateError> {
        let db = self.db()?;
        let mut stmt = db
            .prepare("SELECT kind, at FROM watermarks WHERE tenant = ?1 ORDER BY kind")
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![self.tenant.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, at) = row.map_err(backend)?;
            out.push((kind_of(&kind)?, parse_ts("watermarks.at", &at)?));
        }
        Ok(out)
    }

    /// Number of cross-references per entity kind.
    pub fn cross_ref_counts(&self) -> Result<Vec<(EntityKind, u64)>, StateError> {
        let db = self.db()?;
        let mut stmt = db
            .prepare(
                "SELECT kind, COUNT(*) FROM cross_refs WHERE tenant = ?1 GROUP BY kind ORDER BY kind",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![self.tenant.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, n) = row.map_err(backend)?;
            out.push((kind_of(&kind)?, n.max(0) as u64));
        }
        Ok(out)
    }

    /// The newest `limit` audit entries, newest first.
    pub fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEntry>, StateError> {
        let db = self.db()?;
        let mut stmt = db
            .prepare(
                "SELECT at, kind, cliniko_id, version, outcome, reckon_id, detail FROM audit
                 WHERE tenant = ?2 ORDER BY seq DESC LIMIT ?1",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![limit as i64, self.tenant.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (at, kind, id, version, outcome, rid, detail) = row.map_err(backend)?;
            out.push(AuditEntry {
                at: parse_ts("audit.at", &at)?,
                kind: kind_of(&kind)?,
                cliniko_id: cliniko_id(&id)?,
                version: parse_ts("audit.version", &version)?,
                outcome: outcome_of(&outcome)?,
                reckon_id: rid.as_deref().map(reckon_id).transpose()?,
                detail,
            });
        }
        Ok(out)
    }
}

fn decode_work(body: &str) -> Result<WorkItem, String> {
    let item: WorkItem = serde_json::from_str(body).map_err(|e| e.to_string())?;
    if item.schema > WORK_SCHEMA {
        return Err(format!(
            "work item schema {} is newer than this build ({WORK_SCHEMA})",
            item.schema
        ));
    }
    Ok(item)
}

fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool, StateError> {
    conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
        params![table, column],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(backend)
}

/// Brings a file made by an earlier build to this schema (see [`MIGRATE_FROM_1`]), or
/// creates the tables in a new one.
fn migrate(conn: &mut Connection) -> Result<(), StateError> {
    let schema_1 =
        has_column(conn, "watermarks", "kind")? && !has_column(conn, "watermarks", "tenant")?;
    if schema_1 {
        add_missing_columns(conn)?;
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(MIGRATE_FROM_1).map_err(backend)?;
        tx.execute_batch(SCHEMA).map_err(backend)?;
        tx.execute_batch(COPY_FROM_1).map_err(backend)?;
        tx.pragma_update(None, "user_version", state_file::SCHEMA_VERSION)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    conn.execute_batch(SCHEMA).map_err(backend)
}

/// Columns added to schema 1 after it first shipped, before it is migrated.
fn add_missing_columns(conn: &Connection) -> Result<(), StateError> {
    if !has_column(conn, "cross_refs", "adopted")? {
        conn.execute_batch("ALTER TABLE cross_refs ADD COLUMN adopted INTEGER NOT NULL DEFAULT 0")
            .map_err(backend)?;
    }
    Ok(())
}

type XrefRow = (String, String, String, String, String, Option<String>, bool);

fn xref_from_row(row: XrefRow) -> Result<CrossRef, StateError> {
    let (kind, id, rid, version, hash, name, adopted) = row;
    Ok(CrossRef {
        kind: kind_of(&kind)?,
        cliniko_id: cliniko_id(&id)?,
        reckon_id: reckon_id(&rid)?,
        version: parse_ts("cross_refs.version", &version)?,
        content_hash: hash,
        reckon_name: name,
        adopted,
    })
}

fn xref_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<XrefRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

const XREF_COLUMNS: &str =
    "kind, cliniko_id, reckon_id, version, content_hash, reckon_name, adopted";

impl SqliteState {
    fn one_xref(&self, sql: &str, a: &str, b: &str) -> Result<Option<CrossRef>, StateError> {
        let db = self.db()?;
        let row = db
            .query_row(sql, params![a, b, self.tenant.as_str()], xref_row)
            .optional()
            .map_err(backend)?;
        row.map(xref_from_row).transpose()
    }
}

impl StateStore for SqliteState {
    async fn watermark(&self, kind: EntityKind) -> Result<Option<DateTime<Utc>>, StateError> {
        let db = self.db()?;
        let at: Option<String> = db
            .query_row(
                "SELECT at FROM watermarks WHERE kind = ?1 AND tenant = ?2",
                params![kind.as_str(), self.tenant.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        at.map(|t| parse_ts("watermarks.at", &t)).transpose()
    }

    async fn advance_watermark(
        &self,
        kind: EntityKind,
        to: DateTime<Utc>,
    ) -> Result<(), StateError> {
        self.db()?
            .execute(
                "INSERT INTO watermarks (tenant, kind, at) VALUES (?3, ?1, ?2)
                 ON CONFLICT (tenant, kind) DO UPDATE SET at = excluded.at WHERE excluded.at > watermarks.at",
                params![kind.as_str(), ts(to), self.tenant.as_str()],
            )
            .map_err(backend)?;
        Ok(())
    }

    async fn cross_ref(
        &self,
        kind: EntityKind,
        id: ClinikoId,
    ) -> Result<Option<CrossRef>, StateError> {
        self.one_xref(
            &format!("SELECT {XREF_COLUMNS} FROM cross_refs WHERE kind = ?1 AND cliniko_id = ?2 AND tenant = ?3"),
            kind.as_str(),
            &id.to_string(),
        )
    }

    async fn links(&self, kind: EntityKind) -> Result<Vec<(ClinikoId, ReckonId)>, StateError> {
        let db = self.db()?;
        let mut stmt = db
            .prepare_cached(
                "SELECT cliniko_id, reckon_id FROM cross_refs WHERE kind = ?1 AND tenant = ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![kind.as_str(), self.tenant.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (c, r) = row.map_err(backend)?;
            let key = format!("cross_refs {kind} {c}");
            let cliniko = c.parse().map_err(|_| corrupt(&key, "cliniko_id"))?;
            let reckon = r.parse().map_err(|_| corrupt(&key, "reckon_id"))?;
            out.push((cliniko, reckon));
        }
        Ok(out)
    }

    async fn cross_ref_by_reckon(
        &self,
        kind: EntityKind,
        id: ReckonId,
    ) -> Result<Option<CrossRef>, StateError> {
        self.one_xref(
            &format!(
                "SELECT {XREF_COLUMNS} FROM cross_refs WHERE kind = ?1 AND reckon_id = ?2 AND tenant = ?3 LIMIT 1"
            ),
            kind.as_str(),
            &id.to_string(),
        )
    }

    async fn name_owner(
        &self,
        kind: EntityKind,
        name: &str,
    ) -> Result<Option<ClinikoId>, StateError> {
        let db = self.db()?;
        // Reckon treats names case-insensitively for uniqueness, so compare the same way.
        let id: Option<String> = db
            .query_row(
                "SELECT cliniko_id FROM cross_refs
                   WHERE tenant = ?3 AND kind = ?1 AND reckon_name = ?2 COLLATE NOCASE
                 UNION SELECT cliniko_id FROM intents
                   WHERE tenant = ?3 AND kind = ?1 AND marker = ?2 COLLATE NOCASE
                 LIMIT 1",
                params![kind.as_str(), name, self.tenant.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        id.as_deref().map(cliniko_id).transpose()
    }

    async fn put_cross_ref(&self, x: &CrossRef) -> Result<bool, StateError> {
        let changed = self
            .db()?
            .execute(
                "INSERT INTO cross_refs (kind, cliniko_id, reckon_id, version, content_hash, reckon_name, adopted, tenant)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (tenant, kind, cliniko_id) DO UPDATE SET
                   reckon_id = excluded.reckon_id, version = excluded.version,
                   content_hash = excluded.content_hash, reckon_name = excluded.reckon_name,
                   adopted = excluded.adopted
                 WHERE excluded.version >= cross_refs.version",
                params![
                    x.kind.as_str(),
                    x.cliniko_id.to_string(),
                    x.reckon_id.to_string(),
                    ts(x.version),
                    x.content_hash,
                    x.reckon_name,
                    x.adopted,
                    self.tenant.as_str()
                ],
            )
            .map_err(backend)?;
        Ok(changed > 0)
    }

    async fn forget_cross_ref(
        &self,
        kind: EntityKind,
        id: ClinikoId,
        reckon_id: ReckonId,
    ) -> Result<bool, StateError> {
        let removed = self
            .db()?
            .execute(
                "DELETE FROM cross_refs
                 WHERE kind = ?1 AND cliniko_id = ?2 AND reckon_id = ?3 AND tenant = ?4",
                params![
                    kind.as_str(),
                    id.to_string(),
                    reckon_id.to_string(),
                    self.tenant.as_str()
                ],
            )
            .map_err(backend)?;
        Ok(removed > 0)
    }

    async fn intent(&self, kind: EntityKind, id: ClinikoId) -> Result<Option<Intent>, StateError> {
        let db = self.db()?;
        let row: Option<(String, String)> = db
            .query_row(
                "SELECT marker, started_at FROM intents
                 WHERE kind = ?1 AND cliniko_id = ?2 AND tenant = ?3",
                params![kind.as_str(), id.to_string(), self.tenant.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(backend)?;
        row.map(|(marker, at)| {
            Ok(Intent {
                kind,
                cliniko_id: id,
                marker,
                started_at: parse_ts("intents.started_at", &at)?,
                owner: String::new(),
            })
        })
        .transpose()
    }

    /// Always claimed: the writer lock already makes this process the only one creating
    /// records for this state file.
    async fn put_intent(&self, i: &Intent) -> Result<bool, StateError> {
        self.db()?
            .execute(
                "INSERT OR REPLACE INTO intents (kind, cliniko_id, marker, started_at, tenant)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    i.kind.as_str(),
                    i.cliniko_id.to_string(),
                    i.marker,
                    ts(i.started_at),
                    self.tenant.as_str()
                ],
            )
            .map_err(backend)?;
        Ok(true)
    }

    async fn clear_intent(&self, kind: EntityKind, id: ClinikoId) -> Result<(), StateError> {
        self.db()?
            .execute(
                "DELETE FROM intents WHERE kind = ?1 AND cliniko_id = ?2 AND tenant = ?3",
                params![kind.as_str(), id.to_string(), self.tenant.as_str()],
            )
            .map_err(backend)?;
        Ok(())
    }

    async fn audit(&self, e: &AuditEntry) -> Result<(), StateError> {
        self.db()?
            .execute(
                "INSERT INTO audit (at, kind, cliniko_id, version, outcome, reckon_id, detail, tenant)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    ts(e.at),
                    e.kind.as_str(),
                    e.cliniko_id.to_string(),
                    ts(e.version),
                    e.outcome.as_str(),
                    e.reckon_id.map(|r| r.to_string()),
                    e.detail,
                    self.tenant.as_str()
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    async fn record_failure(&self, f: &Failure) -> Result<(), StateError> {
        self.db()?
            .execute(
                "INSERT INTO failures (kind, cliniko_id, version, error, retryable, attempts, last_at, tenant)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (tenant, kind, cliniko_id) DO UPDATE SET version = excluded.version,
                   error = excluded.error, retryable = excluded.retryable,
                   attempts = excluded.attempts, last_at = excluded.last_at",
                params![
                    f.kind.as_str(),
                    f.cliniko_id.to_string(),
                    ts(f.version),
                    f.error,
                    f.retryable,
                    f.attempts,
                    ts(f.last_at),
                    self.tenant.as_str()
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    async fn clear_failure(&self, kind: EntityKind, id: ClinikoId) -> Result<(), StateError> {
        self.db()?
            .execute(
                "DELETE FROM failures WHERE kind = ?1 AND cliniko_id = ?2 AND tenant = ?3",
                params![kind.as_str(), id.to_string(), self.tenant.as_str()],
            )
            .map_err(backend)?;
        Ok(())
    }

    async fn failures(&self) -> Result<Vec<Failure>, StateError> {
        let db = self.db()?;
        let mut stmt = db
            .prepare(
                "SELECT kind, cliniko_id, version, error, retryable, attempts, last_at
                 FROM failures WHERE tenant = ?1 ORDER BY last_at DESC",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![self.tenant.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, id, version, error, retryable, attempts, last_at) = row.map_err(backend)?;
            out.push(Failure {
                kind: kind_of(&kind)?,
                cliniko_id: cliniko_id(&id)?,
                version: parse_ts("failures.version", &version)?,
                error,
                retryable,
                attempts: attempts.max(0) as u32,
                last_at: parse_ts("failures.last_at", &last_at)?,
            });
        }
        Ok(out)
    }
}

impl WorkQueue for SqliteState {
    /// Queues each record once per version; a newer version replaces older queued ones.
    /// A local queue row has no size limit: nothing is ever refused.
    async fn enqueue(&self, items: Vec<WorkItem>) -> Result<Vec<NotQueued>, StateError> {
        let mut db = self.db()?;
        let tx = db.transaction().map_err(backend)?;
        for item in &items {
            let kind = item.record.kind();
            let id = item.record.id().to_string();
            let version = ts(item.record.version());
            let stamped = WorkItem {
                tenant: self.tenant.clone(),
                ..item.clone()
            };
            let body = serde_json::to_string(&stamped).map_err(|e| corrupt("queue body", e))?;
            tx.execute(
                "DELETE FROM queue WHERE kind = ?1 AND cliniko_id = ?2 AND version < ?3 AND tenant = ?4",
                params![kind.as_str(), id, version, self.tenant.as_str()],
            )
            .map_err(backend)?;
            let newer: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM queue
                       WHERE kind = ?1 AND cliniko_id = ?2 AND version > ?3 AND tenant = ?4)",
                    params![kind.as_str(), id, version, self.tenant.as_str()],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if newer {
                continue;
            }
            tx.execute(
                "INSERT OR IGNORE INTO queue (kind, rank, cliniko_id, version, body, available_at, tenant)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    kind.as_str(),
                    rank(kind),
                    id,
                    version,
                    body,
                    ts(item.enqueued_at),
                    self.tenant.as_str()
                ],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(Vec::new())
    }
}

impl TokenStore for SqliteState {
    async fn load(&self) -> Result<Option<TokenSet>, StateError> {
        let db = self.db()?;
        let row: Option<(String, String, String)> = db
            .query_row(
                "SELECT access_token, refresh_token, expires_at FROM tokens WHERE tenant = ?1",
                params![self.tenant.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(backend)?;
        row.map(|(access, refresh, expires)| {
            Ok(TokenSet {
                access_token: SecretString::from(access),
                refresh_token: SecretString::from(refresh),
                expires_at: parse_ts("tokens.expires_at", &expires)?,
            })
        })
        .transpose()
    }

    async fn save(&self, t: &TokenSet) -> Result<(), StateError> {
        self.db()?
            .execute(
                "INSERT OR REPLACE INTO tokens (tenant, access_token, refresh_token, expires_at)
                 VALUES (?4, ?1, ?2, ?3)",
                params![
                    t.access_token.expose_secret(),
                    t.refresh_token.expose_secret(),
                    ts(t.expires_at),
                    self.tenant.as_str()
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    /// Another process on this file (a `reconcile` beside a `sync`) may refresh too: one
    /// at a time, or a rotated refresh token is redeemed twice and the loser is locked out.
    async fn begin_refresh(&self) -> Result<(), StateError> {
        let Some(lock) = self.refresh.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || lock.acquire())
            .await
            .map_err(|e| StateError::Backend {
                detail: format!("token refresh lock: {e}"),
                retryable: true,
            })?
    }

    async fn end_refresh(&self) -> Result<(), StateError> {
        if let Some(lock) = &self.refresh {
            lock.release();
        }
        Ok(())
    }

    /// Proves the file takes a write now (not locked, not read-only, disk not full) before
    /// a refresh token is redeemed: a refreshed pair that cannot be saved is lost.
    async fn check_writable(&self) -> Result<(), StateError> {
        let mut db = self.db()?;
        // An immediate transaction takes the write lock (or fails busy); it is rolled back
        // when dropped, whatever happens inside it.
        let tx = db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        tx.execute(
            "UPDATE tokens SET tenant = tenant WHERE tenant = ?1",
            params![self.tenant.as_str()],
        )
        .map_err(backend)?;
        tx.rollback().map_err(backend)
    }
}

/// The tables whose rows belong to one tenant (removed with it).
const TENANT_TABLES: [&str; 7] = [
    "watermarks",
    "cross_refs",
    "intents",
    "failures",
    "audit",
    "queue",
    "tokens",
];

type TenantRow = (String, String, String, Option<String>, String, String);

fn tenant_from_row(row: TenantRow) -> Result<TenantEntry, StateError> {
    let (id, config, status, reason, added, changed) = row;
    Ok(TenantEntry {
        id: TenantId::new(&id).map_err(|e| corrupt("tenants.id", e))?,
        config,
        status: TenantStatus::parse(&status)
            .ok_or_else(|| corrupt("tenants.status", format!("unknown status {status:?}")))?,
        reason,
        added_at: parse_ts("tenants.added_at", &added)?,
        changed_at: parse_ts("tenants.changed_at", &changed)?,
    })
}

const TENANT_COLUMNS: &str = "id, config, status, reason, added_at, changed_at";

fn tenant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TenantRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

/// The clinics of a local state file: `config` is the path of each one's TOML file.
impl TenantDirectory for SqliteState {
    async fn tenants(&self) -> Result<Vec<TenantEntry>, StateError> {
        let db = self.db()?;
        let mut stmt = db
            .prepare(&format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id"))
            .map_err(backend)?;
        let rows = stmt.query_map([], tenant_row).map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(tenant_from_row(row.map_err(backend)?)?);
        }
        Ok(out)
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantEntry>, StateError> {
        let db = self.db()?;
        let row = db
            .query_row(
                &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?1"),
                params![id.as_str()],
                tenant_row,
            )
            .optional()
            .map_err(backend)?;
        row.map(tenant_from_row).transpose()
    }

    async fn put_tenant(&self, t: &TenantEntry) -> Result<(), StateError> {
        self.db()?
            .execute(
                "INSERT INTO tenants (id, config, status, reason, added_at, changed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET config = excluded.config",
                params![
                    t.id.as_str(),
                    t.config,
                    t.status.as_str(),
                    t.reason,
                    ts(t.added_at),
                    ts(t.changed_at)
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    async fn set_tenant_status(
        &self,
        id: &TenantId,
        status: TenantStatus,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let changed = self
            .db()?
            .execute(
                "UPDATE tenants SET status = ?2, reason = ?3, changed_at = ?4 WHERE id = ?1",
                params![id.as_str(), status.as_str(), reason, ts(at)],
            )
            .map_err(backend)?;
        Ok(changed > 0)
    }

    async fn remove_tenant(&self, id: &TenantId) -> Result<bool, StateError> {
        let mut db = self.db()?;
        let tx = db.transaction().map_err(backend)?;
        let existed = tx
            .execute("DELETE FROM tenants WHERE id = ?1", params![id.as_str()])
            .map_err(backend)?
            > 0;
        for table in TENANT_TABLES {
            tx.execute(
                &format!("DELETE FROM {table} WHERE tenant = ?1"),
                params![id.as_str()],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Address, Patient, Record};
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_780_000_000 + secs, 0).single().unwrap()
    }

    fn patient(id: u64, updated: i64) -> Record {
        Record::Patient(Patient {
            id: ClinikoId(id),
            title: None,
            first_name: "Siobhán".into(),
            last_name: "O'Brien".into(),
            preferred_first_name: None,
            email: None,
            invoice_email: None,
            address: Address::default(),
            phones: vec![],
            archived_at: None,
            merged_at: None,
            merged_into: None,
            created_at: at(0),
            updated_at: at(updated),
        })
    }

    fn rid(n: u128) -> ReckonId {
        ReckonId(uuid::Uuid::from_u128(n))
    }

    // Watermarks, cross-references, intents and failures: the state-store contract
    // (shared/tests/integration/state_store_contract.rs), run against this adapter and DynamoDB.

    #[tokio::test]
    async fn queue_keeps_the_newest_version_once_in_dependency_order() {
        let s = SqliteState::open_in_memory().unwrap();
        s.enqueue(vec![
            WorkItem::new(patient(1, 10), at(0)),
            WorkItem::new(patient(1, 10), at(0)),
            WorkItem::new(patient(2, 10), at(0)),
        ])
        .await
        .unwrap();
        s.enqueue(vec![WorkItem::new(patient(1, 20), at(0))])
            .await
            .unwrap();
        s.enqueue(vec![WorkItem::new(patient(1, 15), at(0))])
            .await
            .unwrap();
        let claimed = s.claim(10, at(100)).unwrap();
        let got: Vec<_> = claimed
            .iter()
            .map(|c| (c.item.record.id().0, c.item.record.version()))
            .collect();
        assert_eq!(got, vec![(2, at(10)), (1, at(20))]);
        s.retry_later(claimed[0].seq, at(200), "boom").unwrap();
        assert_eq!(s.claim(10, at(100)).unwrap().len(), 1, "not due yet");
        assert_eq!(
            s.queue_depth().unwrap(),
            QueueDepth {
                pending: 2,
                retrying: 1
            }
        );
        assert_eq!(s.next_due().unwrap(), Some(at(0)));
        s.ack(claimed[1].seq).unwrap();
        let again = s.claim(10, at(300)).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 1);
    }

    #[tokio::test]
    async fn the_writability_check_leaves_nothing_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let a = SqliteState::open(&path).unwrap();
        a.check_writable().await.unwrap();
        a.check_writable().await.unwrap();
        let tokens = TokenSet {
            access_token: SecretString::from("a"),
            refresh_token: SecretString::from("r"),
            expires_at: at(100),
        };
        a.save(&tokens).await.unwrap();
        // Committed, not held in a transaction the check left open: another handle sees it.
        let b = SqliteState::open(&path).unwrap();
        let seen = b.load().await.unwrap().expect("saved");
        assert_eq!(seen.refresh_token.expose_secret(), "r");
    }

    #[tokio::test]
    async fn state_survives_reopening_the_file() {
        let dir = std::env::temp_dir().join(format!("cr-sqlite-{}", uuid::Uuid::new_v4()));
        let path = dir.join("state.sqlite");
        {
            let s = SqliteState::open(&path).unwrap();
            s.advance_watermark(EntityKind::Invoice, at(42))
                .await
                .unwrap();
            s.enqueue(vec![WorkItem::new(patient(3, 1), at(0))])
                .await
                .unwrap();
            s.save(&TokenSet {
                access_token: SecretString::from("access"),
                refresh_token: SecretString::from("refresh-2"),
                expires_at: at(99),
            })
            .await
            .unwrap();
        }
        let s = SqliteState::open(&path).unwrap();
        assert_eq!(
            s.watermark(EntityKind::Invoice).await.unwrap(),
            Some(at(42))
        );
        assert_eq!(s.claim(5, at(1)).unwrap().len(), 1);
        let t = s.load().await.unwrap().unwrap();
        assert_eq!(t.refresh_token.expose_secret(), "refresh-2");
        assert_eq!(t.expires_at, at(99));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn audit_entries_are_kept() {
        let s = SqliteState::open_in_memory().unwrap();
        let e = AuditEntry {
            at: at(5),
            kind: EntityKind::Patient,
            cliniko_id: ClinikoId(1),
            version: at(1),
            outcome: Outcome::Created,
            reckon_id: Some(rid(1)),
            detail: "created".into(),
        };
        s.audit(&e).await.unwrap();
        assert_eq!(s.recent_audit(10).unwrap(), vec![e]);
    }

    #[tokio::test]
    async fn two_tenants_in_one_file_never_see_each_others_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        let a = SqliteState::open(&path).unwrap();
        let b = a.for_tenant(&TenantId::new("clinic-b").unwrap());
        a.advance_watermark(EntityKind::Patient, at(10))
            .await
            .unwrap();
        a.enqueue(vec![WorkItem::new(patient(1, 1), at(0))])
            .await
            .unwrap();
        a.save(&TokenSet {
            access_token: SecretString::from("a-access"),
            refresh_token: SecretString::from("a-refresh"),
            expires_at: at(99),
        })
        .await
        .unwrap();
        b.enqueue(vec![WorkItem::new(patient(1, 1), at(0))])
            .await
            .unwrap();
        assert_eq!(b.watermark(EntityKind::Patient).await.unwrap(), None);
        assert!(
            b.load().await.unwrap().is_none(),
            "no token crosses tenants"
        );
        assert_eq!(a.claim(10, at(5)).unwrap().len(), 1);
        let bs = b.claim(10, at(5)).unwrap();
        assert_eq!(
            bs.len(),
            1,
            "the same Cliniko id is a different record per tenant"
        );
        // Acking another tenant's row number does nothing to it.
        a.ack(bs[0].seq).unwrap();
        assert_eq!(b.queue_depth().unwrap().pending, 1);

        let now = at(0);
        for id in ["clinic-b", "default"] {
            b.put_tenant(&TenantEntry {
                id: TenantId::new(id).unwrap(),
                config: format!("/etc/{id}.toml"),
                status: TenantStatus::Active,
                reason: None,
                added_at: now,
                changed_at: now,
            })
            .await
            .unwrap();
        }
        assert!(b.remove_tenant(b.tenant_id()).await.unwrap());
        assert_eq!(b.queue_depth().unwrap().pending, 0);
        assert_eq!(
            a.queue_depth().unwrap().pending,
            1,
            "the other tenant is kept"
        );
        assert!(a.load().await.unwrap().is_some());
        let left: Vec<String> = a
            .tenants()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id.to_string())
            .collect();
        assert_eq!(left, vec!["default"]);
    }

    #[tokio::test]
    async fn a_schema_1_file_becomes_the_default_tenants_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE watermarks (kind TEXT PRIMARY KEY, at TEXT NOT NULL);
                 CREATE TABLE cross_refs (kind TEXT NOT NULL, cliniko_id TEXT NOT NULL,
                   reckon_id TEXT NOT NULL, version TEXT NOT NULL, content_hash TEXT NOT NULL,
                   reckon_name TEXT, PRIMARY KEY (kind, cliniko_id));
                 CREATE TABLE intents (kind TEXT NOT NULL, cliniko_id TEXT NOT NULL,
                   marker TEXT NOT NULL, started_at TEXT NOT NULL, PRIMARY KEY (kind, cliniko_id));
                 CREATE TABLE failures (kind TEXT NOT NULL, cliniko_id TEXT NOT NULL,
                   version TEXT NOT NULL, error TEXT NOT NULL, retryable INTEGER NOT NULL,
                   attempts INTEGER NOT NULL, last_at TEXT NOT NULL, PRIMARY KEY (kind, cliniko_id));
                 CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
                   kind TEXT NOT NULL, cliniko_id TEXT NOT NULL, version TEXT NOT NULL,
                   outcome TEXT NOT NULL, reckon_id TEXT, detail TEXT NOT NULL);
                 CREATE TABLE queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                   rank INTEGER NOT NULL, cliniko_id TEXT NOT NULL, version TEXT NOT NULL,
                   body TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                   available_at TEXT NOT NULL, last_error TEXT, UNIQUE (kind, cliniko_id, version));
                 CREATE TABLE tokens (id INTEGER PRIMARY KEY CHECK (id = 1),
                   access_token TEXT NOT NULL, refresh_token TEXT NOT NULL, expires_at TEXT NOT NULL);
                 INSERT INTO watermarks VALUES ('patient', '2026-01-02T03:04:05.000000Z');
                 INSERT INTO cross_refs VALUES ('patient', '7', '00000000-0000-0000-0000-000000000001',
                   '2026-01-01T00:00:00.000000Z', 'h', 'Ann Lee');
                 INSERT INTO tokens VALUES (1, 'acc', 'ref-1', '2026-01-01T00:00:00.000000Z');
                 PRAGMA application_id = 1131172459;
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let s = SqliteState::open(&path).unwrap();
        assert!(s.watermark(EntityKind::Patient).await.unwrap().is_some());
        let x = s
            .cross_ref(EntityKind::Patient, ClinikoId(7))
            .await
            .unwrap()
            .expect("link kept");
        assert_eq!(x.reckon_id, rid(1));
        assert!(!x.adopted);
        assert_eq!(
            s.load()
                .await
                .unwrap()
                .unwrap()
                .refresh_token
                .expose_secret(),
            "ref-1"
        );
        let other = s.for_tenant(&TenantId::new("b").unwrap());
        assert!(other.load().await.unwrap().is_none());
        drop((s, other));
        // Reopening a migrated file migrates nothing twice.
        let again = SqliteState::open(&path).unwrap();
        assert_eq!(
            again.cross_ref_counts().unwrap(),
            vec![(EntityKind::Patient, 1)]
        );
    }
}
