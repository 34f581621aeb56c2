//! The push channel's open streams (PROTOCOL.md §13): how many there are,
//! the cap on them, and the signal that ends them all at shutdown. The
//! streams themselves are `api/watch.rs`'s.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

/// The open streams, their cap, and the signal that ends them all at shutdown.
#[derive(Debug)]
pub struct Watchers {
    open: AtomicUsize,
    max: usize,
    closing: watch::Sender<bool>,
}

impl Watchers {
    /// At most `max` streams open at once (0: the channel is off).
    pub fn new(max: usize) -> Self {
        Self {
            open: AtomicUsize::new(0),
            max,
            closing: watch::channel(false).0,
        }
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Ends every stream (shutdown), so that graceful shutdown is not held
    /// up by connections that never finish by themselves.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves (`wait_for(|closing| *closing)`) once the server shuts down.
    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// A place under the cap for one more stream, if there is one.
    pub(crate) fn enter(self: &Arc<Self>) -> Option<Slot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(self)))
    }
}

/// One open stream's place under the cap, given back when the stream drops.
pub(crate) struct Slot(Arc<Watchers>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}
