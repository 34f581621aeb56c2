//! The SQLite store: WAL mode, `synchronous=FULL`, the group-commit writer
//! of `group_commit.rs` on the only write connection, and a small pool of
//! separate read connections. This module owns the SQL (the schema and
//! [`Tables`] on a `rusqlite::Connection`) and the WAL's upkeep: a thread of
//! its own copies the WAL back into the database (checkpoints), so that the
//! writer only finishes what it left: SQLite's own checkpoint every thousand
//! pages took 5–11 ms inside a commit, every tenth of a second under load,
//! and every grant queued behind it (`start_checkpointer`,
//! `checkpoint_in_writer`).

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use irm_core::protocol::{AlertAck, ApprovalInfo, AuditRecord, Notice, RequestState, TakeOut};
use rusqlite::{Connection, OptionalExtension, params};

use super::contract::{
    CodeIssue, DeviceRecord, KeyRecord, NewUser, UserRecord, parse_roles, roles_text,
};
use super::group_commit::{Backend, GroupCommitStore, Writer};
use super::schema;
use super::tables::{
    BreakGlassRow, CanaryExportRow, CodeRow, FileRow, GrantDetail, GrantRow, HoldRow, NewFile,
    NewGrant, RequestRow, Tables, key_record, key32, notice, notice_kind, request_columns,
    request_row,
};
use super::txn::SCHEMA_VERSION;
use crate::error::StoreError;
use crate::grant::decision::FileControls;
use crate::metrics::Metrics;
use irm_core::protocol::KeyState;

/// How often the checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(20);
/// Commits between two checkpoints by the writer (see `checkpoint_in_writer`).
const WRITER_CHECKPOINT_EVERY: u64 = 64;
/// A WAL this long (in pages, 4 KiB each: 256 MiB), which the checkpoints
/// could not finish (a reader held on to an old snapshot), is checkpointed
/// by the writer with RESTART, waiting for readers, so that the file stays
/// bounded.
const MAX_WAL_PAGES: i64 = 65_536;
/// Commits between two looks at the WAL's size.
const WAL_CHECK_EVERY: u64 = 1024;
/// Prepared statements kept per connection: every statement of [`Tables`]
/// fits, so the grant path's are never evicted by an administrator's.
const STATEMENT_CACHE: usize = 64;

// The columns each `*_row` function reads, in its order. Macros, so that
// statements are built with `concat!` at compile time rather than with
// `format!` per call on the grant path.
macro_rules! device_columns {
    () => {
        "id, user_name, name, public_key, signing_key, active, enrolled_at"
    };
}
macro_rules! file_columns {
    () => {
        "id, owner, file_name, policy_json, revoked, admin_expires_at, restricted_rights, first_seen_at"
    };
}
macro_rules! audit_columns {
    () => {
        "seq, at_ms, actor_user, actor_device, action, file_id, result, reason, client_addr, detail, prev_hash, hash"
    };
}

/// Runs a parameterless statement through the connection's statement cache.
fn run_cached(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// SQLite's reads: a pool of connections opened on demand. It also owns
/// the checkpointer thread.
pub(super) struct SqliteBackend {
    path: PathBuf,
    /// The one-writer lock (`DB.lock`), held while the store lives.
    _writer_lock: std::fs::File,
    readers: Mutex<Vec<Connection>>,
    /// Dropping the sender stops the checkpointer.
    checkpointer: Mutex<Option<(std_mpsc::Sender<()>, JoinHandle<()>)>>,
}

/// Takes the database's writer lock, an advisory lock on `DB.lock` beside
/// it that the system drops with the process.
fn lock_writer(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let failed = |source| StoreError::Lock {
        path: lock_path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(failed)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse),
        Err(std::fs::TryLockError::Error(e)) => Err(failed(e)),
    }
}

/// SQLite behind [`super::Store`].
pub(super) type SqliteStore = GroupCommitStore<SqliteBackend>;

