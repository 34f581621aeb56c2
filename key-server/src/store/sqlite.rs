//! The SQLite store: WAL mode, `synchronous=FULL`, and one writer thread that
//! owns the only write connection. Every change arrives as a job; the writer
//! drains whatever jobs are waiting, runs each inside its own savepoint of
//! one transaction, commits once (one fsync for the whole batch: group
//! commit), and only then answers each waiter. The audit chain's head lives
//! in that thread, so records are chained in exactly the order they commit.
//! Reads use a small pool of separate connections. A third thread copies
//! the WAL back into the database (checkpoints), so that the writer only
//! finishes what it left: SQLite's own checkpoint every thousand pages took
//! 5–11 ms inside a commit, every tenth of a second under load, and every
//! grant queued behind it (`start_checkpointer`, `checkpoint_in_writer`).

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use irm_core::protocol::{AuditRecord, DenyReason, FileInfo};
use irm_core::{KasPublicKey, KeyId, Policy, Rights};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use subtle::ConstantTimeEq;

use super::{
    Actor, AdminOp, AdminOutput, DeviceRecord, EnrollInput, EventInput, FileChange, GrantDone,
    GrantInput, GrantOutcome, KeyRecord, NewUser, RegisterInput, Store, StoreResult, UserRecord,
    parse_roles, roles_text,
};
use crate::audit::{AuditDraft, GENESIS_HASH, Outcome};
use crate::decision::{FileControls, KeyState, StoredState, decide};
use crate::error::{Refusal, StoreError};
use crate::metrics::Metrics;

/// Wrong enrollment attempts that burn a code (PROTOCOL.md §3.1).
pub const MAX_CODE_FAILURES: i64 = 5;
/// Wrong codes sent without a user name that the server accepts per window,
/// across all users (PROTOCOL.md §3.2); then user-less enrollment pauses.
pub const MAX_USERLESS_FAILURES: u64 = 20;
/// The length of that window.
pub const USERLESS_WINDOW_SECS: u64 = 3600;
/// The `meta` row that counts them: `"<window start> <count>"`.
const USERLESS_FAILURES_KEY: &str = "userless_code_failures";
/// Jobs per group commit at most, so one commit never grows without bound.
const MAX_BATCH: usize = 512;
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

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    roles TEXT NOT NULL,
    active INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    code_hash BLOB,
    code_expires_at INTEGER,
    code_failures INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS group_members (
    group_name TEXT NOT NULL REFERENCES groups(name),
    user_name TEXT NOT NULL REFERENCES users(name),
    PRIMARY KEY (group_name, user_name)
);
CREATE INDEX IF NOT EXISTS group_members_by_user ON group_members(user_name);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    name TEXT NOT NULL,
    public_key BLOB NOT NULL,
    signing_key BLOB NOT NULL,
    active INTEGER NOT NULL,
    enrolled_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kas_keys (
    key_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    owner TEXT,
    file_name TEXT,
    policy_json TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    admin_expires_at INTEGER,
    restricted_rights INTEGER NOT NULL DEFAULT 0,
    first_seen_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
    id TEXT PRIMARY KEY,
    file_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    device_id TEXT NOT NULL,
    rights INTEGER NOT NULL,
    renew INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    lease_expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    actor_user TEXT,
    actor_device TEXT,
    action TEXT NOT NULL,
    file_id TEXT,
    result TEXT NOT NULL,
    reason TEXT,
    client_addr TEXT,
    detail TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
-- Defence in depth: the server never changes a record. Someone with the file
-- can drop these; the hash chain and signed checkpoints catch what they do next.
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#;

/// The audit chain's committed or pending head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChainHead {
    seq: u64,
    hash: [u8; 32],
}

/// Called once the batch a job ran in has committed (or failed to).
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// Where a queued write's result goes once it is durable.
type Done<T> = Box<dyn FnOnce(Result<T, StoreError>) + Send>;
/// A unit of work for the writer thread.
type Job = Box<dyn FnOnce(&Connection, &mut ChainHead) -> Completion + Send>;

/// SQLite behind [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    jobs: Mutex<Option<std_mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Dropping the sender stops the checkpointer.
    checkpointer: Mutex<Option<(std_mpsc::Sender<()>, JoinHandle<()>)>>,
    readers: Mutex<Vec<Connection>>,
    committed: Arc<Mutex<ChainHead>>,
    /// `Store::state_generation`.
    generation: std::sync::atomic::AtomicU64,
}

