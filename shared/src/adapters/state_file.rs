//! The local state file on disk, before and around SQLite: a new file is created owner-only
//! (it holds the Reckon refresh token); an existing one is used only when it is ours (a
//! zero-byte file, another program's database or a newer schema is refused, never taken for
//! a fresh start, because a fresh start against a filled book must adopt, not recreate);
//! and one process at a time may write it (an OS file lock beside it, released by the OS
//! when the holder dies, so a crash never blocks the next run).

use crate::ports::StateError;
use rusqlite::Connection;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// `PRAGMA application_id` of our state files ("ClRk").
pub const APPLICATION_ID: i32 = 0x436C_526B;
/// `PRAGMA user_version`: the state schema this build writes and reads.
/// 2: every row carries its tenant (schema 1 held one clinic; its rows become `default`'s).
pub const SCHEMA_VERSION: i32 = 2;

fn unusable(path: &Path, reason: impl Into<String>) -> StateError {
    StateError::Unusable {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StateError {
    StateError::Backend {
        detail: format!("{what} {}: {e}", path.display()),
        retryable: false,
    }
}

/// Owner read/write only, for the state file and everything beside it.
#[cfg(unix)]
fn owner_only(options: &mut OpenOptions) {
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
}
#[cfg(not(unix))]
fn owner_only(_: &mut OpenOptions) {}

/// Narrows an existing file to owner-only (files made by earlier builds were 0644).
#[cfg(unix)]
fn tighten(path: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io_error("cannot make owner-only", path, e))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("cannot read", path, e)),
    }
}
#[cfg(not(unix))]
fn tighten(_: &Path) -> Result<(), StateError> {
    Ok(())
}

/// A file beside the state file: `cliniko-reckon.sqlite` → `cliniko-reckon.sqlite-wal`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Opens the state file for SQLite: creates it owner-only when it does not exist; refuses a
/// zero-byte file; narrows an existing file (and its WAL/SHM) to owner-only. Returns the
/// connection and whether the file is new.
pub fn open(path: &Path) -> Result<(Connection, bool), StateError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error("cannot create the directory", dir, e))?;
    }
    let created = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Err(unusable(path, "is a directory")),
        Ok(meta) if meta.len() == 0 => {
            return Err(unusable(
                path,
                "is empty (0 bytes), so it is not a state file; if the state was lost, move \
                 this file away and run `sync --once --dry-run` to preview how the sync adopts \
                 what Reckon already holds",
            ));
        }
        Ok(_) => {
            for p in [
                path.to_path_buf(),
                sibling(path, "-wal"),
                sibling(path, "-shm"),
            ] {
                tighten(&p)?;
            }
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            owner_only(&mut options);
            options
                .open(path)
                .map_err(|e| io_error("cannot create", path, e))?;
            true
        }
        Err(e) => return Err(io_error("cannot read", path, e)),
    };
    let conn = Connection::open(path).map_err(|e| io_error_sqlite(path, e))?;
    Ok((conn, created))
}

fn io_error_sqlite(path: &Path, e: rusqlite::Error) -> StateError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
        return unusable(path, "is not a SQLite database, so it is not a state file");
    }
    StateError::Backend {
        detail: format!("{}: {e}", path.display()),
        retryable: false,
    }
}

/// Checks that an existing file is a state file of a schema this build reads, or marks a
/// new one as ours. A file made before the marker existed (our tables, no application id)
/// is adopted and marked.
pub fn check_identity(conn: &Connection, path: &Path, created: bool) -> Result<(), StateError> {
    let read = |pragma: &str| -> Result<i32, StateError> {
        conn.pragma_query_value(None, pragma, |r| r.get::<_, i32>(0))
            .map_err(|e| io_error_sqlite(path, e))
    };
    let mark = || -> Result<(), StateError> {
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .and_then(|_| conn.pragma_update(None, "user_version", SCHEMA_VERSION))
            .map_err(|e| io_error_sqlite(path, e))
    };
    let app = read("application_id")?;
    let version = read("user_version")?;
    if created {
        return mark();
    }
    if app == 0 {
        let tables: Vec<String> = {
            let mut stmt = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .map_err(|e| io_error_sqlite(path, e))?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(|e| io_error_sqlite(path, e))?;
            rows.collect::<Result<_, _>>()
                .map_err(|e| io_error_sqlite(path, e))?
        };
        let ours = ["watermarks", "cross_refs", "tokens"]
            .iter()
            .all(|t| tables.iter().any(|have| have == t));
        if ours && version == 0 {
            return mark();
        }
        let what = if tables.is_empty() {
            "an empty SQLite database".to_string()
        } else {
            format!(
                "a SQLite database with other tables ({})",
                tables.join(", ")
            )
        };
        return Err(unusable(
            path,
            format!(
                "is {what}, not a cliniko-reckon state file; pass --state with the sync's own file"
            ),
        ));
    }
    if app != APPLICATION_ID {
        return Err(unusable(
            path,
            format!(
                "belongs to another program (SQLite application id {app:#x}), not a cliniko-reckon state file"
            ),
        ));
    }
    if version > SCHEMA_VERSION {
        return Err(unusable(
            path,
            format!(
                "was written by a newer cliniko-reckon (state schema {version}; this build reads up to {SCHEMA_VERSION}): upgrade cliniko-reckon to use it"
            ),
        ));
    }
    Ok(())
}