/// Opens (creating if needed) the database at `path` and starts the writer.
pub(super) fn open(path: &Path, metrics: Arc<Metrics>) -> Result<SqliteStore, StoreError> {
    // One writer per database, as on PostgreSQL (§11.1): the group commit
    // keeps the chain head in memory, so a second writer (another server,
    // or an offline command while one serves) would fork the chain.
    let writer_lock = lock_writer(path)?;
    let conn = Connection::open(path)?;
    // PROTOCOL.md §4.1: durable before the response — WAL with a full
    // fsync at every commit.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "SQLite refused WAL mode (got {mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Checkpoints are the checkpointer thread's (see the module comment).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    configure(&conn)?;
    conn.execute_batch(schema::SQLITE)?;
    // Version 1 lacked the approval tables, which the schema just created,
    // and a column.
    let version: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .optional()?;
    // Versions 2 to 5 lacked some of `alert_acks`, `detection_rules`,
    // `first_access` and the canary tables, which the schema just created too.
    let upgrade = match version.as_deref() {
        Some("1") => Some(schema::UPGRADE_FROM_1),
        Some("2" | "3" | "4" | "5") => Some(""),
        _ => None,
    };
    if let Some(upgrade) = upgrade {
        conn.execute_batch(&format!(
            "BEGIN; {upgrade} UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema'; COMMIT;"
        ))?;
    }
    let checkpointer = start_checkpointer(path)?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    let writer = Writer::start(
        "irm-audit-writer",
        metrics,
        move || Ok(conn),
        Box::new(move |conn: &mut Connection, _head, batches| {
            if batches % WRITER_CHECKPOINT_EVERY == 0 {
                checkpoint_in_writer(conn);
            }
            if batches % WAL_CHECK_EVERY == 0 {
                checkpoint_if_huge(conn, &wal);
            }
            Ok(())
        }),
    )?;
    Ok(GroupCommitStore::new(
        SqliteBackend {
            path: path.to_owned(),
            _writer_lock: writer_lock,
            readers: Mutex::new(Vec::new()),
            checkpointer: Mutex::new(Some(checkpointer)),
        },
        writer,
    ))
}

impl SqliteBackend {
    /// Runs `op` on a pooled read connection, on the caller's thread.
    fn pooled<T>(
        &self,
        op: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().ok().and_then(|mut pool| pool.pop());
        let mut conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open(&self.path)?;
                configure(&conn)?;
                conn
            }
        };
        let result = op(&mut conn);
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < 16
        {
            pool.push(conn);
        }
        result
    }
}

impl Backend for SqliteBackend {
    type Conn = Connection;

    fn read<T: Send + 'static>(
        &self,
        op: impl Fn(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.pooled(op)
    }

    fn for_each_audit(&self, f: &mut dyn FnMut(&AuditRecord)) -> Result<(), StoreError> {
        self.pooled(|conn| each_audit(conn, f))
    }

    fn close(&self) {
        let checkpointer = self.checkpointer.lock().ok().and_then(|mut c| c.take());
        if let Some((stop, handle)) = checkpointer {
            drop(stop);
            let _ = handle.join();
        }
    }
}

fn each_audit(conn: &Connection, f: &mut dyn FnMut(&AuditRecord)) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit ORDER BY seq"
    ))?;
    let rows = stmt.query_map([], audit_row)?;
    for row in rows {
        f(&row?);
    }
    Ok(())
}

/// Reads every audit record of the database at `path` without writing to it
/// (offline verification of a copied database).
pub(super) fn for_each_audit_read_only(
    path: &Path,
    f: &mut dyn FnMut(&AuditRecord),
) -> Result<(), StoreError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    each_audit(&conn, f)
}

/// Starts the thread that copies the WAL back into the database with its
/// own connection, every [`CHECKPOINT_EVERY`]. A PASSIVE checkpoint never
/// blocks the writer: it copies the frames no reader still needs and fsyncs
/// the database.
fn start_checkpointer(path: &Path) -> Result<(std_mpsc::Sender<()>, JoinHandle<()>), StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    configure(&conn)?;
    let (stop, stopped) = std_mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("irm-checkpoint".into())
        .spawn(move || {
            while let Err(std_mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(CHECKPOINT_EVERY)
            {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed; the next one retries");
                }
            }
        })?;
    Ok((stop, handle))
}

/// The writer's own checkpoint, every [`WRITER_CHECKPOINT_EVERY`] commits.
/// The checkpointer has already copied nearly every frame, so this one
/// copies the few written since and takes about a millisecond; and since no
/// commit can come in between, it finishes the WAL, which the next commit
/// then starts over. (Checkpoints from another thread alone never catch up
/// with a busy writer, and the WAL grew by tens of megabytes a second.) If
/// the checkpointer holds the checkpoint lock this returns at once and the
/// next round tries again.
fn checkpoint_in_writer(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "WAL checkpoint failed; the next one retries");
    }
}

