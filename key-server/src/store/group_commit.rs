//! Group commit, once for every backend: one writer thread owns the only
//! write connection. Every change arrives as a job; the writer drains
//! whatever jobs are waiting, runs each inside its own savepoint of one
//! transaction, commits once (one durable flush for the whole batch), and
//! only then answers each waiter (PROTOCOL.md §4.1: durable before the
//! response). The audit chain's head lives in that thread, so records are
//! chained in exactly the order they commit.
//!
//! [`GroupCommitStore`] is the [`Store`] both backends are: the writer for
//! changes, the backend's own read connections for reads, and the
//! operations of `txn.rs`. A backend brings its connection type (SQL, see
//! [`Tables`]), its reads and its housekeeping between batches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use irm_core::protocol::{Alert, AuditRecord, FileInfo};

use super::changes::ChangeLog;
use super::contract::{
    Actor, AdminOp, AdminOutput, AlertDeliveryEvent, CodeIssue, DeviceRecord, EnrollInput,
    EventInput, GrantDone, GrantInput, KeyRecord, NewUser, RegisterInput, Store, StoreResult,
    UserRecord,
};
use super::ledger::{Entry as LedgerEntry, Ledger};
use super::tables::{ChainHead, Tables};
use super::txn::{self, WriteCtx, load_head};
use crate::audit::AuditDraft;
use crate::error::StoreError;
use crate::metrics::Metrics;

/// Jobs per group commit at most, so one commit never grows without bound.
const MAX_BATCH: usize = 512;

/// Called once the batch a job ran in has committed (or failed to).
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// Where a queued write's result goes once it is durable.
type Done<T> = Box<dyn FnOnce(Result<T, StoreError>) + Send>;
/// What the writer thread keeps besides the chain head: the state ledger,
/// and the entries the current batch's jobs set (applied once it commits).
pub(super) struct WriterState {
    pub(super) ledger: Ledger,
    pub(super) staged: Vec<(String, LedgerEntry)>,
    /// The detection counters (PROTOCOL.md §12). A batch that fails to
    /// commit leaves its grants counted: detection errs towards firing.
    pub(super) detector: crate::detect::Detector,
    /// What the current batch changed, for the push channel's change log.
    pub(super) changed: Vec<super::changes::Changed>,
    /// Whether a job of this batch appended an alert.
    pub(super) alerted: bool,
}

/// A unit of work for the writer thread.
type Job<C> = Box<dyn FnOnce(&mut C, &mut ChainHead, &mut WriterState) -> Completion + Send>;

/// What the writer does before each batch, given the number of batches so
/// far (SQLite: checkpoints; PostgreSQL: reconnect after a lost connection).
/// An error drops the batch's jobs unrun, so their waiters learn the store failed.
pub(super) type BeforeBatch<C> =
    Box<dyn FnMut(&mut C, &mut ChainHead, u64) -> Result<(), StoreError> + Send>;

/// The writer thread and the queue to it.
pub(super) struct Writer<C> {
    jobs: Mutex<Option<std_mpsc::Sender<Job<C>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    committed: Arc<Mutex<ChainHead>>,
    /// What committed batches changed, for the push channel.
    pub(super) changes: Arc<ChangeLog>,
    /// Notified after a commit that appended an alert (PROTOCOL.md §12.1).
    alerts: Arc<tokio::sync::Notify>,
}

