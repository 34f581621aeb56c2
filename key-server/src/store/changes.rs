//! The change log of the push channel (PROTOCOL.md §13): what each
//! committed batch changed that an open document may depend on (a person,
//! a device, a file), numbered in commit order. The writer appends a batch
//! only once it is durable; a rolled-back job or batch appends nothing.
//!
//! A watcher subscribes with a cursor (the number the change log had when
//! its grant was decided, or the last it was told) and gets every later
//! change: first those still kept in memory, then each new one as it
//! commits, with no gap between the two. A cursor from another process (a
//! restart, another instance) or older than what is kept cannot be served
//! exactly; the watcher is told to check at once instead. Whether a change
//! still lets the document stay open is never decided here: the client
//! asks for a fresh grant, and the grant decision answers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

/// Batches kept for watchers that subscribe with an older cursor (a few
/// seconds of the busiest writes; the client connects right after its grant).
const KEPT: usize = 4096;
/// Batches a slow watcher may fall behind before it is told to check.
const LIVE_BACKLOG: usize = 1024;

/// Something an open document may depend on, changed by a committed batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Changed {
    /// A person: suspended or restored, held or released, roles, or a
    /// group membership (which changes what their grants may hold).
    User(String),
    /// A device: revoked.
    Device(String),
    /// A file's controls: revoked, restored, expired, restricted.
    File(String),
}

/// One committed batch's changes and its number.
pub type Batch = (u64, Arc<[Changed]>);

/// Where a watcher's subscription starts.
#[derive(Debug)]
pub enum Resume {
    /// These batches came after the cursor; then the receiver goes on.
    From(Vec<Batch>),
    /// The cursor cannot be served exactly (unknown process, too old or
    /// malformed): the watcher must check at once; then the receiver goes on.
    CheckNow,
}

struct Kept {
    /// The number of the newest batch appended (0: none yet).
    last: u64,
    batches: VecDeque<Batch>,
}

/// A watcher's subscription: what it missed, then the live batches.
#[derive(Debug)]
pub struct Subscription {
    /// What came after the watcher's cursor, up to [`Subscription::cursor`].
    pub resume: Resume,
    /// Every batch committed after that.
    pub live: broadcast::Receiver<Batch>,
    /// The cursor at the subscription.
    pub cursor: String,
}

/// The change log of one server process.
pub struct ChangeLog {
    /// Random per process, so a cursor of another process is recognised.
    epoch: u64,
    kept: Mutex<Kept>,
    /// `kept.last`, readable without the lock: every grant reads it.
    last: AtomicU64,
    live: broadcast::Sender<Batch>,
}

impl std::fmt::Debug for ChangeLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeLog")
            .field("epoch", &format_args!("{:016x}", self.epoch))
            .finish_non_exhaustive()
    }
}

impl Default for ChangeLog {
    fn default() -> Self {
        let mut epoch = [0u8; 8];
        // Only distinctness matters: should randomness fail, the start time does.
        let epoch = match getrandom::fill(&mut epoch) {
            Ok(()) => u64::from_le_bytes(epoch),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
        };
        Self {
            epoch,
            kept: Mutex::new(Kept {
                last: 0,
                batches: VecDeque::new(),
            }),
            last: AtomicU64::new(0),
            live: broadcast::channel(LIVE_BACKLOG).0,
        }
    }
}

impl ChangeLog {
    /// The cursor now: every batch appended later is after it.
    pub fn cursor(&self) -> String {
        // Stored after the batch is kept: a value read here is never ahead
        // of what a grant decided after reading it has seen.
        self.cursor_at(self.last.load(Ordering::Acquire))
    }

    /// The cursor just after batch `number` (sent with each batch to a watcher).
    pub fn cursor_at(&self, number: u64) -> String {
        format!("{:016x}.{number}", self.epoch)
    }