/// The writer's fallback when the WAL grew past [`MAX_WAL_PAGES`] (the
/// checkpointer could never copy it all, say because a reader held on): a
/// blocking checkpoint that starts the WAL over.
fn checkpoint_if_huge(conn: &Connection, wal: &Path) {
    // A WAL frame is a page and a 24-byte frame header.
    let wal_pages = std::fs::metadata(wal).map_or(0, |m| m.len() / (4096 + 24));
    if wal_pages > MAX_WAL_PAGES as u64 {
        tracing::warn!(
            wal_pages,
            "the WAL outgrew the background checkpoints; checkpointing in the writer"
        );
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

// ---------- rows ----------

type DeviceRow = (String, String, String, Vec<u8>, Vec<u8>, bool, u64);

fn device_from_row(row: DeviceRow) -> Result<DeviceRecord, StoreError> {
    let (id, user, name, public_key, signing_key, active, enrolled_at) = row;
    Ok(DeviceRecord {
        id,
        user,
        name,
        public_key: key32(public_key, "a device public key")?,
        signing_key: key32(signing_key, "a device signing key")?,
        active,
        enrolled_at,
    })
}

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRow> {
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

fn file_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileRow> {
    Ok(FileRow {
        id: r.get(0)?,
        owner: r.get(1)?,
        file_name: r.get(2)?,
        policy_json: r.get(3)?,
        revoked: r.get(4)?,
        admin_expires_at: r.get(5)?,
        restricted: r.get(6)?,
        first_seen_at: r.get(7)?,
    })
}

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.get(0)?,
        at_ms: r.get(1)?,
        actor_user: r.get(2)?,
        actor_device: r.get(3)?,
        action: r.get(4)?,
        file_id: r.get(5)?,
        result: r.get(6)?,
        reason: r.get(7)?,
        client_addr: r.get(8)?,
        detail: r.get(9)?,
        prev_hash: r.get(10)?,
        hash: r.get(11)?,
    })
}

fn request_from_row(r: &rusqlite::Row<'_>) -> Result<RequestRow, StoreError> {
    request_row(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        &r.get::<_, String>(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    )
}

fn exists(conn: &Connection, sql: &str, key: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([key], |_| Ok(()))
        .optional()?
        .is_some())
}

impl Tables for Connection {
    fn begin(&mut self) -> Result<(), StoreError> {
        // IMMEDIATE: the write lock is taken now, not at the first write.
        Ok(self.execute_batch("BEGIN IMMEDIATE")?)
    }

    fn run(&mut self, sql: &'static str) -> Result<(), StoreError> {
        // Cached: the group commit's per-job savepoints are on every grant's path.
        Ok(run_cached(self, sql)?)
    }

    fn meta(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    fn insert_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
        Ok(())
    }