impl<C: Tables + 'static> Writer<C> {
    /// Starts the writer thread. `connect` runs on that thread, so that a
    /// connection which must not be made or dropped elsewhere never is; the
    /// chain head is read from it before this returns.
    pub(super) fn start(
        name: &str,
        metrics: Arc<Metrics>,
        connect: impl FnOnce() -> Result<C, StoreError> + Send + 'static,
        before_batch: BeforeBatch<C>,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = std_mpsc::channel::<Job<C>>();
        let (ready_tx, ready_rx) = std_mpsc::sync_channel::<Result<ChainHead, StoreError>>(1);
        let committed = Arc::new(Mutex::new(ChainHead {
            seq: 0,
            hash: crate::audit::GENESIS_HASH,
        }));
        let writer_committed = Arc::clone(&committed);
        let changes = Arc::new(ChangeLog::default());
        let writer_changes = Arc::clone(&changes);
        let alerts = Arc::new(tokio::sync::Notify::new());
        let writer_alerts = Arc::clone(&alerts);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let started = connect().and_then(|mut conn| {
                    let head = load_head(&mut conn)?;
                    Ok((conn, head))
                });
                let (conn, head) = match started {
                    Ok(started) => started,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                if let Ok(mut c) = writer_committed.lock() {
                    *c = head;
                }
                metrics.audit_len(head.seq);
                let _ = ready_tx.send(Ok(head));
                writer_loop(
                    conn,
                    rx,
                    head,
                    (writer_committed, writer_alerts),
                    &writer_changes,
                    metrics,
                    before_batch,
                );
            })?;
        match ready_rx.recv() {
            Ok(Ok(_)) => Ok(Self {
                jobs: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
                committed,
                changes,
                alerts,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(StoreError::WriterGone)
            }
        }
    }

    /// The committed chain's head.
    fn committed(&self) -> Result<ChainHead, StoreError> {
        self.committed
            .lock()
            .map(|head| *head)
            .map_err(|_| StoreError::Corrupt("audit head lock poisoned".into()))
    }

    /// Runs `op` in the writer's next group commit and waits until it is durable.
    /// If `op` fails, its savepoint is rolled back and the batch goes on.
    pub(super) fn write<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut WriteCtx<'_, C>) -> Result<T, StoreError> + Send + 'static,
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
    pub(super) fn submit<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut WriteCtx<'_, C>) -> Result<T, StoreError> + Send + 'static,
        done: Done<T>,
    ) {
        // The writer calls exactly one of these: the completion after the
        // commit, or (if the job never runs) nothing, so `done` is dropped
        // and the waiter sees its channel close.
        let job: Job<C> = Box::new(move |conn, head, writer| {
            let saved = *head;
            let staged_before = writer.staged.len();
            let changed_before = writer.changed.len();
            if let Err(e) = conn.run("SAVEPOINT job") {
                return Box::new(move |_| done(Err(e)));
            }
            // A panicking job must not take the writer (and every later
            // request) down with it: its savepoint is rolled back instead.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                op(&mut WriteCtx {
                    conn: &mut *conn,
                    head: &mut *head,
                    ledger: &mut writer.ledger,
                    staged: &mut writer.staged,
                    detector: &mut writer.detector,
                    changed: &mut writer.changed,
                    alerted: &mut writer.alerted,
                })
            }))
            .unwrap_or(Err(StoreError::TaskFailed));
            let result = match result {
                Ok(value) => conn.run("RELEASE job").map(|()| value),
                Err(e) => Err(e),
            };
            match result {
                Ok(value) => Box::new(move |commit: Result<(), StoreError>| {
                    done(commit.map(|()| value));
                }),
                Err(e) => {
                    *head = saved;
                    writer.staged.truncate(staged_before);
                    writer.changed.truncate(changed_before);
                    let _ = conn
                        .run("ROLLBACK TO job")
                        .and_then(|()| conn.run("RELEASE job"));
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

impl<C> Writer<C> {
    /// Stops the writer after the jobs already queued, and waits for it.
    pub(super) fn close(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl<C> Drop for Writer<C> {
    fn drop(&mut self) {
        self.close();
    }
}

fn writer_loop<C: Tables>(
    mut conn: C,
    jobs: std_mpsc::Receiver<Job<C>>,
    mut head: ChainHead,
    (committed, alerts): (Arc<Mutex<ChainHead>>, Arc<tokio::sync::Notify>),
    changes: &ChangeLog,
    metrics: Arc<Metrics>,
    mut before_batch: BeforeBatch<C>,
) {
    let mut batches = 0u64;
    let mut writer = WriterState {
        ledger: Ledger::default(),
        staged: Vec::new(),
        // Off until `arm_detection` brings the rules and the history.
        detector: crate::detect::Detector::new(crate::detect::Rules::OFF),
        changed: Vec::new(),
        alerted: false,
    };
    while let Ok(first) = jobs.recv() {
        batches += 1;
        let ready = before_batch(&mut conn, &mut head, batches);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut begun = ready.and_then(|()| conn.begin());
        if begun.is_err() && conn.ended() {
            // Only now did the client learn that its session had ended:
            // the check replaces the connection (and re-reads the head).
            begun = before_batch(&mut conn, &mut head, batches).and_then(|()| conn.begin());
        }
        if let Err(e) = begun {
            tracing::error!(error = %e, "cannot begin a write transaction");
            // Jobs are not run; their waiters learn the store failed.
            drop(batch);
            continue;
        }
        let before = head;
        let completions: Vec<Completion> = batch
            .into_iter()
            .map(|job| job(&mut conn, &mut head, &mut writer))
            .collect();
        let started = Instant::now();
        let result = conn.run("COMMIT");
        metrics.fsync.observe(started.elapsed());
        metrics.batch(completions.len() as u64);
        match result {
            Ok(()) => {
                if let Ok(mut c) = committed.lock() {
                    *c = head;
                }
                for (object, entry) in writer.staged.drain(..) {
                    writer.ledger.set(object, entry);
                }
                changes.append(std::mem::take(&mut writer.changed));
                metrics.audit_len(head.seq);
                for done in completions {
                    done(Ok(()));
                }
                // Only a wake-up (it never blocks): the webhook's task reads
                // the alert from the store, on its own time.
                if std::mem::take(&mut writer.alerted) {
                    alerts.notify_one();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed");
                // Whatever is left of the transaction goes; the next batch
                // begins afresh.
                let _ = conn.run("ROLLBACK");
                head = before;
                writer.staged.clear();
                writer.changed.clear();
                writer.alerted = false;
                for done in completions {
                    done(Err(StoreError::Corrupt("the group commit failed".into())));
                }
            }
        }
    }
}

/// What a backend brings besides its [`Tables`]: its read connections.
pub(super) trait Backend: Send + Sync + 'static {
    /// The connection type of both the writer and the reads.
    type Conn: Tables + 'static;

    /// Runs `op` on a read connection (outside the writer's transaction).
    /// `op` only reads, so a backend may run it again on a new connection
    /// when the first one turns out to have ended.
    fn read<T: Send + 'static>(
        &self,
        op: impl Fn(&mut Self::Conn) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError>;

    /// Calls `f` with every committed audit record in `seq` order.
    fn for_each_audit(&self, f: &mut dyn FnMut(&AuditRecord)) -> Result<(), StoreError>;

    /// Stops the backend's own threads (before the writer stops).
    fn close(&self) {}
}

/// The [`Store`] of every backend: its writer and its reads.
pub(super) struct GroupCommitStore<B: Backend> {
    backend: B,
    writer: Writer<B::Conn>,
    /// `Store::state_generation`.
    generation: AtomicU64,
}

impl<B: Backend> GroupCommitStore<B> {
    /// A store over a started backend and writer.
    pub(super) fn new(backend: B, writer: Writer<B::Conn>) -> Self {
        Self {
            backend,
            writer,
            generation: AtomicU64::new(0),
        }
    }

    /// Stops the backend's threads and the writer (after the jobs already queued).
    pub(super) fn close(&self) {
        self.backend.close();
        self.writer.close();
    }
}

impl<B: Backend> Drop for GroupCommitStore<B> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<B: Backend> Store for GroupCommitStore<B> {
    fn is_initialised(&self) -> Result<bool, StoreError> {
        self.backend.read(txn::is_initialised)
    }

    fn initialise(&self, admin: NewUser, key: KeyRecord, now_ms: u64) -> Result<(), StoreError> {
        self.writer
            .write(move |ctx| txn::initialise(ctx, &admin, &key, now_ms))
    }

    fn recover_admin_code(
        &self,
        user: String,
        code: CodeIssue,
        reason: String,
        now_ms: u64,
    ) -> StoreResult<AdminOutput> {
        let result = self
            .writer
            .write(move |ctx| txn::recover_admin_code(ctx, &user, &code, &reason, now_ms));
        // As for `admin`: a refusal changes no state.
        if matches!(result, Ok(Ok(_))) {
            self.generation.fetch_add(1, Ordering::Release);
        }
        result
    }

    fn device_with_user(
        &self,
        device_id: &str,
    ) -> Result<Option<(DeviceRecord, UserRecord)>, StoreError> {
        let device_id = device_id.to_owned();
        self.backend
            .read(move |conn| txn::device_with_user(conn, &device_id))
    }

    fn append_audit(&self, draft: AuditDraft) -> Result<(), StoreError> {
        self.writer.write(move |ctx| ctx.audit(draft))
    }

    fn enroll(&self, input: EnrollInput, now_ms: u64) -> StoreResult<UserRecord> {
        self.writer
            .write(move |ctx| txn::enroll(ctx, input, now_ms))
    }

    fn grant(&self, input: GrantInput, now_ms: u64, done: GrantDone) {
        self.writer
            .submit(move |ctx| txn::grant(ctx, input, now_ms), done);
    }

    fn usage_event(
        &self,
        input: EventInput,
        now_ms: u64,
    ) -> StoreResult<irm_core::protocol::ExportReceipt> {
        self.writer
            .write(move |ctx| txn::usage_event(ctx, input, now_ms))
    }

    fn register_file(&self, input: RegisterInput, now_ms: u64) -> StoreResult<FileInfo> {
        self.writer
            .write(move |ctx| txn::register_file(ctx, input, now_ms))
    }

    fn admin(&self, actor: &Actor, op: AdminOp, now_ms: u64) -> StoreResult<AdminOutput> {
        let actor = actor.clone();
        let changes_state = op.changes_state();
        let result = self
            .writer
            .write(move |ctx| txn::admin(ctx, &actor, &op, now_ms));
        // After the commit (or its failure, to be safe). Reads and refusals
        // change nothing, so they leave the caches of every request alone:
        // otherwise any signed caller could empty them at will.
        if changes_state && !matches!(result, Ok(Err(_))) {
            self.generation.fetch_add(1, Ordering::Release);
        }
        result
    }

    fn state_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn changes(&self) -> Arc<ChangeLog> {
        Arc::clone(&self.writer.changes)
    }

    fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.backend.read(|conn| conn.keys())
    }

    fn arm_ledger(&self, key: super::contract::StateKey, now_ms: u64) -> Result<(), StoreError> {
        self.writer
            .write(move |ctx| txn::arm_ledger(ctx, key, now_ms))
    }

    fn arm_detection(
        &self,
        rules: crate::detect::Rules,
        hours: std::collections::BTreeMap<String, irm_core::protocol::WorkingHours>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |ctx| txn::arm_detection(ctx, rules, &hours, now_ms))
    }

    fn peer_inputs(&self, since_ms: Vec<u64>) -> Result<crate::detect::PeerInputs, StoreError> {
        self.backend
            .read(move |conn| txn::peer_inputs(conn, &since_ms))
    }

    fn detection_rules(&self) -> Result<crate::detect::Rules, StoreError> {
        self.writer.write(|ctx| Ok(ctx.detector.rules()))
    }

    fn record_peer_firings(
        &self,
        firings: Vec<(String, String)>,
        action: crate::detect::Action,
        quiet_ms: u64,
        now_ms: u64,
    ) -> Result<usize, StoreError> {
        self.writer
            .write(move |ctx| txn::record_peer_firings(ctx, &firings, action, quiet_ms, now_ms))
    }

    fn directory(&self) -> Result<(Vec<String>, Vec<String>), StoreError> {
        self.backend
            .read(|conn| Ok((conn.user_names()?, conn.group_names()?)))
    }

    fn state_problems(&self) -> Result<Vec<String>, StoreError> {
        self.writer.write(txn::ledger_problems)
    }

    fn break_glass(&self) -> Result<Option<super::contract::BreakGlassRow>, StoreError> {
        self.backend.read(|conn| conn.break_glass())
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        self.backend.read(|conn| conn.devices())
    }

    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let head = self.writer.committed()?;
        Ok((head.seq, head.hash))
    }

    fn for_each_audit(&self, f: &mut dyn FnMut(&AuditRecord)) -> Result<(), StoreError> {
        self.backend.for_each_audit(f)
    }

    fn undelivered_alerts(&self, limit: u32) -> Result<Vec<Alert>, StoreError> {
        self.backend
            .read(move |conn| super::alerts::undelivered(conn, limit))
    }

    fn alert_delivery(&self, event: AlertDeliveryEvent, now_ms: u64) -> Result<(), StoreError> {
        self.writer
            .write(move |ctx| super::alerts::delivery(ctx, &event, now_ms))
    }

    fn alert_signal(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.writer.alerts)
    }
}
