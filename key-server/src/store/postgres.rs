//! The PostgreSQL store (chosen by `--database-url`): the schema, [`Tables`] on a
//! connection, the writer's connection upkeep and a few reader threads. The
//! operations and the group commit are the same as SQLite's (`txn.rs`,
//! `group_commit.rs`); what differs lives here.
//!
//! Every client lives on a thread of this module (the writer and the
//! readers) and is made and dropped there, never on the caller's thread: a
//! `postgres::Client` carries a small tokio runtime of its own, which can
//! neither block nor be dropped on an async worker thread. The store is
//! therefore safe to call from anywhere, like the SQLite one.
//!
//! Durability (PROTOCOL.md §4.1): the writer's session has
//! `synchronous_commit` at least `on` (a server default of `off` is raised
//! for this session), so a commit returns once its WAL is flushed. One
//! writer per database: the writer holds a session advisory lock, since two
//! servers appending to one chain would each hold a different head.

use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use irm_core::protocol::{AlertAck, ApprovalInfo, AuditRecord, Notice, RequestState, TakeOut};
use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Row, Statement};

use super::contract::{
    CodeIssue, DatabaseUrl, DeviceRecord, KeyRecord, NewUser, UserRecord, parse_roles, roles_text,
};
use super::group_commit::{Backend, GroupCommitStore, Writer};
use super::schema;
use super::tables::{
    BreakGlassRow, CanaryExportRow, CodeRow, FileRow, GrantDetail, GrantRow, HoldRow, NewFile,
    NewGrant, RequestRow, Tables, UNSEEN_POLICY, key_record, key32, notice, notice_kind,
    request_columns, request_row,
};
use super::txn::{self, SCHEMA_VERSION};
use crate::error::StoreError;
use crate::grant::decision::FileControls;
use crate::metrics::Metrics;
use irm_core::protocol::KeyState;

/// Reader threads, each with its own connection (opened at its first read).
/// Reads are few: device lookups (cached by the caller), keys, audit pages.
const READERS: usize = 4;
/// Audit records per read while walking the chain.
const AUDIT_PAGE: u32 = 1000;
/// How often, and how far apart, the writer asks for its lock before it
/// says another server holds it (2 s in all).
const WRITER_LOCK_TRIES: u32 = 20;
const WRITER_LOCK_WAIT: Duration = Duration::from_millis(100);

/// The advisory lock the writer holds: "irm-ks" in ASCII.
const WRITER_LOCK: i64 = 0x6972_6d2d_6b73;
/// As SQLite's busy timeout: wait this long for a row or table lock, then fail.
const LOCK_TIMEOUT: &str = "10s";
/// For a database that does not answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection unused this long is checked (one round trip) before use, so
/// that one closed while idle (a restarted server, an idle timeout) is
/// replaced before a request fails on it; busy ones are not checked.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(5);

/// PostgreSQL behind [`super::Store`].
pub(super) type PgStore = GroupCommitStore<PgBackend>;

/// Opens the database at `url` (creating the schema if it has none) and
/// starts the writer and the reader threads.
pub(super) fn open(url: &DatabaseUrl, metrics: Arc<Metrics>) -> Result<PgStore, StoreError> {
    let config = Arc::new(client_config(url)?);
    let writer_config = Arc::clone(&config);
    let reconnect_config = Arc::clone(&config);
    let writer = Writer::start(
        "irm-audit-writer",
        metrics,
        move || PgConn::open_writer(&writer_config),
        Box::new(move |conn: &mut PgConn, head, _batches| {
            // A session that ended is replaced before the batch begins (or,
            // if only `BEGIN` found out, before it begins again).
            if !conn.usable() {
                tracing::warn!("the PostgreSQL connection was lost; reconnecting");
                *conn = PgConn::open_writer(&reconnect_config)?;
                // A commit whose answer was lost may have happened after
                // all: the chain goes on from what is stored.
                *head = txn::load_head(conn)?;
            }
            Ok(())
        }),
    )?;
    let backend = PgBackend::start(config)?;
    Ok(GroupCommitStore::new(backend, writer))
}

/// The connection settings from `url`, with the server's defaults where
/// the URL leaves them open.
fn client_config(url: &DatabaseUrl) -> Result<Config, StoreError> {
    let mut config: Config = url.expose().parse()?;
    if config.get_application_name().is_none() {
        config.application_name("irm-key-server");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    // Notices (such as "already exists, skipping") are of no use to an
    // operator; the default would print them through the `log` crate.
    config.notice_callback(|notice| tracing::debug!(notice = %notice.message(), "PostgreSQL"));
    Ok(config)
}

/// Reads every audit record of the database at `url` in one read-only
/// snapshot, without taking the writer's lock (offline verification, of a
/// copy or of the live database).
pub(super) fn for_each_audit_read_only(
    url: &DatabaseUrl,
    f: &mut dyn FnMut(&AuditRecord),
) -> Result<(), StoreError> {
    let config = client_config(url)?;
    let (pages_tx, pages_rx) = std_mpsc::sync_channel::<Result<Vec<AuditRecord>, StoreError>>(2);
    // The client on a thread of its own (see the module comment); the pages
    // come back here, where `f` runs.
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let result = (|| {
                let mut conn = PgConn::connect(&config)?;
                conn.client
                    .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
                let mut after = 0;
                loop {
                    let page = conn.audit_page(after, AUDIT_PAGE)?;
                    let Some(last) = page.last() else {
                        return Ok(());
                    };
                    after = last.seq;
                    if pages_tx.send(Ok(page)).is_err() {
                        return Ok(());
                    }
                }
            })();
            if let Err(e) = result {
                let _ = pages_tx.send(Err(e));
            }
        });
        for page in pages_rx {
            for record in &page? {
                f(record);
            }
        }
        Ok(())
    })
}