/// Runs a parameterless statement through the connection's statement cache.
fn run_cached(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and starts the writer.
    pub fn open(path: &Path, metrics: Arc<Metrics>) -> Result<Self, StoreError> {
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
        conn.execute_batch(SCHEMA)?;
        let checkpointer = start_checkpointer(path)?;
        let head = load_head(&conn)?;
        metrics.audit_len(head.seq);
        let committed = Arc::new(Mutex::new(head));
        let (tx, rx) = std_mpsc::channel::<Job>();
        let writer_committed = Arc::clone(&committed);
        let writer = std::thread::Builder::new()
            .name("irm-audit-writer".into())
            .spawn({
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                move || {
                    writer_loop(
                        conn,
                        rx,
                        head,
                        writer_committed,
                        metrics,
                        PathBuf::from(wal),
                    )
                }
            })?;
        Ok(Self {
            path: path.to_owned(),
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            checkpointer: Mutex::new(Some(checkpointer)),
            generation: std::sync::atomic::AtomicU64::new(0),
            readers: Mutex::new(Vec::new()),
            committed,
        })
    }

    /// Stops the writer after the jobs already queued, and waits for it.
    pub fn close(&self) {
        let checkpointer = self.checkpointer.lock().ok().and_then(|mut c| c.take());
        if let Some((stop, handle)) = checkpointer {
            drop(stop);
            let _ = handle.join();
        }
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// Runs `op` on a read connection.
    fn read<T>(
        &self,
        op: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().ok().and_then(|mut pool| pool.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open(&self.path)?;
                configure(&conn)?;
                conn
            }
        };
        let result = op(&conn);
        if let Ok(mut pool) = self.readers.lock() {
            if pool.len() < 16 {
                pool.push(conn);
            }
        }
        result
    }

    /// Runs `op` in the writer's next group commit and waits until it is durable.
    /// If `op` fails, its savepoint is rolled back and the batch goes on.
    fn write<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply_tx, reply_rx) = std_mpsc::sync_channel::<Result<T, StoreError>>(1);
        self.submit(
            op,
            Box::new(move |result| {
                let _ = reply_tx.send(result);
            }),
        );
        reply_rx.recv().map_err(|_| StoreError::WriterGone)?
    }

    /// Queues `op` for the writer's next group commit without waiting:
    /// `done` gets its result once the commit is durable (or the failure).
    /// If `op` fails, its savepoint is rolled back and the batch goes on.
    fn submit<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
        done: Done<T>,
    ) {
        // The writer calls exactly one of these: the completion after the
        // commit, or (if the job never runs) nothing, so `done` is dropped
        // and the waiter sees its channel close.
        let job: Job = Box::new(move |conn, head| {
            let saved = *head;
            // Cached statements: the group commit's per-job overhead is on
            // every grant's path.
            if let Err(e) = run_cached(conn, "SAVEPOINT job") {
                return Box::new(move |_| done(Err(e.into())));
            }
            // A panicking job must not take the writer (and every later
            // request) down with it: its savepoint is rolled back instead.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                op(&mut WriteCtx { conn, head })
            }))
            .unwrap_or(Err(StoreError::TaskFailed));
            let result = match result {
                Ok(value) => run_cached(conn, "RELEASE job")
                    .map(|()| value)
                    .map_err(StoreError::from),
                Err(e) => Err(e),
            };
            match result {
                Ok(value) => Box::new(move |commit: Result<(), StoreError>| {
                    done(commit.map(|()| value));
                }),
                Err(e) => {
                    *head = saved;
                    let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
                    Box::new(move |_| done(Err(e)))
                }
            }
        });
        let sender = self.jobs.lock().ok().and_then(|jobs| jobs.clone());
        match sender {
            Some(sender) => {
                // A failed send hands the job back; dropping it drops `done`.
                let _ = sender.send(job);
            }
            None => drop(job),
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
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

fn load_head(conn: &Connection) -> Result<ChainHead, StoreError> {
    let row: Option<(u64, String)> = conn
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        None => Ok(ChainHead {
            seq: 0,
            hash: GENESIS_HASH,
        }),
        Some((seq, hash)) => {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(&hash, &mut bytes)
                .map_err(|_| StoreError::Corrupt("an audit hash is not 64 hex digits".into()))?;
            Ok(ChainHead { seq, hash: bytes })
        }
    }
}

fn writer_loop(
    mut conn: Connection,
    jobs: std_mpsc::Receiver<Job>,
    mut head: ChainHead,
    committed: Arc<Mutex<ChainHead>>,
    metrics: Arc<Metrics>,
    wal: PathBuf,
) {
    let mut commits = 0u64;
    while let Ok(first) = jobs.recv() {
        commits += 1;
        if commits % WRITER_CHECKPOINT_EVERY == 0 {
            checkpoint_in_writer(&conn);
        }
        if commits % WAL_CHECK_EVERY == 0 {
            checkpoint_if_huge(&conn, &wal);
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(error = %e, "cannot begin a write transaction");
                for job in batch {
                    // Jobs are not run; their waiters learn the store failed.
                    drop(job);
                }
                continue;
            }
        };
        let before = head;
        let completions: Vec<Completion> =
            batch.into_iter().map(|job| job(&tx, &mut head)).collect();
        let started = Instant::now();
        let result = tx.commit();
        metrics.fsync.observe(started.elapsed());
        metrics.batch(completions.len() as u64);
        match result {
            Ok(()) => {
                if let Ok(mut c) = committed.lock() {
                    *c = head;
                }
                metrics.audit_len(head.seq);
                for done in completions {
                    done(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed");
                head = before;
                for done in completions {
                    done(Err(StoreError::Corrupt("the group commit failed".into())));
                }
            }
        }
    }
}

/// What a job sees: the transaction and the chain head.
struct WriteCtx<'a> {
    conn: &'a Connection,
    head: &'a mut ChainHead,
}

impl WriteCtx<'_> {
    /// Appends `draft` to the chain (PROTOCOL.md §9).
    fn audit(&mut self, draft: AuditDraft) -> Result<(), StoreError> {
        let seq = self.head.seq + 1;
        let record = draft.into_record(seq, &self.head.hash);
        self.conn.prepare_cached(
            "INSERT INTO audit (seq, at_ms, actor_user, actor_device, action, file_id, result, reason, client_addr, detail, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?.execute(
            params![
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
            ],
        )?;
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&record.hash, &mut hash)
            .map_err(|_| StoreError::Corrupt("hex encoding failed".into()))?;
        *self.head = ChainHead { seq, hash };
        Ok(())
    }
}