/// Who holds the writer lock, as written into the lock file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub started_at: String,
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (pid {}, started at {})",
            self.command, self.pid, self.started_at
        )
    }
}

/// The one-writer lock of a state file, held until dropped (or the process ends).
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
    pub path: PathBuf,
}

/// Takes the writer lock of the state file at `state`, or says who holds it. Never waits.
pub fn lock_writer(state: &Path, command: &str) -> Result<WriterLock, StateError> {
    let path = sibling(state, ".lock");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error("cannot create the directory", dir, e))?;
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    owner_only(&mut options);
    let mut file = options
        .open(&path)
        .map_err(|e| io_error("cannot open the lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let holder = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| serde_json::from_str::<Holder>(&text).ok());
            return Err(StateError::InUse {
                path: state.display().to_string(),
                holder: match holder {
                    Some(h) => h.to_string(),
                    None => "another process".to_string(),
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(io_error("cannot lock", &path, e));
        }
    }
    let holder = Holder {
        pid: std::process::id(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        command: command.to_string(),
    };
    let text = serde_json::to_string(&holder).map_err(|e| StateError::Backend {
        detail: format!("lock file: {e}"),
        retryable: false,
    })?;
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| file.write_all(text.as_bytes()))
        .and_then(|_| file.flush())
        .map_err(|e| io_error("cannot write the lock file", &path, e))?;
    Ok(WriterLock { _file: file, path })
}

/// Serialises Reckon token refreshes between processes sharing one state file (a `sync`
/// and a read-only `reconcile`, say): a rotated refresh token redeemed twice is lost.
/// Blocks until the lock is free; the OS releases it if its holder dies.
#[derive(Debug)]
pub struct RefreshLock {
    path: PathBuf,
    held: std::sync::Mutex<Option<File>>,
}

impl RefreshLock {
    /// One lock per tenant: each clinic has its own Reckon tokens.
    pub fn new(state: &Path, tenant: &crate::domain::TenantId) -> RefreshLock {
        let suffix = if tenant.as_str() == crate::domain::DEFAULT_TENANT {
            ".refresh.lock".to_string()
        } else {
            format!(".refresh-{tenant}.lock")
        };
        RefreshLock {
            path: sibling(state, &suffix),
            held: std::sync::Mutex::new(None),
        }
    }

    pub fn acquire(&self) -> Result<(), StateError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        owner_only(&mut options);
        let file = options
            .open(&self.path)
            .map_err(|e| io_error("cannot open the lock file", &self.path, e))?;
        file.lock()
            .map_err(|e| io_error("cannot lock", &self.path, e))?;
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
        Ok(())
    }

    pub fn release(&self) {
        // Dropping the file releases the lock.
        self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_lock_is_exclusive_and_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.sqlite");
        let first = lock_writer(&state, "sync --once").unwrap();
        match lock_writer(&state, "sync --watch") {
            Err(StateError::InUse { holder, .. }) => {
                assert!(holder.contains("sync --once"), "{holder}");
                assert!(
                    holder.contains(&format!("pid {}", std::process::id())),
                    "{holder}"
                );
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        // Released with its holder: the next one gets it at once.
        lock_writer(&state, "sync --once").unwrap();
    }

    #[test]
    fn sibling_names() {
        assert_eq!(
            sibling(Path::new("/x/s.sqlite"), "-wal"),
            PathBuf::from("/x/s.sqlite-wal")
        );
    }
}