    fn upsert_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    fn user(&mut self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<(String, String, String, bool)> = self
            .prepare_cached("SELECT name, display_name, roles, active FROM users WHERE name = ?1")?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        let Some((name, display_name, roles, active)) = row else {
            return Ok(None);
        };
        let groups = self
            .prepare_cached(
                "SELECT group_name FROM group_members WHERE user_name = ?1 ORDER BY group_name",
            )?
            .query_map([&name], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        Ok(Some(UserRecord {
            groups,
            roles: parse_roles(&roles)?,
            name,
            display_name,
            active,
        }))
    }

    fn user_names(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .prepare_cached("SELECT name FROM users ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    fn group_names(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .prepare_cached("SELECT name FROM groups ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    fn user_exists(&mut self, name: &str) -> Result<bool, StoreError> {
        exists(self, "SELECT 1 FROM users WHERE name = ?1", name)
    }

    fn insert_user(&mut self, user: &NewUser, now: u64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO users (name, display_name, roles, active, created_at, code_hash, code_expires_at, code_failures, code_origin)
             VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, 0, ?7)",
            params![
                user.name,
                user.display_name,
                roles_text(&user.roles),
                now,
                user.code.hash.to_vec(),
                user.code.expires_at,
                user.code.origin
            ],
        )?;
        Ok(())
    }

    fn set_user_active(&mut self, name: &str, active: bool) -> Result<(), StoreError> {
        self.execute(
            "UPDATE users SET active = ?2 WHERE name = ?1",
            params![name, active],
        )?;
        Ok(())
    }

    fn user_code(&mut self, name: &str) -> Result<Option<CodeRow>, StoreError> {
        Ok(self
            .query_row(
                "SELECT code_hash, code_expires_at, code_failures, code_origin FROM users WHERE name = ?1",
                [name],
                |r| {
                    Ok(CodeRow {
                        hash: r.get(0)?,
                        expires_at: r.get(1)?,
                        failures: r.get(2)?,
                        origin: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn user_with_code(&mut self, hash: &[u8; 32]) -> Result<Option<String>, StoreError> {
        Ok(self
            .prepare_cached("SELECT name FROM users WHERE code_hash = ?1")?
            .query_row([hash.to_vec()], |r| r.get(0))
            .optional()?)
    }

    fn set_user_code(
        &mut self,
        name: &str,
        code: Option<&CodeIssue>,
        failures: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE users SET code_hash = ?2, code_expires_at = ?3, code_failures = ?4, code_origin = ?5 WHERE name = ?1",
            params![
                name,
                code.map(|c| c.hash.to_vec()),
                code.map(|c| c.expires_at),
                failures,
                code.map(|c| c.origin.as_str())
            ],
        )?;
        Ok(())
    }

    fn set_code_failures(&mut self, name: &str, failures: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE users SET code_failures = ?2 WHERE name = ?1",
            params![name, failures],
        )?;
        Ok(())
    }

    fn group_exists(&mut self, name: &str) -> Result<bool, StoreError> {
        exists(self, "SELECT 1 FROM groups WHERE name = ?1", name)
    }

    fn insert_group(&mut self, name: &str, now: u64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO groups (name, created_at) VALUES (?1, ?2)",
            params![name, now],
        )?;
        Ok(())
    }

    fn add_member(&mut self, group: &str, user: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR IGNORE INTO group_members (group_name, user_name) VALUES (?1, ?2)",
            params![group, user],
        )?;
        Ok(())
    }

    fn remove_member(&mut self, group: &str, user: &str) -> Result<bool, StoreError> {
        let removed = self.execute(
            "DELETE FROM group_members WHERE group_name = ?1 AND user_name = ?2",
            params![group, user],
        )?;
        Ok(removed > 0)
    }

    fn device(&mut self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row = self
            .prepare_cached(concat!(
                "SELECT ",
                device_columns!(),
                " FROM devices WHERE id = ?1"
            ))?
            .query_row([id], device_row)
            .optional()?;
        row.map(device_from_row).transpose()
    }

    fn devices(&mut self) -> Result<Vec<DeviceRecord>, StoreError> {
        let mut stmt = self.prepare_cached(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices ORDER BY user_name, enrolled_at, id"
        ))?;
        let rows = stmt
            .query_map([], device_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(device_from_row).collect()
    }

    fn insert_device(&mut self, d: &DeviceRecord, enrolled_at: u64) -> Result<(), StoreError> {
        self.execute(
            concat!(
                "INSERT INTO devices (",
                device_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)"
            ),
            params![
                d.id,
                d.user,
                d.name,
                d.public_key.to_vec(),
                d.signing_key.to_vec(),
                enrolled_at
            ],
        )?;
        Ok(())
    }

    fn active_devices_of(&mut self, user: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .prepare_cached("SELECT id FROM devices WHERE user_name = ?1 AND active ORDER BY id")?
            .query_map([user], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    fn revoke_device(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.execute("UPDATE devices SET active = 0 WHERE id = ?1", [id])? > 0)
    }

    fn keys(&mut self) -> Result<Vec<KeyRecord>, StoreError> {
        let mut stmt = self.prepare_cached(
            "SELECT key_id, public_key, state, created_at FROM kas_keys ORDER BY created_at, key_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u64>(3)?,
            ))
        })?;
        let mut keys = Vec::new();
        for row in rows {
            let (id, public, state, created_at) = row?;
            keys.push(key_record(&id, &public, &state, created_at)?);
        }
        Ok(keys)
    }