// ---------- reads shared by the writer and the read pool ----------

fn groups_of(conn: &Connection, user: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT group_name FROM group_members WHERE user_name = ?1 ORDER BY group_name",
    )?;
    let rows = stmt.query_map([user], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn load_user(conn: &Connection, name: &str) -> Result<Option<UserRecord>, StoreError> {
    let row: Option<(String, String, String, bool)> = conn
        .prepare_cached("SELECT name, display_name, roles, active FROM users WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((name, display_name, roles, active)) = row else {
        return Ok(None);
    };
    Ok(Some(UserRecord {
        groups: groups_of(conn, &name)?,
        roles: parse_roles(&roles)?,
        name,
        display_name,
        active,
    }))
}

fn key32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

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

const DEVICE_COLUMNS: &str = "id, user_name, name, public_key, signing_key, active, enrolled_at";

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

fn load_device(conn: &Connection, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"
        ))?
        .query_row([id], device_row)
        .optional()?;
    row.map(device_from_row).transpose()
}

fn load_keys(conn: &Connection) -> Result<Vec<KeyRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
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
        let key_id: KeyId = id
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("key id {id:?}")))?;
        let public_key = KasPublicKey::from_text(&public)
            .map_err(|_| StoreError::Corrupt(format!("public key of {id}")))?;
        let state = KeyState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("key state {state:?}")))?;
        keys.push(KeyRecord {
            key_id,
            public_key,
            state,
            created_at,
        });
    }
    Ok(keys)
}

struct FileRow {
    id: String,
    owner: Option<String>,
    file_name: Option<String>,
    policy_json: String,
    revoked: bool,
    admin_expires_at: Option<u64>,
    restricted: u32,
    first_seen_at: u64,
}

/// The `policy_json` and `key_id` of a file an administrator named by id
/// before the server saw its header (PROTOCOL.md §7): the row carries the
/// controls only, until the first grant request or registration fills it in.
const UNSEEN_POLICY: &str = "null";
const UNSEEN_KEY: &str = "";

impl FileRow {
    /// Whether the server has seen the file's header (and so knows its policy).
    fn seen(&self) -> bool {
        self.policy_json != UNSEEN_POLICY
    }

    fn controls(&self) -> FileControls {
        FileControls {
            revoked: self.revoked,
            admin_expires_at: self.admin_expires_at,
            restricted: Rights::from_bits_retain(self.restricted),
        }
    }

    fn info(&self, now: u64) -> FileInfo {
        let state = if self.revoked {
            "revoked"
        } else if self.admin_expires_at.is_some_and(|at| now >= at) {
            "expired"
        } else {
            "active"
        };
        FileInfo {
            file_id: self.id.clone(),
            owner: self.owner.clone(),
            file_name: self.file_name.clone(),
            // Stored by this server from a parsed header; a row that no
            // longer parses, or a file not seen yet, shows no policy rather
            // than failing the listing.
            policy: if self.seen() {
                serde_json::from_str::<Policy>(&self.policy_json).ok()
            } else {
                None
            },
            state: state.to_owned(),
            restricted_rights: Rights::from_bits_retain(self.restricted),
            first_seen_at: self.first_seen_at,
        }
    }
}

const FILE_COLUMNS: &str = "id, owner, file_name, policy_json, revoked, admin_expires_at, restricted_rights, first_seen_at";

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

fn load_file(conn: &Connection, id: &str) -> Result<Option<FileRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {FILE_COLUMNS} FROM files WHERE id = ?1"))?
        .query_row([id], file_row)
        .optional()?)
}

fn insert_file(
    conn: &Connection,
    id: &str,
    key_id: &KeyId,
    owner: Option<&str>,
    file_name: Option<&str>,
    policy: &Policy,
    now: u64,
) -> Result<(), StoreError> {
    let policy_json = serde_json::to_string(policy)
        .map_err(|e| StoreError::Corrupt(format!("policy does not serialise: {e}")))?;
    conn.execute(
        "INSERT INTO files (id, key_id, owner, file_name, policy_json, first_seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, key_id.to_string(), owner, file_name, policy_json, now],
    )?;
    Ok(())
}

/// A control row for a file the server has not seen (PROTOCOL.md §7): an
/// administrator revoked, expired, restricted or restored it by id, for
/// example a file sealed offline that nobody has asked for yet.
fn insert_unseen_file(conn: &Connection, id: &str, now: u64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO files (id, key_id, owner, file_name, policy_json, first_seen_at) VALUES (?1, ?2, NULL, NULL, ?3, ?4)",
        params![id, UNSEEN_KEY, UNSEEN_POLICY, now],
    )?;
    Ok(())
}