/// A job for a reader thread; it gets the thread's connection, if any.
type ReadJob = Box<dyn FnOnce(&mut Option<PgConn>) + Send>;

/// The reader threads.
pub(super) struct PgBackend {
    config: Arc<Config>,
    jobs: Mutex<Option<std_mpsc::Sender<ReadJob>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl PgBackend {
    fn start(config: Arc<Config>) -> Result<Self, StoreError> {
        let (tx, rx) = std_mpsc::channel::<ReadJob>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::with_capacity(READERS);
        for i in 0..READERS {
            let rx = Arc::clone(&rx);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("irm-pg-reader-{i}"))
                    .spawn(move || {
                        let mut conn: Option<PgConn> = None;
                        loop {
                            let job = match rx.lock() {
                                Ok(rx) => rx.recv(),
                                Err(_) => return,
                            };
                            match job {
                                Ok(job) => job(&mut conn),
                                Err(_) => return,
                            }
                        }
                    })?,
            );
        }
        Ok(Self {
            config,
            jobs: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
        })
    }
}

impl Backend for PgBackend {
    type Conn = PgConn;

    fn read<T: Send + 'static>(
        &self,
        op: impl Fn(&mut PgConn) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply_tx, reply_rx) = std_mpsc::sync_channel::<Result<T, StoreError>>(1);
        let config = Arc::clone(&self.config);
        let job: ReadJob = Box::new(move |slot| {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let run = |slot: &mut Option<PgConn>| {
                    if slot.as_mut().is_none_or(|c| !c.usable()) {
                        *slot = Some(PgConn::connect(&config)?);
                    }
                    match slot.as_mut() {
                        Some(conn) => op(conn),
                        None => Err(StoreError::TaskFailed),
                    }
                };
                match run(slot) {
                    // The session had ended while idle (a client only
                    // learns so when it next speaks): once more on a new one.
                    Err(_) if slot.as_ref().is_some_and(|c| c.client.is_closed()) => run(slot),
                    result => result,
                }
            }))
            .unwrap_or(Err(StoreError::TaskFailed));
            let _ = reply_tx.send(result);
        });
        let sender = self.jobs.lock().ok().and_then(|jobs| jobs.clone());
        if let Some(sender) = sender {
            let _ = sender.send(job);
        }
        reply_rx.recv().map_err(|_| StoreError::WriterGone)?
    }

    fn for_each_audit(&self, f: &mut dyn FnMut(&AuditRecord)) -> Result<(), StoreError> {
        // Page by page on the reader threads, `f` here. The chain only
        // grows, so pages read at different moments still join up.
        let mut after = 0;
        loop {
            let page = self.read(move |conn| conn.audit_page(after, AUDIT_PAGE))?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.seq;
            for record in &page {
                f(record);
            }
        }
    }

    fn close(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// A connection and its prepared statements.
pub(super) struct PgConn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    /// When `usable` was last asked (just before each use).
    last_used: Instant,
}

/// A `u64` as the database's `BIGINT`.
fn int(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange(what))
}

/// A stored `BIGINT` that must not be negative.
fn uint(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is negative")))
}

fn opt_uint(value: Option<i64>, what: &str) -> Result<Option<u64>, StoreError> {
    value.map(|v| uint(v, what)).transpose()
}

fn rights(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("rights {value} out of range")))
}

impl PgConn {
    /// A session with this store's settings.
    fn connect(config: &Config) -> Result<Self, StoreError> {
        let mut client = config.connect(NoTls)?;
        client.batch_execute(&format!("SET lock_timeout = '{LOCK_TIMEOUT}'"))?;
        Ok(Self {
            client,
            statements: HashMap::new(),
            last_used: Instant::now(),
        })
    }

    /// Whether the connection can be used now: not known to have ended, and
    /// if it sat unused for [`CHECK_AFTER_IDLE`], answering. (A client learns
    /// that the server ended its session, on a restart or by
    /// `pg_terminate_backend`, only when it next speaks.)
    fn usable(&mut self) -> bool {
        let idle = self.last_used.elapsed();
        self.last_used = Instant::now();
        !self.client.is_closed()
            && (idle < CHECK_AFTER_IDLE || self.client.is_valid(CONNECT_TIMEOUT).is_ok())
    }