    fn insert_key(&mut self, key: &KeyRecord, state: KeyState) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO kas_keys (key_id, public_key, state, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                key.key_id.to_string(),
                key.public_key.to_text(),
                state.as_str(),
                key.created_at
            ],
        )?;
        Ok(())
    }

    fn demote_current_key(&mut self) -> Result<(), StoreError> {
        self.execute(
            "UPDATE kas_keys SET state = 'active' WHERE state = 'current'",
            [],
        )?;
        Ok(())
    }

    fn key_state(&mut self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .query_row("SELECT state FROM kas_keys WHERE key_id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn set_key_state(&mut self, id: &str, state: KeyState) -> Result<(), StoreError> {
        self.execute(
            "UPDATE kas_keys SET state = ?2 WHERE key_id = ?1",
            params![id, state.as_str()],
        )?;
        Ok(())
    }

    fn file(&mut self, id: &str) -> Result<Option<FileRow>, StoreError> {
        Ok(self
            .prepare_cached(concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE id = ?1"
            ))?
            .query_row([id], file_row)
            .optional()?)
    }

    fn files(&mut self) -> Result<Vec<FileRow>, StoreError> {
        let mut stmt = self.prepare_cached(concat!(
            "SELECT ",
            file_columns!(),
            " FROM files ORDER BY first_seen_at, id"
        ))?;
        Ok(stmt
            .query_map([], file_row)?
            .collect::<Result<Vec<_>, _>>()?)
    }

    fn insert_file(&mut self, file: &NewFile<'_>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO files (id, key_id, owner, file_name, policy_json, first_seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                file.id,
                file.key_id,
                file.owner,
                file.file_name,
                file.policy_json,
                file.first_seen_at
            ],
        )?;
        Ok(())
    }

    fn fill_unseen_file(
        &mut self,
        id: &str,
        key_id: &str,
        policy_json: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE files SET key_id = ?2, policy_json = ?3 WHERE id = ?1 AND policy_json = ?4",
            params![id, key_id, policy_json, super::tables::UNSEEN_POLICY],
        )?;
        Ok(())
    }

    fn claim_file(
        &mut self,
        id: &str,
        owner: &str,
        file_name: Option<&str>,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE files SET owner = ?2, file_name = COALESCE(?3, file_name) WHERE id = ?1",
            params![id, owner, file_name],
        )?;
        Ok(())
    }

    fn set_file_controls(&mut self, id: &str, controls: &FileControls) -> Result<(), StoreError> {
        self.execute(
            "UPDATE files SET revoked = ?2, admin_expires_at = ?3, restricted_rights = ?4 WHERE id = ?1",
            params![
                id,
                controls.revoked,
                controls.admin_expires_at,
                controls.restricted.bits()
            ],
        )?;
        Ok(())
    }

    fn insert_grant(&mut self, g: &NewGrant<'_>) -> Result<(), StoreError> {
        self.prepare_cached(
            "INSERT INTO grants (id, file_id, user_name, device_id, rights, renew, issued_at, lease_expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            g.id,
            g.file_id,
            g.user,
            g.device,
            g.rights,
            g.renew,
            g.issued_at,
            g.lease_expires_at
        ])?;
        Ok(())
    }

    fn grant(&mut self, id: &str) -> Result<Option<GrantRow>, StoreError> {
        Ok(self
            .prepare_cached("SELECT file_id, device_id, rights FROM grants WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(GrantRow {
                    file_id: r.get(0)?,
                    device_id: r.get(1)?,
                    rights: r.get(2)?,
                })
            })
            .optional()?)
    }

    fn last_grants(&mut self) -> Result<Vec<(String, String, u64)>, StoreError> {
        Ok(self
            .prepare_cached(
                "SELECT user_name, device_id, MAX(issued_at) FROM grants
                 GROUP BY user_name, device_id ORDER BY user_name, device_id",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?)
    }

    fn user_created(&mut self) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(self
            .prepare_cached("SELECT name, created_at FROM users ORDER BY name")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    fn grants_with_prefix(&mut self, prefix: &str) -> Result<Vec<GrantDetail>, StoreError> {
        // Ids are 32 lowercase hex digits: the range is the prefix's, and
        // uses the primary key's index.
        let (low, high) = (format!("{prefix:0<32}"), format!("{prefix:f<32}"));
        let rows: Vec<GrantDetail> = self
            .prepare_cached(
                "SELECT id, file_id, user_name, device_id, issued_at, lease_expires_at, renew
                 FROM grants WHERE id >= ?1 AND id <= ?2 ORDER BY issued_at, id",
            )?
            .query_map(params![low, high], |r| {
                Ok(GrantDetail {
                    id: r.get(0)?,
                    file_id: r.get(1)?,
                    user: r.get(2)?,
                    device_id: r.get(3)?,
                    issued_at: r.get(4)?,
                    lease_expires_at: r.get(5)?,
                    renew: r.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows
            .into_iter()
            .filter(|g| g.id.starts_with(prefix))
            .collect())
    }

    fn insert_canary_export(&mut self, e: &CanaryExportRow) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO canary_exports (id, grant_id, file_id, user_name, device_id, request_id, approvers, row_count, canary_count, exported_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                e.id,
                e.grant_id,
                e.file_id,
                e.user,
                e.device_id,
                e.request_id,
                e.approvers,
                i64::try_from(e.rows).map_err(|_| StoreError::OutOfRange("a row count"))?,
                e.canaries,
                e.exported_at
            ],
        )?;
        Ok(())
    }

    fn canary_export(&mut self, id: &str) -> Result<Option<CanaryExportRow>, StoreError> {
        Ok(self
            .prepare_cached(
                "SELECT id, grant_id, file_id, user_name, device_id, request_id, approvers, row_count, canary_count, exported_at
                 FROM canary_exports WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok(CanaryExportRow {
                    id: r.get(0)?,
                    grant_id: r.get(1)?,
                    file_id: r.get(2)?,
                    user: r.get(3)?,
                    device_id: r.get(4)?,
                    request_id: r.get(5)?,
                    approvers: r.get(6)?,
                    rows: r.get(7)?,
                    canaries: r.get(8)?,
                    exported_at: r.get(9)?,
                })
            })
            .optional()?)
    }

    fn insert_canary(&mut self, value: &str, export: &str) -> Result<(), StoreError> {
        self.prepare_cached("INSERT INTO canaries (value, export_id) VALUES (?1, ?2)")?
            .execute(params![value, export])?;
        Ok(())
    }

    fn canaries_among(&mut self, values: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        // One statement for the whole list: the values travel as one JSON
        // array, never spliced into the SQL.
        let list = serde_json::to_string(values)
            .map_err(|e| StoreError::Corrupt(format!("canary values: {e}")))?;
        Ok(self
            .prepare_cached(
                "SELECT value, export_id FROM canaries WHERE value IN (SELECT value FROM json_each(?1))",
            )?
            .query_map([list], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    fn insert_request(&mut self, q: &RequestRow) -> Result<(), StoreError> {
        self.execute(
            concat!(
                "INSERT INTO requests (",
                request_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ),
            params![
                q.id,
                q.action_json,
                q.action_hash,
                q.requester,
                q.requester_device,
                q.reason,
                q.required,
                q.state.as_str(),
                q.created_at,
                q.expires_at,
                q.outcome,
                q.code_first_hash.as_ref().map(|h| h.as_slice()),
            ],
        )?;
        Ok(())
    }

    fn request(&mut self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        let mut statement = self.prepare_cached(concat!(
            "SELECT ",
            request_columns!(),
            " FROM requests WHERE id = ?1"
        ))?;
        let mut rows = statement.query([id])?;
        rows.next()?.map(request_from_row).transpose()
    }

    fn requests(&mut self, limit: u32) -> Result<Vec<RequestRow>, StoreError> {
        let mut statement = self.prepare_cached(concat!(
            "SELECT ",
            request_columns!(),
            " FROM requests ORDER BY state = 'pending' DESC, created_at DESC, id LIMIT ?1"
        ))?;
        let mut rows = statement.query([limit])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(request_from_row(row)?);
        }
        Ok(out)
    }

    fn pending_due(&mut self, now: u64) -> Result<Vec<String>, StoreError> {
        Ok(self
            .prepare_cached(
                "SELECT id FROM requests WHERE state = 'pending' AND expires_at <= ?1 ORDER BY id",
            )?
            .query_map([now], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    fn set_request_state(
        &mut self,
        id: &str,
        state: RequestState,
        outcome: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE requests SET state = ?2, outcome = ?3 WHERE id = ?1",
            params![id, state.as_str(), outcome],
        )?;
        Ok(())
    }

    fn insert_approval(&mut self, request: &str, a: &ApprovalInfo) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO approvals (request_id, approver, device, at) VALUES (?1, ?2, ?3, ?4)",
            params![request, a.approver, a.device, a.at],
        )?;
        Ok(())
    }

    fn approvals(&mut self, request: &str) -> Result<Vec<ApprovalInfo>, StoreError> {
        Ok(self
            .prepare_cached(
                "SELECT approver, device, at FROM approvals WHERE request_id = ?1 ORDER BY at, approver",
            )?
            .query_map([request], |r| {
                Ok(ApprovalInfo {
                    approver: r.get(0)?,
                    device: r.get(1)?,
                    at: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    fn approval_rule(&mut self, action: &str) -> Result<Option<u8>, StoreError> {
        let required: Option<i64> = self
            .query_row(
                "SELECT required FROM approval_rules WHERE action = ?1",
                [action],
                |r| r.get(0),
            )
            .optional()?;
        required
            .map(|n| {
                u8::try_from(n)
                    .map_err(|_| StoreError::Corrupt(format!("rule {action} requires {n}")))
            })
            .transpose()
    }

    fn set_approval_rule(&mut self, action: &str, required: u8) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO approval_rules (action, required) VALUES (?1, ?2) ON CONFLICT(action) DO UPDATE SET required = excluded.required",
            params![action, required],
        )?;
        Ok(())
    }

    fn detection_rule(&mut self, rule: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .query_row(
                "SELECT setting FROM detection_rules WHERE rule = ?1",
                [rule],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn set_detection_rule(&mut self, rule: &str, setting: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO detection_rules (rule, setting) VALUES (?1, ?2) ON CONFLICT(rule) DO UPDATE SET setting = excluded.setting",
            params![rule, setting],
        )?;
        Ok(())
    }

    fn detection_rows(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .prepare_cached("SELECT rule, setting FROM detection_rules ORDER BY rule")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    fn distinct_files_by_user(&mut self, since_ms: u64) -> Result<Vec<(String, u64)>, StoreError> {
        let since = i64::try_from(since_ms).unwrap_or(i64::MAX);
        Ok(self
            .prepare_cached(
                "SELECT actor_user, COUNT(DISTINCT file_id) FROM audit \
                 WHERE action = 'grant' AND result = 'ok' AND at_ms >= ?1 \
                 AND actor_user IS NOT NULL AND file_id IS NOT NULL GROUP BY actor_user",
            )?
            .query_map([since], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    fn first_accesses(&mut self) -> Result<Vec<(String, String, u64)>, StoreError> {
        Ok(self
            .prepare_cached("SELECT user_name, scope, first_at FROM first_access")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?)
    }

    fn insert_first_access(&mut self, user: &str, scope: &str, at: u64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO first_access (user_name, scope, first_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![user, scope, at],
        )?;
        Ok(())
    }

    fn break_glass(&mut self) -> Result<Option<BreakGlassRow>, StoreError> {
        Ok(self
            .query_row(
                "SELECT code_hash, issued_at, expires_at, origin, used_at, used_by, used_request FROM break_glass WHERE slot = 'current'",
                [],
                |r| {
                    Ok(BreakGlassRow {
                        hash: r.get(0)?,
                        issued_at: r.get(1)?,
                        expires_at: r.get(2)?,
                        origin: r.get(3)?,
                        used_at: r.get(4)?,
                        used_by: r.get(5)?,
                        used_request: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    fn hold(&mut self, user: &str) -> Result<Option<HoldRow>, StoreError> {
        Ok(self
            .query_row(
                "SELECT rule, since, detail FROM holds WHERE user_name = ?1",
                params![user],
                |r| {
                    Ok(HoldRow {
                        rule: r.get(0)?,
                        since: r.get(1)?,
                        detail: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    fn set_hold(&mut self, user: &str, hold: Option<&HoldRow>) -> Result<(), StoreError> {
        match hold {
            Some(hold) => self.execute(
                "INSERT OR REPLACE INTO holds (user_name, rule, since, detail) VALUES (?1, ?2, ?3, ?4)",
                params![user, hold.rule, hold.since, hold.detail],
            )?,
            None => self.execute("DELETE FROM holds WHERE user_name = ?1", params![user])?,
        };
        Ok(())
    }

    fn alert_ack(&mut self, seq: u64) -> Result<Option<AlertAck>, StoreError> {
        Ok(self
            .query_row(
                "SELECT acked_by, acked_at, reason FROM alert_acks WHERE seq = ?1",
                params![seq],
                |r| {
                    Ok(AlertAck {
                        by: r.get(0)?,
                        at: r.get(1)?,
                        reason: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    fn alert_acks(&mut self) -> Result<Vec<(u64, AlertAck)>, StoreError> {
        let mut stmt = self.prepare_cached(
            "SELECT seq, acked_by, acked_at, reason FROM alert_acks ORDER BY seq",
        )?;
        Ok(stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    AlertAck {
                        by: r.get(1)?,
                        at: r.get(2)?,
                        reason: r.get(3)?,
                    },
                ))
            })?
            .collect::<Result<_, _>>()?)
    }

    fn insert_alert_ack(&mut self, seq: u64, ack: &AlertAck) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO alert_acks (seq, acked_by, acked_at, reason) VALUES (?1, ?2, ?3, ?4)",
            params![seq, ack.by, ack.at, ack.reason],
        )?;
        Ok(())
    }

    fn set_break_glass(&mut self, code: &CodeIssue, issued_at: u64) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO break_glass (slot, code_hash, issued_at, expires_at, origin, used_at, used_by, used_request)
             VALUES ('current', ?1, ?2, ?3, ?4, NULL, NULL, NULL)",
            params![code.hash.to_vec(), issued_at, code.expires_at, code.origin],
        )?;
        Ok(())
    }

    fn spend_break_glass(&mut self, user: &str, request: &str, now: u64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE break_glass SET used_at = ?1, used_by = ?2, used_request = ?3 WHERE slot = 'current'",
            params![now, user, request],
        )?;
        Ok(())
    }

    fn grant_take_out(
        &mut self,
        how: TakeOut,
        file: &str,
        user: &str,
        device: &str,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO take_outs (file_id, user_name, device_id, action, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![file, user, device, how.kind(), expires_at],
        )?;
        Ok(())
    }

    fn take_out(
        &mut self,
        how: TakeOut,
        file: &str,
        user: &str,
        device: &str,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self
            .query_row(
                "SELECT expires_at FROM take_outs WHERE file_id = ?1 AND user_name = ?2 AND device_id = ?3 AND action = ?4",
                params![file, user, device, how.kind()],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn take_take_out(
        &mut self,
        how: TakeOut,
        file: &str,
        user: &str,
        device: &str,
        now: u64,
    ) -> Result<bool, StoreError> {
        let spent = self.execute(
            "DELETE FROM take_outs WHERE file_id = ?1 AND user_name = ?2 AND device_id = ?3 AND action = ?4 AND expires_at > ?5",
            params![file, user, device, how.kind(), now],
        )?;
        self.execute("DELETE FROM take_outs WHERE expires_at <= ?1", [now])?;
        Ok(spent > 0)
    }

    fn insert_notice(&mut self, recipient_device: &str, notice: &Notice) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO notices (recipient_device, kind, at, device_id, device_name, code_origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                recipient_device,
                notice_kind(notice.kind),
                notice.at,
                notice.device_id,
                notice.device_name,
                notice.code_origin
            ],
        )?;
        Ok(())
    }

    fn take_notices(&mut self, device: &str) -> Result<Vec<Notice>, StoreError> {
        let rows: Vec<(String, u64, String, String, String)> = self
            .prepare_cached(
                "SELECT kind, at, device_id, device_name, code_origin FROM notices WHERE recipient_device = ?1 ORDER BY at, device_id",
            )?
            .query_map([device], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        self.execute("DELETE FROM notices WHERE recipient_device = ?1", [device])?;
        rows.into_iter()
            .map(|(kind, at, device_id, device_name, code_origin)| {
                notice(&kind, at, device_id, device_name, code_origin)
            })
            .collect()
    }

    fn insert_audit(&mut self, record: &AuditRecord) -> Result<(), StoreError> {
        self.prepare_cached(
            "INSERT INTO audit (seq, at_ms, actor_user, actor_device, action, file_id, result, reason, client_addr, detail, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            record.seq,
            record.at_ms,
            record.actor_user,
            record.actor_device,
            record.action,
            record.file_id,
            record.result,
            record.reason,
            record.client_addr,
            record.detail,
            record.prev_hash,
            record.hash
        ])?;
        Ok(())
    }

    fn last_audit(&mut self) -> Result<Option<(u64, String)>, StoreError> {
        Ok(self
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn audit_page(&mut self, after: u64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let mut stmt = self.prepare_cached(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        Ok(stmt
            .query_map(params![after, limit], audit_row)?
            .collect::<Result<Vec<_>, _>>()?)
    }

    fn audit_query(
        &mut self,
        query: &irm_core::protocol::AuditQuery,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        // One statement per direction; a filter left NULL matches all. An
        // action matches itself and every action under it (`admin` matches
        // `admin.user.create`).
        let sql = if query.newest {
            concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit WHERE seq > ?1 AND (?2 IS NULL OR actor_user = ?2) AND (?3 IS NULL OR file_id = ?3)
                 AND (?4 IS NULL OR action = ?4 OR substr(action, 1, length(?4) + 1) = ?4 || '.')
                 AND (?5 IS NULL OR at_ms >= ?5) ORDER BY seq DESC LIMIT ?6"
            )
        } else {
            concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit WHERE seq > ?1 AND (?2 IS NULL OR actor_user = ?2) AND (?3 IS NULL OR file_id = ?3)
                 AND (?4 IS NULL OR action = ?4 OR substr(action, 1, length(?4) + 1) = ?4 || '.')
                 AND (?5 IS NULL OR at_ms >= ?5) ORDER BY seq LIMIT ?6"
            )
        };
        let mut stmt = self.prepare_cached(sql)?;
        let mut records = stmt
            .query_map(
                params![
                    query.after,
                    query.user,
                    query.file,
                    query.action,
                    query.since_ms,
                    query.limit
                ],
                audit_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        if query.newest {
            records.reverse();
        }
        Ok(records)
    }
}