    /// Appends a committed batch's changes (none: nothing happens).
    pub(super) fn append(&self, changes: Vec<Changed>) {
        if changes.is_empty() {
            return;
        }
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        kept.last += 1;
        let batch: Batch = (kept.last, changes.into());
        if kept.batches.len() == KEPT {
            kept.batches.pop_front();
        }
        kept.batches.push_back(batch.clone());
        self.last.store(kept.last, Ordering::Release);
        // Under the lock, so a subscriber sees each batch exactly once:
        // either in `kept` or on the receiver. No receiver is not an error.
        let _ = self.live.send(batch);
    }

    /// Subscribes after `cursor`: what came since, then every new batch.
    pub fn subscribe(&self, cursor: Option<&str>) -> Subscription {
        let after = cursor.map(|cursor| self.parse(cursor));
        let Ok(kept) = self.kept.lock() else {
            return Subscription {
                resume: Resume::CheckNow,
                live: self.live.subscribe(),
                cursor: self.cursor_at(0),
            };
        };
        // Under the lock, so no batch falls between `kept` and `live`.
        let live = self.live.subscribe();
        let oldest_kept = kept.batches.front().map_or(kept.last + 1, |b| b.0);
        let resume = match after {
            None => Resume::From(Vec::new()),
            // Batches after `n` are all still kept (or there are none).
            Some(Some(n)) if n <= kept.last && n + 1 >= oldest_kept => Resume::From(
                kept.batches
                    .iter()
                    .filter(|batch| batch.0 > n)
                    .cloned()
                    .collect(),
            ),
            Some(_) => Resume::CheckNow,
        };
        Subscription {
            resume,
            live,
            cursor: self.cursor_at(kept.last),
        }
    }

    /// The batch number of a cursor of this process, if it is one.
    fn parse(&self, cursor: &str) -> Option<u64> {
        let (epoch, number) = cursor.split_once('.')?;
        if epoch.len() != 16 || u64::from_str_radix(epoch, 16).ok()? != self.epoch {
            return None;
        }
        if number.is_empty() || number.len() > 20 || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        number.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: &str) -> Changed {
        Changed::File(id.into())
    }

    #[test]
    fn a_subscriber_gets_what_came_after_its_cursor_then_what_comes_live() {
        let log = ChangeLog::default();
        log.append(vec![file("a")]);
        let cursor = log.cursor();
        log.append(vec![file("b")]);
        log.append(Vec::new()); // nothing changed: no batch
        let subscription = log.subscribe(Some(&cursor));
        assert_eq!(subscription.cursor, log.cursor());
        let mut live = subscription.live;
        let Resume::From(missed) = subscription.resume else {
            panic!("a cursor of this process, still kept, is served exactly")
        };
        assert_eq!(missed.len(), 1);
        assert_eq!(&*missed[0].1, &[file("b")]);
        log.append(vec![file("c"), Changed::User("bob".into())]);
        let (number, changes) = live.try_recv().expect("the new batch arrives live");
        assert_eq!(number, 3);
        assert_eq!(changes.len(), 2);
        assert_eq!(log.cursor_at(number), log.cursor());
    }

    #[test]
    fn a_cursor_this_process_cannot_serve_exactly_means_check_now() {
        let log = ChangeLog::default();
        log.append(vec![file("a")]);
        let other = ChangeLog::default().cursor(); // a restart, another instance
        for cursor in [
            other.as_str(),
            "garbage",
            "",
            &format!("{:016x}.99", log.epoch), // ahead of this process
            &format!("{:016x}.+1", log.epoch),
        ] {
            assert!(
                matches!(log.subscribe(Some(cursor)).resume, Resume::CheckNow),
                "{cursor:?}"
            );
        }
        // Fell out of what is kept.
        let old = log.cursor_at(0);
        for _ in 0..KEPT + 1 {
            log.append(vec![file("x")]);
        }
        assert!(matches!(log.subscribe(Some(&old)).resume, Resume::CheckNow));
        // Up to date: nothing missed.
        let now = log.cursor();
        assert!(matches!(log.subscribe(Some(&now)).resume, Resume::From(v) if v.is_empty()));
        assert!(matches!(log.subscribe(None).resume, Resume::From(v) if v.is_empty()));
    }
}