    /// The writer's session: the lock that makes it the only writer,
    /// durable commits, and the schema.
    fn open_writer(config: &Config) -> Result<Self, StoreError> {
        let mut conn = Self::connect(config)?;
        // A writer that has just closed its session (an `init` that ended a
        // moment ago, our own session before a reconnect) holds the lock
        // until its server process has exited, which the client does not
        // wait for: ask again for a short while before calling it in use.
        let mut tries = 0;
        loop {
            let locked: bool = conn
                .client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK])?
                .try_get(0)?;
            if locked {
                break;
            }
            tries += 1;
            if tries >= WRITER_LOCK_TRIES {
                return Err(StoreError::InUse);
            }
            std::thread::sleep(WRITER_LOCK_WAIT);
        }
        // PROTOCOL.md §4.1: durable before the response. `local`,
        // `remote_write`, `on` and `remote_apply` all flush the local WAL
        // before the commit returns; only `off` does not.
        let sync: String = conn
            .client
            .query_one("SHOW synchronous_commit", &[])?
            .try_get(0)?;
        if sync == "off" {
            conn.client.batch_execute("SET synchronous_commit = on")?;
        }
        let fsync: String = conn.client.query_one("SHOW fsync", &[])?.try_get(0)?;
        if fsync != "on" {
            tracing::warn!(
                "the PostgreSQL server runs with fsync off: commits are not durable across a crash of its machine"
            );
        }
        conn.ensure_schema()?;
        Ok(conn)
    }

    /// Creates the schema unless this version's is there already (then no
    /// DDL runs at all, so the server may run as a role that owns no table).
    fn ensure_schema(&mut self) -> Result<(), StoreError> {
        let has_meta: bool = self
            .client
            .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])?
            .try_get(0)?;
        if has_meta {
            let version: Option<String> = self
                .client
                .query_opt("SELECT value FROM meta WHERE key = 'schema'", &[])?
                .map(|row| row.try_get(0))
                .transpose()?;
            match version.as_deref() {
                Some(SCHEMA_VERSION) => return Ok(()),
                // Version 1 lacks the approval tables: adding them is the
                // whole upgrade. It needs the right to create tables, which
                // a serving role that owns nothing lacks: then say so.
                // Version 2 lacks `alert_acks` and the later tables;
                // versions 3 to 5 some of `detection_rules`, `first_access`
                // and the canary tables.
                Some(old @ ("1" | "2" | "3" | "4" | "5")) => {
                    let upgrade = if old == "1" {
                        schema::UPGRADE_FROM_1
                    } else {
                        ""
                    };
                    let upgraded = format!(
                        "BEGIN; {} {upgrade} UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema'; COMMIT;",
                        schema::POSTGRES,
                    );
                    return self.client.batch_execute(&upgraded).map_err(|e| {
                        let e = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned());
                        StoreError::Corrupt(format!(
                            "the database has schema version {old} and this server needs {SCHEMA_VERSION} (its new tables), which could not be created ({e}); start it once as the role that owns the tables, or run `irm-key-server init` as that role"
                        ))
                    });
                }
                Some(other) => {
                    return Err(StoreError::Corrupt(format!(
                        "the database has schema version {other}; this server knows {SCHEMA_VERSION}"
                    )));
                }
                None => {}
            }
        }
        self.client.batch_execute(schema::POSTGRES)?;
        Ok(())
    }

    /// A prepared statement, prepared once per connection.
    fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let statement = self.statement(sql)?;
        Ok(self.client.query_opt(&statement, params)?)
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        Ok(self.client.query(&statement, params)?)
    }

    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        Ok(self.client.execute(&statement, params)?)
    }
}

// ---------- rows ----------

fn device_from_row(row: &Row) -> Result<DeviceRecord, StoreError> {
    Ok(DeviceRecord {
        id: row.try_get(0)?,
        user: row.try_get(1)?,
        name: row.try_get(2)?,
        public_key: key32(row.try_get(3)?, "a device public key")?,
        signing_key: key32(row.try_get(4)?, "a device signing key")?,
        active: row.try_get(5)?,
        enrolled_at: uint(row.try_get(6)?, "an enrollment time")?,
    })
}

fn file_from_row(row: &Row) -> Result<FileRow, StoreError> {
    Ok(FileRow {
        id: row.try_get(0)?,
        owner: row.try_get(1)?,
        file_name: row.try_get(2)?,
        policy_json: row.try_get(3)?,
        revoked: row.try_get(4)?,
        admin_expires_at: opt_uint(row.try_get(5)?, "an expiry")?,
        restricted: rights(row.try_get(6)?)?,
        first_seen_at: uint(row.try_get(7)?, "a first-seen time")?,
    })
}

fn request_from_row(row: &Row) -> Result<RequestRow, StoreError> {
    request_row(
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
        row.try_get(5)?,
        row.try_get(6)?,
        row.try_get(7)?,
        uint(row.try_get(8)?, "a request time")?,
        uint(row.try_get(9)?, "a request expiry")?,
        row.try_get(10)?,
        row.try_get(11)?,
    )
}

fn audit_from_row(row: &Row) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: uint(row.try_get(0)?, "an audit seq")?,
        at_ms: uint(row.try_get(1)?, "an audit time")?,
        actor_user: row.try_get(2)?,
        actor_device: row.try_get(3)?,
        action: row.try_get(4)?,
        file_id: row.try_get(5)?,
        result: row.try_get(6)?,
        reason: row.try_get(7)?,
        client_addr: row.try_get(8)?,
        detail: row.try_get(9)?,
        prev_hash: row.try_get(10)?,
        hash: row.try_get(11)?,
    })
}

impl Tables for PgConn {
    fn begin(&mut self) -> Result<(), StoreError> {
        // The writer is the database's only writer (its advisory lock), so
        // READ COMMITTED sees exactly what it wrote.
        Ok(self.client.batch_execute("BEGIN")?)
    }

    fn ended(&self) -> bool {
        self.client.is_closed()
    }

    fn run(&mut self, sql: &'static str) -> Result<(), StoreError> {
        Ok(self.client.batch_execute(sql)?)
    }

    fn meta(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        self.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?
            .map(|row| Ok(row.try_get(0)?))
            .transpose()
    }

    fn insert_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn upsert_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn user(&mut self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        // One round trip: the user and their groups together.
        let Some(row) = self.query_opt(
            r#"SELECT u.name, u.display_name, u.roles, u.active,
                      ARRAY(SELECT g.group_name FROM group_members g
                            WHERE g.user_name = u.name ORDER BY g.group_name COLLATE "C")
               FROM users u WHERE u.name = $1"#,
            &[&name],
        )?
        else {
            return Ok(None);
        };
        let roles: String = row.try_get(2)?;
        Ok(Some(UserRecord {
            name: row.try_get(0)?,
            display_name: row.try_get(1)?,
            roles: parse_roles(&roles)?,
            active: row.try_get(3)?,
            groups: row.try_get(4)?,
        }))
    }