/// Fills in the key and policy of a control row once the header is known
/// to be authentic; the administrator's controls stay as they were.
fn fill_unseen_file(
    conn: &Connection,
    id: &str,
    key_id: &KeyId,
    policy: &Policy,
) -> Result<(), StoreError> {
    let policy_json = serde_json::to_string(policy)
        .map_err(|e| StoreError::Corrupt(format!("policy does not serialise: {e}")))?;
    conn.execute(
        "UPDATE files SET key_id = ?2, policy_json = ?3 WHERE id = ?1 AND policy_json = ?4",
        params![id, key_id.to_string(), policy_json, UNSEEN_POLICY],
    )?;
    Ok(())
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

const AUDIT_COLUMNS: &str = "seq, at_ms, actor_user, actor_device, action, file_id, result, reason, client_addr, detail, prev_hash, hash";

fn insert_user(conn: &Connection, user: &NewUser, now: u64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO users (name, display_name, roles, active, created_at, code_hash, code_expires_at, code_failures)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, 0)",
        params![
            user.name,
            user.display_name,
            roles_text(&user.roles),
            now,
            user.code.hash.to_vec(),
            user.code.expires_at
        ],
    )?;
    Ok(())
}

fn exists(conn: &Connection, sql: &str, key: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([key], |_| Ok(()))
        .optional()?
        .is_some())
}

// ---------- the operations ----------

/// The current window of user-less wrong codes: its start and count.
fn userless_failures(conn: &Connection, now: u64) -> Result<(u64, u64), StoreError> {
    let value: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [USERLESS_FAILURES_KEY],
            |r| r.get(0),
        )
        .optional()?;
    // An unreadable row counts as none: it only ever holds our own numbers.
    let (start, count) = value
        .as_deref()
        .and_then(|v| v.split_once(' '))
        .and_then(|(s, c)| Some((s.parse::<u64>().ok()?, c.parse::<u64>().ok()?)))
        .unwrap_or((0, 0));
    Ok(if now.saturating_sub(start) < USERLESS_WINDOW_SECS {
        (start, count)
    } else {
        (now, 0)
    })
}

/// Counts one more user-less wrong code; returns the new count.
fn count_userless_failure(conn: &Connection, now: u64) -> Result<u64, StoreError> {
    let (start, before) = userless_failures(conn, now)?;
    let count = before + 1;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![USERLESS_FAILURES_KEY, format!("{start} {count}")],
    )?;
    Ok(count)
}

/// PROTOCOL.md §3.2, enrollment without a user name: the server finds the
/// user whose live code this is. Returns the user, or the refusal (already
/// audited).
///
/// A wrong code names no user whose counter could burn it, so such guesses
/// are counted across the server instead: after [`MAX_USERLESS_FAILURES`]
/// in a window, every user-less attempt is refused, unchecked, until the
/// window ends. That bounds the guesses against all live codes together
/// (each 100 bits) the way the per-user count bounds those against one; a
/// person who has a code can still enroll by naming their user.
fn find_user_by_code(
    ctx: &mut WriteCtx<'_>,
    input: &EnrollInput,
    draft: &AuditDraft,
    now: u64,
) -> Result<Result<String, Refusal>, StoreError> {
    let refuse = |ctx: &mut WriteCtx<'_>, detail: String| -> Result<Refusal, StoreError> {
        ctx.audit(
            draft
                .clone()
                .detail(detail)
                .deny(DenyReason::EnrollmentCodeInvalid),
        )?;
        Ok(Refusal::Deny(DenyReason::EnrollmentCodeInvalid))
    };
    if userless_failures(ctx.conn, now)?.1 >= MAX_USERLESS_FAILURES {
        return Ok(Err(refuse(
            ctx,
            format!(
                "no user named; enrollment without a user name is paused after {MAX_USERLESS_FAILURES} wrong codes this hour"
            ),
        )?));
    }
    // The hash of a 100-bit code: its lookup by value leaks nothing a
    // guesser can use. Any row found is compared again in constant time
    // below, with the expiry, exactly as for a named user.
    let found: Option<String> = ctx
        .conn
        .prepare_cached("SELECT name FROM users WHERE code_hash = ?1")?
        .query_row([input.code_hash.to_vec()], |r| r.get(0))
        .optional()?;
    match found {
        Some(name) => Ok(Ok(name)),
        None => {
            let count = count_userless_failure(ctx.conn, now)?;
            Ok(Err(refuse(
                ctx,
                format!(
                    "no user named; the code is no user's ({count} of {MAX_USERLESS_FAILURES} such wrong codes this hour)"
                ),
            )?))
        }
    }
}

