//! Snapshot publication (R5): the control thread builds a new immutable [`Snapshot`],
//! stores it under a mutex and bumps an atomic generation; each worker compares the
//! generation once per batch and takes the lock only when it changed.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use parking_lot::Mutex;

use crate::dataplane::Snapshot;

/// The publication point shared by the control thread and the workers.
#[derive(Debug)]
pub struct SnapshotCell {
    generation: AtomicU64,
    current: Mutex<Arc<Snapshot>>,
}

impl SnapshotCell {
    /// A cell holding `first`.
    pub fn new(first: Snapshot) -> Self {
        SnapshotCell {
            generation: AtomicU64::new(first.generation),
            current: Mutex::new(Arc::new(first)),
        }
    }

    /// Publish a new snapshot. The store of the generation is `Release` and happens after
    /// the mutex-protected swap, so a worker that observes the new generation with
    /// `Acquire` and then locks sees (at least) this snapshot.
    pub fn publish(&self, snap: Snapshot) {
        let g = snap.generation;
        *self.current.lock() = Arc::new(snap);
        self.generation.store(g, Ordering::Release);
    }

    /// The current snapshot.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.lock().clone()
    }

    /// Replace `mine` if a newer generation was published; returns true if it swapped.
    /// Costs one `Acquire` load when nothing changed.
    #[inline]
    pub fn refresh(&self, mine: &mut Arc<Snapshot>) -> bool {
        if self.generation.load(Ordering::Acquire) == mine.generation {
            return false;
        }
        *mine = self.load();
        true
    }
}
