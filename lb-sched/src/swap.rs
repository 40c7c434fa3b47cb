//! An atomically swappable, immutable value (a small `ArcSwap` without
//! `unsafe`): the control plane builds a new table off the hot path and
//! publishes it with [`Swappable::store`]; every packet thread keeps a
//! [`SwapReader`] whose [`SwapReader::get`] costs one atomic load while the
//! value is unchanged and takes the lock only once per published change.
//!
//! Readers never block a writer for longer than one `Arc` clone, and a
//! reader keeps the table it holds alive (the old table is freed when its
//! last reader refreshes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Holder of the current `Arc<T>` plus a generation counter.
///
/// ```
/// use std::sync::Arc;
/// use lb_sched::swap::Swappable;
///
/// let shared = Arc::new(Swappable::new(vec![1, 2, 3]));
/// let mut reader = Swappable::reader(&shared); // one per packet thread
/// assert_eq!(reader.get()[0], 1);
/// shared.store(vec![9]); // control plane publishes a rebuilt table
/// assert_eq!(reader.get()[0], 9);
/// ```
#[derive(Debug)]
pub struct Swappable<T> {
    current: Mutex<Arc<T>>,
    generation: AtomicU64,
}

impl<T> Swappable<T> {
    /// A holder publishing `value` as generation 0.
    pub fn new(value: T) -> Self {
        Self {
            current: Mutex::new(Arc::new(value)),
            generation: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Arc<T>> {
        // A panic while holding the lock cannot leave the Arc half-written,
        // so a poisoned lock is still consistent.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publish a new value; readers see it at their next `get`.
    pub fn store(&self, value: T) {
        self.store_arc(Arc::new(value));
    }

    /// Publish an already shared value.
    pub fn store_arc(&self, value: Arc<T>) {
        let mut cur = self.lock();
        *cur = value;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current value (takes the lock; use a [`SwapReader`] on hot paths).
    pub fn load(&self) -> Arc<T> {
        Arc::clone(&self.lock())
    }

    /// Number of values published after the first.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A cached reader for one thread.
    pub fn reader(this: &Arc<Self>) -> SwapReader<T> {
        let cur = this.lock();
        let seen = this.generation.load(Ordering::Acquire);
        SwapReader {
            src: Arc::clone(this),
            cached: Arc::clone(&cur),
            seen,
        }
    }
}

/// A per-thread cached view of a [`Swappable`].
#[derive(Debug)]
pub struct SwapReader<T> {
    src: Arc<Swappable<T>>,
    cached: Arc<T>,
    seen: u64,
}

impl<T> SwapReader<T> {
    /// The newest published value; one atomic load when nothing changed.
    #[inline]
    pub fn get(&mut self) -> &T {
        if self.src.generation.load(Ordering::Acquire) != self.seen {
            self.refresh();
        }
        &self.cached
    }

    #[cold]
    fn refresh(&mut self) {
        let cur = self.src.lock();
        self.seen = self.src.generation.load(Ordering::Acquire);
        self.cached = Arc::clone(&cur);
    }
}

impl<T> Clone for SwapReader<T> {
    fn clone(&self) -> Self {
        Self {
            src: Arc::clone(&self.src),
            cached: Arc::clone(&self.cached),
            seen: self.seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_follow_stores_across_threads() {
        let shared = Arc::new(Swappable::new(0u64));
        let mut handles = Vec::new();
        for _ in 0..2 {
            let mut r = Swappable::reader(&shared);
            handles.push(std::thread::spawn(move || {
                let mut last = 0;
                while last < 100 {
                    let v = *r.get();
                    assert!(v >= last, "values only move forward");
                    last = v;
                    std::thread::yield_now();
                }
            }));
        }
        for v in 1..=100 {
            shared.store(v);
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(shared.generation(), 100);
        assert_eq!(*shared.load(), 100);
    }

    #[test]
    fn old_value_lives_while_a_reader_holds_it() {
        let shared = Arc::new(Swappable::new(String::from("a")));
        let old = shared.load();
        shared.store(String::from("b"));
        assert_eq!(*old, "a");
        assert_eq!(*shared.load(), "b");
    }
}