    fn user_names(&mut self) -> Result<Vec<String>, StoreError> {
        self.query(r#"SELECT name FROM users ORDER BY name COLLATE "C""#, &[])?
            .iter()
            .map(|row| Ok(row.try_get(0)?))
            .collect()
    }

    fn group_names(&mut self) -> Result<Vec<String>, StoreError> {
        self.query(r#"SELECT name FROM groups ORDER BY name COLLATE "C""#, &[])?
            .iter()
            .map(|row| Ok(row.try_get(0)?))
            .collect()
    }

    fn user_exists(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .query_opt("SELECT 1 FROM users WHERE name = $1", &[&name])?
            .is_some())
    }

    fn insert_user(&mut self, user: &NewUser, now: u64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO users (name, display_name, roles, active, created_at, code_hash, code_expires_at, code_failures, code_origin)
             VALUES ($1, $2, $3, TRUE, $4, $5, $6, 0, $7)",
            &[
                &user.name,
                &user.display_name,
                &roles_text(&user.roles),
                &int(now, "a creation time")?,
                &user.code.hash.as_slice(),
                &int(user.code.expires_at, "a code expiry")?,
                &user.code.origin,
            ],
        )?;
        Ok(())
    }

    fn set_user_active(&mut self, name: &str, active: bool) -> Result<(), StoreError> {
        self.execute(
            "UPDATE users SET active = $2 WHERE name = $1",
            &[&name, &active],
        )?;
        Ok(())
    }

    fn user_code(&mut self, name: &str) -> Result<Option<CodeRow>, StoreError> {
        self.query_opt(
            "SELECT code_hash, code_expires_at, code_failures, code_origin FROM users WHERE name = $1",
            &[&name],
        )?
        .map(|row| {
            Ok(CodeRow {
                hash: row.try_get(0)?,
                expires_at: opt_uint(row.try_get(1)?, "a code expiry")?,
                failures: row.try_get(2)?,
                origin: row.try_get(3)?,
            })
        })
        .transpose()
    }

    fn user_with_code(&mut self, hash: &[u8; 32]) -> Result<Option<String>, StoreError> {
        self.query_opt(
            "SELECT name FROM users WHERE code_hash = $1 LIMIT 1",
            &[&hash.as_slice()],
        )?
        .map(|row| Ok(row.try_get(0)?))
        .transpose()
    }

    fn set_user_code(
        &mut self,
        name: &str,
        code: Option<&CodeIssue>,
        failures: i64,
    ) -> Result<(), StoreError> {
        let expires_at = code
            .map(|c| int(c.expires_at, "a code expiry"))
            .transpose()?;
        self.execute(
            "UPDATE users SET code_hash = $2, code_expires_at = $3, code_failures = $4, code_origin = $5 WHERE name = $1",
            &[
                &name,
                &code.map(|c| c.hash.as_slice()),
                &expires_at,
                &failures,
                &code.map(|c| c.origin.as_str()),
            ],
        )?;
        Ok(())
    }