fn enroll_tx(
    ctx: &mut WriteCtx<'_>,
    mut input: EnrollInput,
    now_ms: u64,
) -> StoreResult<UserRecord> {
    let now = now_ms / 1000;
    let mut draft = AuditDraft::new(now_ms, "enroll", Outcome::Ok);
    draft.client_addr = input.client_addr.clone();
    let by_code = input.user.is_empty();
    if by_code {
        match find_user_by_code(ctx, &input, &draft, now)? {
            Ok(name) => {
                input.device.user.clone_from(&name);
                input.user = name;
            }
            Err(refusal) => return Ok(Err(refusal)),
        }
    }
    draft.actor_user = Some(input.user.clone());
    let row: Option<(Option<Vec<u8>>, Option<u64>, i64)> = ctx
        .conn
        .query_row(
            "SELECT code_hash, code_expires_at, code_failures FROM users WHERE name = ?1",
            [&input.user],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    // PROTOCOL.md §3.1: compare in constant time; an unknown user, a wrong,
    // expired, used or burned code all give the same answer.
    let code_ok = match &row {
        Some((Some(hash), Some(expires_at), _)) => {
            bool::from(hash.as_slice().ct_eq(&input.code_hash)) && now < *expires_at
        }
        _ => false,
    };
    if !code_ok {
        if let Some((Some(_), _, failures)) = &row {
            // A live code for this user: count the wrong try; the fifth burns it.
            let failures = failures + 1;
            if failures >= MAX_CODE_FAILURES {
                ctx.conn.execute(
                    "UPDATE users SET code_hash = NULL, code_expires_at = NULL, code_failures = ?2 WHERE name = ?1",
                    params![input.user, failures],
                )?;
                draft = draft.detail("code burned after 5 wrong tries");
            } else {
                ctx.conn.execute(
                    "UPDATE users SET code_failures = ?2 WHERE name = ?1",
                    params![input.user, failures],
                )?;
            }
        }
        ctx.audit(draft.deny(DenyReason::EnrollmentCodeInvalid))?;
        return Ok(Err(Refusal::Deny(DenyReason::EnrollmentCodeInvalid)));
    }
    if !input.proof_ok {
        let mut d = draft.detail("the proof of possession does not verify");
        d.result = Outcome::Failed;
        d.reason = Some("bad_request".into());
        ctx.audit(d)?;
        return Ok(Err(Refusal::BadRequest(
            "the proof does not verify with the signing public key".into(),
        )));
    }
    let Some(user) = load_user(ctx.conn, &input.user)? else {
        return Err(StoreError::Corrupt("a user row vanished".into()));
    };
    if !user.active {
        ctx.audit(draft.deny(DenyReason::UserSuspended))?;
        return Ok(Err(Refusal::Deny(DenyReason::UserSuspended)));
    }
    let d = &input.device;
    ctx.conn.execute(
        &format!("INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)"),
        params![
            d.id,
            d.user,
            d.name,
            d.public_key.to_vec(),
            d.signing_key.to_vec(),
            now
        ],
    )?;
    ctx.conn.execute(
        "UPDATE users SET code_hash = NULL, code_expires_at = NULL, code_failures = 0 WHERE name = ?1",
        [&input.user],
    )?;
    draft.actor_device = Some(d.id.clone());
    let found = if by_code { " user_found_by_code" } else { "" };
    ctx.audit(draft.detail(format!("device={} name={}{found}", d.id, d.name)))?;
    Ok(Ok(user))
}

fn grant_tx(
    ctx: &mut WriteCtx<'_>,
    input: GrantInput,
    now_ms: u64,
) -> Result<GrantOutcome, StoreError> {
    let now = now_ms / 1000;
    let user = load_user(ctx.conn, &input.actor.user)?;
    let device = load_device(ctx.conn, &input.actor.device)?;
    let keys = load_keys(ctx.conn)?;
    let file_hex = input.facts.file_id.to_string();
    let file = load_file(ctx.conn, &file_hex)?;
    let state = StoredState {
        user_active: user.as_ref().is_some_and(|u| u.active),
        groups: user.map(|u| u.groups).unwrap_or_default(),
        device_active: device
            .as_ref()
            .is_some_and(|d| d.active && d.user == input.actor.user),
        keys: keys.iter().map(|k| (k.key_id, k.state)).collect(),
        file: file.as_ref().map(FileRow::controls),
        lease_limit_secs: input.lease_limit_secs,
    };
    let decision = decide(&input.facts, &state, now);

    // PROTOCOL.md §4.1: a file sealed offline is registered the first time
    // anyone asks for it, once its header is known to be authentic. An
    // administrator may have named it before (§7): its controls stay.
    if file.as_ref().is_none_or(|f| !f.seen()) {
        let authentic = input
            .facts
            .bindings
            .iter()
            .find(|(id, ok)| *ok && keys.iter().any(|k| k.key_id == *id));
        if let Some((key_id, _)) = authentic {
            let detail = if file.is_none() {
                insert_file(
                    ctx.conn,
                    &file_hex,
                    key_id,
                    None,
                    None,
                    &input.facts.policy,
                    now,
                )?;
                "first seen through a grant request"
            } else {
                fill_unseen_file(ctx.conn, &file_hex, key_id, &input.facts.policy)?;
                "first seen through a grant request; controlled by an administrator before"
            };
            ctx.audit(
                input
                    .actor
                    .draft(now_ms, "file.register", Outcome::Ok)
                    .file(file_hex.clone())
                    .detail(detail),
            )?;
        }
    }

    let action = if input.renew { "renew" } else { "grant" };
    match decision {
        Ok(decision) => {
            ctx.conn.prepare_cached(
                "INSERT INTO grants (id, file_id, user_name, device_id, rights, renew, issued_at, lease_expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?.execute(
                params![
                    input.grant_id,
                    file_hex,
                    input.actor.user,
                    input.actor.device,
                    decision.rights.bits(),
                    input.renew,
                    now,
                    decision.lease_expires_at
                ],
            )?;
            ctx.audit(
                input
                    .actor
                    .draft(now_ms, action, Outcome::Ok)
                    .file(file_hex)
                    .detail(format!(
                        "grant={} rights={} lease_expires_at={}",
                        input.grant_id, decision.rights, decision.lease_expires_at
                    )),
            )?;
            Ok(GrantOutcome::Granted(decision))
        }
        Err(reason) => {
            ctx.audit(
                input
                    .actor
                    .draft(now_ms, action, Outcome::Denied)
                    .file(file_hex)
                    .deny(reason),
            )?;
            Ok(GrantOutcome::Denied(reason))
        }
    }
}

fn event_tx(ctx: &mut WriteCtx<'_>, input: EventInput, now_ms: u64) -> StoreResult<()> {
    let action = format!(
        "event.{}",
        serde_json::to_value(input.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into())
    );
    let mut draft = input.actor.draft(now_ms, action, Outcome::Ok);
    draft.detail = Some(match &input.detail {
        Some(d) => format!("grant={} {d}", input.grant_id),
        None => format!("grant={}", input.grant_id),
    });
    let grant: Option<(String, String, u32)> = ctx
        .conn
        .query_row(
            "SELECT file_id, device_id, rights FROM grants WHERE id = ?1",
            [&input.grant_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    // PROTOCOL.md §5: the grant must belong to the signing device.
    let Some((file_id, _, rights)) = grant.filter(|(_, device, _)| *device == input.actor.device)
    else {
        draft.result = Outcome::Failed;
        draft.reason = Some("not_found".into());
        ctx.audit(draft)?;
        return Ok(Err(Refusal::NotFound("grant".into())));
    };
    let restricted = load_file(ctx.conn, &file_id)?
        .map(|f| f.controls().restricted)
        .unwrap_or_else(Rights::empty);
    let effective = Rights::from_bits_retain(rights).difference(restricted);
    let draft = draft.file(file_id);
    if let Some(needed) = input.action.required_right() {
        if !effective.contains(needed) {
            ctx.audit(draft.deny(DenyReason::RightNotGranted))?;
            return Ok(Err(Refusal::Deny(DenyReason::RightNotGranted)));
        }
    }
    ctx.audit(draft)?;
    Ok(Ok(()))
}

fn register_tx(ctx: &mut WriteCtx<'_>, input: RegisterInput, now_ms: u64) -> StoreResult<FileInfo> {
    let now = now_ms / 1000;
    let id = input.file_id.to_string();
    let draft = input
        .actor
        .draft(now_ms, "file.register", Outcome::Ok)
        .file(id.clone());
    let existing = load_file(ctx.conn, &id)?;
    match existing {
        None => insert_file(
            ctx.conn,
            &id,
            &input.key_id,
            Some(&input.actor.user),
            input.file_name.as_deref(),
            &input.policy,
            now,
        )?,
        // Seen before through a grant request, or named by an administrator
        // before anyone saw it: the first to register owns it.
        Some(row) if row.owner.is_none() => {
            ctx.conn.execute(
                "UPDATE files SET owner = ?2, file_name = COALESCE(?3, file_name) WHERE id = ?1",
                params![id, input.actor.user, input.file_name],
            )?;
            if !row.seen() {
                fill_unseen_file(ctx.conn, &id, &input.key_id, &input.policy)?;
            }
        }
        Some(row) if row.owner.as_deref() == Some(input.actor.user.as_str()) => {}
        Some(_) => {
            let mut d = draft;
            d.result = Outcome::Failed;
            d.reason = Some("conflict".into());
            ctx.audit(d)?;
            return Ok(Err(Refusal::Conflict(
                "the file is already registered by someone else".into(),
            )));
        }
    }
    ctx.audit(draft)?;
    let row =
        load_file(ctx.conn, &id)?.ok_or_else(|| StoreError::Corrupt("file row vanished".into()))?;
    Ok(Ok(row.info(now)))
}

fn list_users(conn: &Connection) -> Result<Vec<UserRecord>, StoreError> {
    let names: Vec<String> = conn
        .prepare_cached("SELECT name FROM users ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut users = Vec::with_capacity(names.len());
    for name in names {
        if let Some(user) = load_user(conn, &name)? {
            users.push(user);
        }
    }
    Ok(users)
}

fn user_or_404(conn: &Connection, name: &str) -> Result<Result<UserRecord, Refusal>, StoreError> {
    Ok(load_user(conn, name)?.ok_or_else(|| Refusal::NotFound(format!("user {name}"))))
}

fn file_or_404(conn: &Connection, id: &str) -> Result<Result<FileRow, Refusal>, StoreError> {
    Ok(load_file(conn, id)?.ok_or_else(|| Refusal::NotFound(format!("file {id}"))))
}

/// The effect of one admin operation, without its audit record.
fn admin_effect(conn: &Connection, op: &AdminOp, now_ms: u64) -> StoreResult<AdminOutput> {
    let now = now_ms / 1000;
    macro_rules! found {
        ($e:expr) => {
            match $e? {
                Ok(v) => v,
                Err(refusal) => return Ok(Err(refusal)),
            }
        };
    }
    Ok(Ok(match op {
        AdminOp::CreateUser(user) => {
            if exists(conn, "SELECT 1 FROM users WHERE name = ?1", &user.name)? {
                return Ok(Err(Refusal::Conflict(format!("user {} exists", user.name))));
            }
            for group in &user.groups {
                if !exists(conn, "SELECT 1 FROM groups WHERE name = ?1", group)? {
                    return Ok(Err(Refusal::NotFound(format!("group {group}"))));
                }
            }
            insert_user(conn, user, now)?;
            for group in &user.groups {
                conn.execute(
                    "INSERT OR IGNORE INTO group_members (group_name, user_name) VALUES (?1, ?2)",
                    params![group, user.name],
                )?;
            }
            AdminOutput::CodeStored {
                user: user.name.clone(),
                expires_at: user.code.expires_at,
            }
        }
        AdminOp::ListUsers => {
            AdminOutput::Users(list_users(conn)?.iter().map(UserRecord::info).collect())
        }
        AdminOp::SetUserActive { name, active } => {
            found!(user_or_404(conn, name));
            conn.execute(
                "UPDATE users SET active = ?2 WHERE name = ?1",
                params![name, active],
            )?;
            AdminOutput::User(found!(user_or_404(conn, name)).info())
        }
        AdminOp::NewCode { name, code } => {
            found!(user_or_404(conn, name));
            conn.execute(
                "UPDATE users SET code_hash = ?2, code_expires_at = ?3, code_failures = 0 WHERE name = ?1",
                params![name, code.hash.to_vec(), code.expires_at],
            )?;
            AdminOutput::CodeStored {
                user: name.clone(),
                expires_at: code.expires_at,
            }
        }
        AdminOp::CreateGroup { name } => {
            if exists(conn, "SELECT 1 FROM groups WHERE name = ?1", name)? {
                return Ok(Err(Refusal::Conflict(format!("group {name} exists"))));
            }
            conn.execute(
                "INSERT INTO groups (name, created_at) VALUES (?1, ?2)",
                params![name, now],
            )?;
            AdminOutput::Done
        }
        AdminOp::AddMember { group, user } => {
            if !exists(conn, "SELECT 1 FROM groups WHERE name = ?1", group)? {
                return Ok(Err(Refusal::NotFound(format!("group {group}"))));
            }
            found!(user_or_404(conn, user));
            conn.execute(
                "INSERT OR IGNORE INTO group_members (group_name, user_name) VALUES (?1, ?2)",
                params![group, user],
            )?;
            AdminOutput::Done
        }
        AdminOp::RemoveMember { group, user } => {
            let removed = conn.execute(
                "DELETE FROM group_members WHERE group_name = ?1 AND user_name = ?2",
                params![group, user],
            )?;
            if removed == 0 {
                return Ok(Err(Refusal::NotFound(format!(
                    "member {user} of group {group}"
                ))));
            }
            AdminOutput::Done
        }
        AdminOp::ListDevices => {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices ORDER BY user_name, enrolled_at, id"
            ))?;
            let rows = stmt
                .query_map([], device_row)?
                .collect::<Result<Vec<_>, _>>()?;
            AdminOutput::Devices(
                rows.into_iter()
                    .map(|r| device_from_row(r).map(|d| d.info()))
                    .collect::<Result<_, _>>()?,
            )
        }
        AdminOp::RevokeDevice { id } => {
            let changed = conn.execute("UPDATE devices SET active = 0 WHERE id = ?1", [id])?;
            if changed == 0 {
                return Ok(Err(Refusal::NotFound(format!("device {id}"))));
            }
            let device = load_device(conn, id)?
                .ok_or_else(|| StoreError::Corrupt("device row vanished".into()))?;
            AdminOutput::Device(device.info())
        }
        AdminOp::ListFiles => {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {FILE_COLUMNS} FROM files ORDER BY first_seen_at, id"
            ))?;
            let rows = stmt
                .query_map([], file_row)?
                .collect::<Result<Vec<_>, _>>()?;
            AdminOutput::Files(rows.iter().map(|r| r.info(now)).collect())
        }
        AdminOp::File { id, change } => {
            // PROTOCOL.md §7: a file sealed offline is revocable by id before
            // anyone has asked for it, so an unknown id gets a control row
            // that its first grant request will find (and fill in).
            if load_file(conn, id)?.is_none() {
                insert_unseen_file(conn, id, now)?;
            }
            let row = found!(file_or_404(conn, id));
            match change {
                FileChange::Revoke => {
                    conn.execute("UPDATE files SET revoked = 1 WHERE id = ?1", [id])?;
                }
                FileChange::Restore => {
                    conn.execute(
                        "UPDATE files SET revoked = 0, admin_expires_at = NULL, restricted_rights = 0 WHERE id = ?1",
                        [id],
                    )?;
                }
                FileChange::Expire => {
                    conn.execute(
                        "UPDATE files SET admin_expires_at = ?2 WHERE id = ?1",
                        params![id, now],
                    )?;
                }
                FileChange::Restrict(remove) => {
                    let restricted = row.controls().restricted | (*remove & Rights::all());
                    conn.execute(
                        "UPDATE files SET restricted_rights = ?2 WHERE id = ?1",
                        params![id, restricted.bits()],
                    )?;
                }
            }
            AdminOutput::File(found!(file_or_404(conn, id)).info(now))
        }
        AdminOp::ListKeys => AdminOutput::Keys(load_keys(conn)?),
        AdminOp::RotateKey(key) => {
            conn.execute(
                "UPDATE kas_keys SET state = 'active' WHERE state = 'current'",
                [],
            )?;
            conn.execute(
                "INSERT INTO kas_keys (key_id, public_key, state, created_at) VALUES (?1, ?2, 'current', ?3)",
                params![key.key_id.to_string(), key.public_key.to_text(), key.created_at],
            )?;
            AdminOutput::Key(key.clone())
        }
        AdminOp::RetireKey { id } => {
            let state: Option<String> = conn
                .query_row("SELECT state FROM kas_keys WHERE key_id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            match state.as_deref() {
                None => return Ok(Err(Refusal::NotFound(format!("key {id}")))),
                Some("current") => {
                    return Ok(Err(Refusal::Conflict(
                        "the current key cannot be retired; rotate first".into(),
                    )));
                }
                Some(_) => {
                    conn.execute(
                        "UPDATE kas_keys SET state = 'retired' WHERE key_id = ?1",
                        [id],
                    )?;
                }
            }
            AdminOutput::Done
        }
        AdminOp::ReadAudit { after, limit } => {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let rows = stmt
                .query_map(params![after, limit], audit_row)?
                .collect::<Result<Vec<_>, _>>()?;
            AdminOutput::Audit(rows)
        }
        AdminOp::AuditAccess { .. } => AdminOutput::Done,
    }))
}