    fn set_code_failures(&mut self, name: &str, failures: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE users SET code_failures = $2 WHERE name = $1",
            &[&name, &failures],
        )?;
        Ok(())
    }

    fn group_exists(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .query_opt("SELECT 1 FROM groups WHERE name = $1", &[&name])?
            .is_some())
    }

    fn insert_group(&mut self, name: &str, now: u64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO groups (name, created_at) VALUES ($1, $2)",
            &[&name, &int(now, "a creation time")?],
        )?;
        Ok(())
    }

    fn add_member(&mut self, group: &str, user: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO group_members (group_name, user_name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&group, &user],
        )?;
        Ok(())
    }

    fn remove_member(&mut self, group: &str, user: &str) -> Result<bool, StoreError> {
        Ok(self.execute(
            "DELETE FROM group_members WHERE group_name = $1 AND user_name = $2",
            &[&group, &user],
        )? > 0)
    }

    fn device(&mut self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.query_opt(
            "SELECT id, user_name, name, public_key, signing_key, active, enrolled_at FROM devices WHERE id = $1",
            &[&id],
        )?
        .as_ref()
        .map(device_from_row)
        .transpose()
    }

    fn devices(&mut self) -> Result<Vec<DeviceRecord>, StoreError> {
        self.query(
            r#"SELECT id, user_name, name, public_key, signing_key, active, enrolled_at FROM devices
               ORDER BY user_name COLLATE "C", enrolled_at, id COLLATE "C""#,
            &[],
        )?
        .iter()
        .map(device_from_row)
        .collect()
    }

    fn insert_device(&mut self, d: &DeviceRecord, enrolled_at: u64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO devices (id, user_name, name, public_key, signing_key, active, enrolled_at)
             VALUES ($1, $2, $3, $4, $5, TRUE, $6)",
            &[
                &d.id,
                &d.user,
                &d.name,
                &d.public_key.as_slice(),
                &d.signing_key.as_slice(),
                &int(enrolled_at, "an enrollment time")?,
            ],
        )?;
        Ok(())
    }

    fn active_devices_of(&mut self, user: &str) -> Result<Vec<String>, StoreError> {
        self.query(
            r#"SELECT id FROM devices WHERE user_name = $1 AND active ORDER BY id COLLATE "C""#,
            &[&user],
        )?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
    }

    fn revoke_device(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.execute("UPDATE devices SET active = FALSE WHERE id = $1", &[&id])? > 0)
    }

    fn keys(&mut self) -> Result<Vec<KeyRecord>, StoreError> {
        self.query(
            r#"SELECT key_id, public_key, state, created_at FROM kas_keys
               ORDER BY created_at, key_id COLLATE "C""#,
            &[],
        )?
        .iter()
        .map(|row| {
            let id: String = row.try_get(0)?;
            let public: String = row.try_get(1)?;
            let state: String = row.try_get(2)?;
            let created_at = uint(row.try_get(3)?, "a key's creation time")?;
            key_record(&id, &public, &state, created_at)
        })
        .collect()
    }

    fn insert_key(&mut self, key: &KeyRecord, state: KeyState) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO kas_keys (key_id, public_key, state, created_at) VALUES ($1, $2, $3, $4)",
            &[
                &key.key_id.to_string(),
                &key.public_key.to_text(),
                &state.as_str(),
                &int(key.created_at, "a key's creation time")?,
            ],
        )?;
        Ok(())
    }

    fn demote_current_key(&mut self) -> Result<(), StoreError> {
        self.execute(
            "UPDATE kas_keys SET state = 'active' WHERE state = 'current'",
            &[],
        )?;
        Ok(())
    }

    fn key_state(&mut self, id: &str) -> Result<Option<String>, StoreError> {
        self.query_opt("SELECT state FROM kas_keys WHERE key_id = $1", &[&id])?
            .map(|row| Ok(row.try_get(0)?))
            .transpose()
    }

    fn set_key_state(&mut self, id: &str, state: KeyState) -> Result<(), StoreError> {
        self.execute(
            "UPDATE kas_keys SET state = $2 WHERE key_id = $1",
            &[&id, &state.as_str()],
        )?;
        Ok(())
    }

    fn file(&mut self, id: &str) -> Result<Option<FileRow>, StoreError> {
        self.query_opt(
            "SELECT id, owner, file_name, policy_json, revoked, admin_expires_at, restricted_rights, first_seen_at
             FROM files WHERE id = $1",
            &[&id],
        )?
        .as_ref()
        .map(file_from_row)
        .transpose()
    }

    fn files(&mut self) -> Result<Vec<FileRow>, StoreError> {
        self.query(
            r#"SELECT id, owner, file_name, policy_json, revoked, admin_expires_at, restricted_rights, first_seen_at
               FROM files ORDER BY first_seen_at, id COLLATE "C""#,
            &[],
        )?
        .iter()
        .map(file_from_row)
        .collect()
    }

    fn insert_file(&mut self, file: &NewFile<'_>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO files (id, key_id, owner, file_name, policy_json, first_seen_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &file.id,
                &file.key_id,
                &file.owner,
                &file.file_name,
                &file.policy_json,
                &int(file.first_seen_at, "a first-seen time")?,
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
            "UPDATE files SET key_id = $2, policy_json = $3 WHERE id = $1 AND policy_json = $4",
            &[&id, &key_id, &policy_json, &UNSEEN_POLICY],
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
            "UPDATE files SET owner = $2, file_name = COALESCE($3, file_name) WHERE id = $1",
            &[&id, &owner, &file_name],
        )?;
        Ok(())
    }

    fn set_file_controls(&mut self, id: &str, controls: &FileControls) -> Result<(), StoreError> {
        let expires_at = controls
            .admin_expires_at
            .map(|at| int(at, "an expiry"))
            .transpose()?;
        self.execute(
            "UPDATE files SET revoked = $2, admin_expires_at = $3, restricted_rights = $4 WHERE id = $1",
            &[
                &id,
                &controls.revoked,
                &expires_at,
                &i64::from(controls.restricted.bits()),
            ],
        )?;
        Ok(())
    }

    fn insert_grant(&mut self, g: &NewGrant<'_>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO grants (id, file_id, user_name, device_id, rights, renew, issued_at, lease_expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &g.id,
                &g.file_id,
                &g.user,
                &g.device,
                &i64::from(g.rights),
                &g.renew,
                &int(g.issued_at, "an issue time")?,
                &int(g.lease_expires_at, "a lease end")?,
            ],
        )?;
        Ok(())
    }

    fn grant(&mut self, id: &str) -> Result<Option<GrantRow>, StoreError> {
        self.query_opt(
            "SELECT file_id, device_id, rights FROM grants WHERE id = $1",
            &[&id],
        )?
        .map(|row| {
            Ok(GrantRow {
                file_id: row.try_get(0)?,
                device_id: row.try_get(1)?,
                rights: rights(row.try_get(2)?)?,
            })
        })
        .transpose()
    }

    fn last_grants(&mut self) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.query(
            r#"SELECT user_name, device_id, MAX(issued_at) FROM grants
               GROUP BY user_name, device_id ORDER BY user_name COLLATE "C", device_id COLLATE "C""#,
            &[],
        )?
        .iter()
        .map(|row| {
            Ok((
                row.try_get(0)?,
                row.try_get(1)?,
                uint(row.try_get(2)?, "a grant time")?,
            ))
        })
        .collect()
    }

    fn user_created(&mut self) -> Result<Vec<(String, u64)>, StoreError> {
        self.query(
            r#"SELECT name, created_at FROM users ORDER BY name COLLATE "C""#,
            &[],
        )?
        .iter()
        .map(|row| Ok((row.try_get(0)?, uint(row.try_get(1)?, "a creation time")?)))
        .collect()
    }

    fn grants_with_prefix(&mut self, prefix: &str) -> Result<Vec<GrantDetail>, StoreError> {
        // Ids are 32 lowercase hex digits; compared byte-wise ("C") so that
        // no collation reorders them.
        let (low, high) = (format!("{prefix:0<32}"), format!("{prefix:f<32}"));
        let rows = self.query(
            r#"SELECT id, file_id, user_name, device_id, issued_at, lease_expires_at, renew
               FROM grants WHERE id COLLATE "C" >= $1 AND id COLLATE "C" <= $2 ORDER BY issued_at, id COLLATE "C""#,
            &[&low, &high],
        )?;
        let mut out = Vec::new();
        for row in rows {
            let grant = GrantDetail {
                id: row.try_get(0)?,
                file_id: row.try_get(1)?,
                user: row.try_get(2)?,
                device_id: row.try_get(3)?,
                issued_at: uint(row.try_get(4)?, "an issue time")?,
                lease_expires_at: uint(row.try_get(5)?, "a lease end")?,
                renew: row.try_get(6)?,
            };
            if grant.id.starts_with(prefix) {
                out.push(grant);
            }
        }
        Ok(out)
    }

    fn insert_canary_export(&mut self, e: &CanaryExportRow) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO canary_exports (id, grant_id, file_id, user_name, device_id, request_id, approvers, row_count, canary_count, exported_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &e.id,
                &e.grant_id,
                &e.file_id,
                &e.user,
                &e.device_id,
                &e.request_id,
                &e.approvers,
                &int(e.rows, "a row count")?,
                &i64::from(e.canaries),
                &int(e.exported_at, "an export time")?,
            ],
        )?;
        Ok(())
    }

    fn canary_export(&mut self, id: &str) -> Result<Option<CanaryExportRow>, StoreError> {
        self.query_opt(
            "SELECT id, grant_id, file_id, user_name, device_id, request_id, approvers, row_count, canary_count, exported_at
             FROM canary_exports WHERE id = $1",
            &[&id],
        )?
        .map(|row| {
            Ok(CanaryExportRow {
                id: row.try_get(0)?,
                grant_id: row.try_get(1)?,
                file_id: row.try_get(2)?,
                user: row.try_get(3)?,
                device_id: row.try_get(4)?,
                request_id: row.try_get(5)?,
                approvers: row.try_get(6)?,
                rows: uint(row.try_get(7)?, "a row count")?,
                canaries: u32::try_from(row.try_get::<_, i64>(8)?)
                    .map_err(|_| StoreError::Corrupt("a canary count out of range".into()))?,
                exported_at: uint(row.try_get(9)?, "an export time")?,
            })
        })
        .transpose()
    }

    fn insert_canary(&mut self, value: &str, export: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO canaries (value, export_id) VALUES ($1, $2)",
            &[&value, &export],
        )?;
        Ok(())
    }

    fn canaries_among(&mut self, values: &[String]) -> Result<Vec<(String, String)>, StoreError> {
        // One round trip for the whole list, as one array parameter.
        self.query(
            "SELECT value, export_id FROM canaries WHERE value = ANY($1)",
            &[&values],
        )?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
    }

    fn insert_request(&mut self, q: &RequestRow) -> Result<(), StoreError> {
        self.execute(
            concat!(
                "INSERT INTO requests (",
                request_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ),
            &[
                &q.id,
                &q.action_json,
                &q.action_hash,
                &q.requester,
                &q.requester_device,
                &q.reason,
                &i64::from(q.required),
                &q.state.as_str(),
                &int(q.created_at, "a request time")?,
                &int(q.expires_at, "a request expiry")?,
                &q.outcome,
                &q.code_first_hash.as_ref().map(|h| h.as_slice()),
            ],
        )?;
        Ok(())
    }

    fn request(&mut self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        self.query_opt(
            concat!(
                "SELECT ",
                request_columns!(),
                " FROM requests WHERE id = $1"
            ),
            &[&id],
        )?
        .as_ref()
        .map(request_from_row)
        .transpose()
    }

    fn requests(&mut self, limit: u32) -> Result<Vec<RequestRow>, StoreError> {
        self.query(
            concat!(
                "SELECT ",
                request_columns!(),
                r#" FROM requests ORDER BY state = 'pending' DESC, created_at DESC, id COLLATE "C" LIMIT $1"#
            ),
            &[&i64::from(limit)],
        )?
        .iter()
        .map(request_from_row)
        .collect()
    }

    fn pending_due(&mut self, now: u64) -> Result<Vec<String>, StoreError> {
        self.query(
            r#"SELECT id FROM requests WHERE state = 'pending' AND expires_at <= $1 ORDER BY id COLLATE "C""#,
            &[&int(now, "a time")?],
        )?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
    }

    fn set_request_state(
        &mut self,
        id: &str,
        state: RequestState,
        outcome: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE requests SET state = $2, outcome = $3 WHERE id = $1",
            &[&id, &state.as_str(), &outcome],
        )?;
        Ok(())
    }

    fn insert_approval(&mut self, request: &str, a: &ApprovalInfo) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO approvals (request_id, approver, device, at) VALUES ($1, $2, $3, $4)",
            &[
                &request,
                &a.approver,
                &a.device,
                &int(a.at, "an approval time")?,
            ],
        )?;
        Ok(())
    }

    fn approvals(&mut self, request: &str) -> Result<Vec<ApprovalInfo>, StoreError> {
        self.query(
            r#"SELECT approver, device, at FROM approvals WHERE request_id = $1 ORDER BY at, approver COLLATE "C""#,
            &[&request],
        )?
        .iter()
        .map(|row| {
            Ok(ApprovalInfo {
                approver: row.try_get(0)?,
                device: row.try_get(1)?,
                at: uint(row.try_get(2)?, "an approval time")?,
            })
        })
        .collect()
    }

    fn approval_rule(&mut self, action: &str) -> Result<Option<u8>, StoreError> {
        self.query_opt(
            "SELECT required FROM approval_rules WHERE action = $1",
            &[&action],
        )?
        .map(|row| {
            let n: i64 = row.try_get(0)?;
            u8::try_from(n).map_err(|_| StoreError::Corrupt(format!("rule {action} requires {n}")))
        })
        .transpose()
    }

    fn set_approval_rule(&mut self, action: &str, required: u8) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO approval_rules (action, required) VALUES ($1, $2) ON CONFLICT (action) DO UPDATE SET required = EXCLUDED.required",
            &[&action, &i64::from(required)],
        )?;
        Ok(())
    }

    fn detection_rule(&mut self, rule: &str) -> Result<Option<String>, StoreError> {
        self.query_opt(
            "SELECT setting FROM detection_rules WHERE rule = $1",
            &[&rule],
        )?
        .map(|row| Ok(row.try_get(0)?))
        .transpose()
    }

    fn set_detection_rule(&mut self, rule: &str, setting: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO detection_rules (rule, setting) VALUES ($1, $2) ON CONFLICT (rule) DO UPDATE SET setting = EXCLUDED.setting",
            &[&rule, &setting],
        )?;
        Ok(())
    }

    fn detection_rows(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        self.query(
            r#"SELECT rule, setting FROM detection_rules ORDER BY rule COLLATE "C""#,
            &[],
        )?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
    }

    fn distinct_files_by_user(&mut self, since_ms: u64) -> Result<Vec<(String, u64)>, StoreError> {
        let since = i64::try_from(since_ms).unwrap_or(i64::MAX);
        self.query(
            "SELECT actor_user, COUNT(DISTINCT file_id) FROM audit \
             WHERE action = 'grant' AND result = 'ok' AND at_ms >= $1 \
             AND actor_user IS NOT NULL AND file_id IS NOT NULL GROUP BY actor_user",
            &[&since],
        )?
        .iter()
        .map(|row| Ok((row.try_get(0)?, uint(row.try_get(1)?, "a count")?)))
        .collect()
    }

    fn first_accesses(&mut self) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.query("SELECT user_name, scope, first_at FROM first_access", &[])?
            .iter()
            .map(|row| {
                Ok((
                    row.try_get(0)?,
                    row.try_get(1)?,
                    uint(row.try_get(2)?, "a first access time")?,
                ))
            })
            .collect()
    }

    fn insert_first_access(&mut self, user: &str, scope: &str, at: u64) -> Result<(), StoreError> {
        let at = i64::try_from(at).map_err(|_| StoreError::Corrupt("a time past 2262".into()))?;
        self.execute(
            "INSERT INTO first_access (user_name, scope, first_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&user, &scope, &at],
        )?;
        Ok(())
    }

    fn break_glass(&mut self) -> Result<Option<BreakGlassRow>, StoreError> {
        self.query_opt(
            "SELECT code_hash, issued_at, expires_at, origin, used_at, used_by, used_request FROM break_glass WHERE slot = 'current'",
            &[],
        )?
        .map(|row| {
            Ok(BreakGlassRow {
                hash: row.try_get(0)?,
                issued_at: uint(row.try_get(1)?, "a break-glass time")?,
                expires_at: uint(row.try_get(2)?, "a break-glass expiry")?,
                origin: row.try_get(3)?,
                used_at: opt_uint(row.try_get(4)?, "a break-glass time")?,
                used_by: row.try_get(5)?,
                used_request: row.try_get(6)?,
            })
        })
        .transpose()
    }

    fn hold(&mut self, user: &str) -> Result<Option<HoldRow>, StoreError> {
        self.query_opt(
            "SELECT rule, since, detail FROM holds WHERE user_name = $1",
            &[&user],
        )?
        .map(|row| {
            Ok(HoldRow {
                rule: row.try_get(0)?,
                since: uint(row.try_get(1)?, "a hold's time")?,
                detail: row.try_get(2)?,
            })
        })
        .transpose()
    }

    fn set_hold(&mut self, user: &str, hold: Option<&HoldRow>) -> Result<(), StoreError> {
        match hold {
            Some(hold) => self.execute(
                "INSERT INTO holds (user_name, rule, since, detail) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_name) DO UPDATE SET rule = EXCLUDED.rule, since = EXCLUDED.since, detail = EXCLUDED.detail",
                &[&user, &hold.rule, &int(hold.since, "a hold's time")?, &hold.detail],
            )?,
            None => self.execute("DELETE FROM holds WHERE user_name = $1", &[&user])?,
        };
        Ok(())
    }

    fn alert_ack(&mut self, seq: u64) -> Result<Option<AlertAck>, StoreError> {
        self.query_opt(
            "SELECT acked_by, acked_at, reason FROM alert_acks WHERE seq = $1",
            &[&int(seq, "an alert id")?],
        )?
        .map(|row| {
            Ok(AlertAck {
                by: row.try_get(0)?,
                at: uint(row.try_get(1)?, "an acknowledgement's time")?,
                reason: row.try_get(2)?,
            })
        })
        .transpose()
    }

    fn alert_acks(&mut self) -> Result<Vec<(u64, AlertAck)>, StoreError> {
        self.query(
            "SELECT seq, acked_by, acked_at, reason FROM alert_acks ORDER BY seq",
            &[],
        )?
        .iter()
        .map(|row| {
            Ok((
                uint(row.try_get(0)?, "an alert id")?,
                AlertAck {
                    by: row.try_get(1)?,
                    at: uint(row.try_get(2)?, "an acknowledgement's time")?,
                    reason: row.try_get(3)?,
                },
            ))
        })
        .collect()
    }

    fn insert_alert_ack(&mut self, seq: u64, ack: &AlertAck) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO alert_acks (seq, acked_by, acked_at, reason) VALUES ($1, $2, $3, $4)",
            &[
                &int(seq, "an alert id")?,
                &ack.by,
                &int(ack.at, "an acknowledgement's time")?,
                &ack.reason,
            ],
        )?;
        Ok(())
    }

    fn set_break_glass(&mut self, code: &CodeIssue, issued_at: u64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO break_glass (slot, code_hash, issued_at, expires_at, origin, used_at, used_by, used_request)
             VALUES ('current', $1, $2, $3, $4, NULL, NULL, NULL)
             ON CONFLICT (slot) DO UPDATE SET code_hash = EXCLUDED.code_hash, issued_at = EXCLUDED.issued_at,
               expires_at = EXCLUDED.expires_at, origin = EXCLUDED.origin, used_at = NULL, used_by = NULL, used_request = NULL",
            &[
                &code.hash.as_slice(),
                &int(issued_at, "a break-glass time")?,
                &int(code.expires_at, "a break-glass expiry")?,
                &code.origin,
            ],
        )?;
        Ok(())
    }

    fn spend_break_glass(&mut self, user: &str, request: &str, now: u64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE break_glass SET used_at = $1, used_by = $2, used_request = $3 WHERE slot = 'current'",
            &[&int(now, "a break-glass time")?, &user, &request],
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
            "INSERT INTO take_outs (file_id, user_name, device_id, action, expires_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (file_id, user_name, device_id, action) DO UPDATE SET expires_at = EXCLUDED.expires_at",
            &[&file, &user, &device, &how.kind(), &int(expires_at, "a take-out expiry")?],
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
        self.query_opt(
            "SELECT expires_at FROM take_outs WHERE file_id = $1 AND user_name = $2 AND device_id = $3 AND action = $4",
            &[&file, &user, &device, &how.kind()],
        )?
        .map(|row| uint(row.try_get(0)?, "a take-out expiry"))
        .transpose()
    }

    fn take_take_out(
        &mut self,
        how: TakeOut,
        file: &str,
        user: &str,
        device: &str,
        now: u64,
    ) -> Result<bool, StoreError> {
        let now = int(now, "a time")?;
        let spent = self.execute(
            "DELETE FROM take_outs WHERE file_id = $1 AND user_name = $2 AND device_id = $3 AND action = $4 AND expires_at > $5",
            &[&file, &user, &device, &how.kind(), &now],
        )?;
        self.execute("DELETE FROM take_outs WHERE expires_at <= $1", &[&now])?;
        Ok(spent > 0)
    }

    fn insert_notice(&mut self, recipient_device: &str, notice: &Notice) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO notices (recipient_device, kind, at, device_id, device_name, code_origin) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (recipient_device, kind, device_id) DO UPDATE SET at = EXCLUDED.at, device_name = EXCLUDED.device_name, code_origin = EXCLUDED.code_origin",
            &[
                &recipient_device,
                &notice_kind(notice.kind),
                &int(notice.at, "a notice time")?,
                &notice.device_id,
                &notice.device_name,
                &notice.code_origin,
            ],
        )?;
        Ok(())
    }

    fn take_notices(&mut self, device: &str) -> Result<Vec<Notice>, StoreError> {
        // One round trip on the grant path: the rows go as they are read.
        self.query(
            r#"DELETE FROM notices WHERE recipient_device = $1
               RETURNING kind, at, device_id, device_name, code_origin"#,
            &[&device],
        )?
        .iter()
        .map(|row| {
            notice(
                row.try_get::<_, &str>(0)?,
                uint(row.try_get(1)?, "a notice time")?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|mut notices| {
            notices.sort_by(|a, b| (a.at, &a.device_id).cmp(&(b.at, &b.device_id)));
            notices
        })
    }

    fn insert_audit(&mut self, record: &AuditRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO audit (seq, at_ms, actor_user, actor_device, action, file_id, result, reason, client_addr, detail, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &int(record.seq, "an audit seq")?,
                &int(record.at_ms, "an audit time")?,
                &record.actor_user,
                &record.actor_device,
                &record.action,
                &record.file_id,
                &record.result,
                &record.reason,
                &record.client_addr,
                &record.detail,
                &record.prev_hash,
                &record.hash,
            ],
        )?;
        Ok(())
    }

    fn last_audit(&mut self) -> Result<Option<(u64, String)>, StoreError> {
        self.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?
            .map(|row| Ok((uint(row.try_get(0)?, "an audit seq")?, row.try_get(1)?)))
            .transpose()
    }

    fn audit_page(&mut self, after: u64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        self.query(
            "SELECT seq, at_ms, actor_user, actor_device, action, file_id, result, reason, client_addr, detail, prev_hash, hash
             FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&int(after, "an audit seq")?, &i64::from(limit)],
        )?
        .iter()
        .map(audit_from_row)
        .collect()
    }

    fn audit_query(
        &mut self,
        query: &irm_core::protocol::AuditQuery,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        // As SQLite's: one statement per direction, NULL filters match all.
        macro_rules! select {
            ($order:literal) => {
                concat!(
                    "SELECT seq, at_ms, actor_user, actor_device, action, file_id, result, reason, client_addr, detail, prev_hash, hash
                     FROM audit WHERE seq > $1 AND ($2::text IS NULL OR actor_user = $2) AND ($3::text IS NULL OR file_id = $3)
                     AND ($4::text IS NULL OR action = $4 OR substr(action, 1, length($4) + 1) = $4 || '.')
                     AND ($5::bigint IS NULL OR at_ms >= $5) ORDER BY seq ",
                    $order,
                    " LIMIT $6"
                )
            };
        }
        let sql = if query.newest {
            select!("DESC")
        } else {
            select!("ASC")
        };
        let since = query.since_ms.map(|t| int(t, "a time")).transpose()?;
        let mut records = self
            .query(
                sql,
                &[
                    &int(query.after, "an audit seq")?,
                    &query.user,
                    &query.file,
                    &query.action,
                    &since,
                    &i64::from(query.limit),
                ],
            )?
            .iter()
            .map(audit_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if query.newest {
            records.reverse();
        }
        Ok(records)
    }
}