impl Store for SqliteStore {
    fn is_initialised(&self) -> Result<bool, StoreError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT value FROM meta WHERE key = 'initialised'",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .optional()?
                .is_some())
        })
    }

    fn initialise(&self, admin: NewUser, key: KeyRecord, now_ms: u64) -> Result<(), StoreError> {
        self.write(move |ctx| {
            let now = now_ms / 1000;
            ctx.conn.execute(
                "INSERT INTO kas_keys (key_id, public_key, state, created_at) VALUES (?1, ?2, 'current', ?3)",
                params![key.key_id.to_string(), key.public_key.to_text(), key.created_at],
            )?;
            insert_user(ctx.conn, &admin, now)?;
            ctx.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('initialised', ?1), ('schema', '1')",
                [now.to_string()],
            )?;
            ctx.audit(
                AuditDraft::new(now_ms, "server.init", Outcome::Ok)
                    .detail(format!("key={} bootstrap_admin={}", key.key_id, admin.name)),
            )?;
            Ok(())
        })
    }

    fn device_with_user(
        &self,
        device_id: &str,
    ) -> Result<Option<(DeviceRecord, UserRecord)>, StoreError> {
        self.read(|conn| {
            let Some(device) = load_device(conn, device_id)? else {
                return Ok(None);
            };
            let user = load_user(conn, &device.user)?
                .ok_or_else(|| StoreError::Corrupt(format!("device {device_id} has no user")))?;
            Ok(Some((device, user)))
        })
    }

    fn append_audit(&self, draft: AuditDraft) -> Result<(), StoreError> {
        self.write(move |ctx| ctx.audit(draft))
    }

    fn enroll(&self, input: EnrollInput, now_ms: u64) -> StoreResult<UserRecord> {
        self.write(move |ctx| enroll_tx(ctx, input, now_ms))
    }

    fn grant(&self, input: GrantInput, now_ms: u64, done: GrantDone) {
        self.submit(move |ctx| grant_tx(ctx, input, now_ms), done);
    }

    fn usage_event(&self, input: EventInput, now_ms: u64) -> StoreResult<()> {
        self.write(move |ctx| event_tx(ctx, input, now_ms))
    }

    fn register_file(&self, input: RegisterInput, now_ms: u64) -> StoreResult<FileInfo> {
        self.write(move |ctx| register_tx(ctx, input, now_ms))
    }

    fn admin(&self, actor: &Actor, op: AdminOp, now_ms: u64) -> StoreResult<AdminOutput> {
        let actor = actor.clone();
        let result = self.write(move |ctx| {
            let mut draft = actor.draft(now_ms, op.action(), Outcome::Ok);
            draft.detail = op.detail();
            draft.file_id = op.file_id();
            // Roles are read inside the transaction, so a role removed a
            // moment ago counts.
            let roles = load_user(ctx.conn, &actor.user)?
                .map(|u| u.roles)
                .unwrap_or_default();
            if !op.allowed(&roles) {
                ctx.audit(draft.deny(DenyReason::RoleRequired))?;
                return Ok(Err(Refusal::Deny(DenyReason::RoleRequired)));
            }
            ctx.conn.execute_batch("SAVEPOINT admin_op")?;
            match admin_effect(ctx.conn, &op, now_ms) {
                Ok(Ok(out)) => {
                    ctx.conn.execute_batch("RELEASE admin_op")?;
                    ctx.audit(draft)?;
                    Ok(Ok(out))
                }
                Ok(Err(refusal)) => {
                    ctx.conn
                        .execute_batch("ROLLBACK TO admin_op; RELEASE admin_op")?;
                    draft.result = match refusal {
                        Refusal::Deny(_) => Outcome::Denied,
                        _ => Outcome::Failed,
                    };
                    draft.reason = Some(refusal.audit_reason().to_owned());
                    ctx.audit(draft)?;
                    Ok(Err(refusal))
                }
                Err(e) => Err(e),
            }
        });
        // After the commit (or its failure), whatever the operation was:
        // moving on too often only costs a cache miss.
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        result
    }

    fn state_generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.read(load_keys)
    }

    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let head = *self
            .committed
            .lock()
            .map_err(|_| StoreError::Corrupt("audit head lock poisoned".into()))?;
        Ok((head.seq, head.hash))
    }

    fn for_each_audit(&self, f: &mut dyn FnMut(&AuditRecord)) -> Result<(), StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare(&format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq"))?;
            let rows = stmt.query_map([], audit_row)?;
            for row in rows {
                f(&row?);
            }
            Ok(())
        })
    }
}

/// Reads every audit record of the database at `path` without writing to it
/// (offline verification of a copied database).
pub fn for_each_audit_read_only(
    path: &Path,
    f: &mut dyn FnMut(&AuditRecord),
) -> Result<(), StoreError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut stmt = conn.prepare(&format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq"))?;
    let rows = stmt.query_map([], audit_row)?;
    for row in rows {
        f(&row?);
    }
    Ok(())
}
