//! The work queue: keys to reconcile, deduplicated, never handed to two workers at once.
//!
//! Semantics follow client-go's `util/workqueue`, which controller authors already rely
//! on:
//! - a key is either *dirty* (waiting in the queue), *processing* (handed out by
//!   [`WorkQueue::get`], not yet [`WorkQueue::done`]), both, or neither;
//! - [`add`](WorkQueue::add) of a dirty key does nothing, so a burst of events for one
//!   object collapses into one reconcile;
//! - a key added while it is processing is queued again only when its worker calls
//!   `done`, so no key is ever processed concurrently;
//! - [`add_after`](WorkQueue::add_after) delays an add; for a key delayed twice, the
//!   earlier time wins. A delayed key joins the queue when it comes due, whether or not
//!   a worker is asking (see [Delayed keys](#delayed-keys));
//! - [`add_rate_limited`](WorkQueue::add_rate_limited) asks the [`RateLimiter`] for the
//!   delay, [`forget`](WorkQueue::forget) clears the key's failure history;
//! - after [`shutdown`](WorkQueue::shutdown), adds are ignored and `get` returns the keys
//!   still queued, then `None`; [`shutdown_with_drain`](WorkQueue::shutdown_with_drain)
//!   also waits until no key is processing (not for keys still queued), and a `shutdown`
//!   while it waits ends the wait, as a second SIGTERM would in client-go.
//!
//! # Priorities
//!
//! Every add has a [`Priority`]: [`Normal`](Priority::Normal) for the plain methods,
//! or the one given to [`add_with_priority`](WorkQueue::add_with_priority) and its
//! delayed and rate-limited variants. [`get`](WorkQueue::get) hands out every ready
//! `Normal` key before any [`Low`](Priority::Low) one, first in first out within a
//! priority. This is controller-runtime's priority queue (its default since v0.23),
//! with two levels: controllers add the keys of objects they merely *list* (an
//! informer's initial list) at `Low`, so a real change made while thousands of listed
//! objects wait is reconciled at once rather than after all of them.
//!
//! Priorities change only what waits behind what; the rules above hold across them.
//! One key is queued once, whatever the priorities of its adds, at the highest of
//! them: a `Normal` add of a key queued at `Low` raises it, moving it to the back of
//! the `Normal` keys (as if added there now); a `Low` add of a queued key does nothing.
//! A key added while processing is queued at `done` with the highest priority it was
//! added with meanwhile. A delayed key keeps the earliest due time and the highest
//! priority of its delayed adds. [`len`](WorkQueue::len) and `workqueue_depth` count
//! the keys of both priorities. A queue only ever given `Normal` adds is client-go's
//! FIFO queue, with no extra allocation per operation.
//!
//! # Delayed keys
//!
//! Delayed keys wait in a min-heap by due time. Like client-go's `waitingLoop`
//! goroutine, a background tokio task (started by the first delayed add on a runtime,
//! ended when no key is waiting) sleeps until the earliest due time and moves the keys
//! that are due into the queue, so [`len`](WorkQueue::len) and `workqueue_depth` count
//! them even while every worker is busy. `len` and `get` also move due keys themselves,
//! and a worker blocked in `get` also wakes at the earliest due time it saw, so what they
//! see never depends on when that task last ran (outside a tokio runtime, where no task
//! can start, that is what moves delayed keys). Plain `add`, `get` and `done` never touch
//! the heap or the clock for it while no key is delayed.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use kube_reconcile::queue::WorkQueue;
//!
//! let queue = WorkQueue::<String>::new("example");
//! queue.add("default/web".to_string());
//! queue.add("default/web".to_string()); // already queued: collapses into one
//! let key = queue.get().await.unwrap();
//! queue.add(key.clone()); // processing: queued again only after done
//! assert_eq!(queue.len(), 0);
//! queue.done(&key);
//! assert_eq!(queue.len(), 1);
//! # }
//! ```

mod metrics;
mod rate_limit;

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, VecDeque, hash_map::Entry},
    fmt,
    hash::Hash,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

pub use metrics::{NoopQueueMetrics, QueueMetrics, QueueMetricsProvider};
pub use rate_limit::{
    BoxRateLimiter, ItemExponentialBackoff, ItemFastSlow, MaxOf, RateLimiter, TokenBucket,
    WithMaxWait, client_go_default, default_rate_limiter,
};

/// What a queue key must be: cheap to clone (an `Arc` inside is ideal), hashable, and
/// shareable across workers.
pub trait QueueKey: Clone + Eq + Hash + Send + Sync + 'static {}
impl<T: Clone + Eq + Hash + Send + Sync + 'static> QueueKey for T {}

/// How urgently a queued key should be worked on; see [Priorities](self#priorities).
/// Ordered: `Low < Normal`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Work that is not a reaction to a change: the keys of objects an informer
    /// listed when it started. Handed out only when no `Normal` key is ready.
    Low,
    /// Everything else (the default).
    #[default]
    Normal,
}

/// The `dirty` value of a key queued (or to be queued at `done`) at `Normal`. [`CLEAN`]
/// marks a key not dirty; any other value is the stamp of the key's `Low` entry.
const NORMAL: u64 = 0;
/// The `dirty` value of a key that is processing and was not added since.
const CLEAN: u64 = u64::MAX;

/// A rate-limited, delaying work queue of keys. Cloning gives another handle to the
/// same queue. See the [module docs](self) for the semantics.
pub struct WorkQueue<K: QueueKey> {
    inner: Arc<Inner<K>>,
}

impl<K: QueueKey> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K: QueueKey> fmt::Debug for WorkQueue<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("WorkQueue")
            .field("name", &self.inner.name)
            .field("queued", &state.queued())
            .field("processing", &state.processing)
            .field("waiting", &state.waiting_keys.len())
            .field("shutting_down", &state.shutting_down)
            .finish()
    }
}

struct Inner<K> {
    name: String,
    state: Mutex<State<K>>,
    /// Wakes workers blocked in `get`.
    ready: Notify,
    /// Wakes `shutdown_with_drain` when the last processing key is done.
    drained: Notify,
    /// Wakes the waiting loop when a key is delayed to a new earliest time, at shutdown,
    /// and when the queue is dropped. Shared so the loop can wait on it without keeping
    /// the queue alive.
    timer: Arc<Notify>,
    rate_limiter: BoxRateLimiter<K>,
    /// What [`Stamp`]s count from.
    epoch: Instant,
    /// `None` skips every clock read that only metrics need.
    metrics: Option<Arc<dyn QueueMetrics>>,
}

struct State<K> {
    /// The keys queued at `Normal`, in order.
    queue: VecDeque<K>,
    /// The keys queued at `Low`, in order, each with the stamp it was added with. An
    /// entry is live while `dirty` maps its key to its stamp; a key raised to `Normal`
    /// leaves a stale entry here, skipped when it comes up, so a raise costs O(1).
    low: VecDeque<(K, u64)>,
    /// Live entries in `low`.
    low_queued: usize,
    /// The last stamp given to a `Low` add (stamps start at 1; 0 is [`NORMAL`]).
    low_stamp: u64,
    /// Every key that is dirty (added and not yet handed out), processing, or both, in
    /// one map, so that each of add, get and done looks its key up once (done of a key
    /// not added again, the common case, removes it with that one lookup).
    keys: HashMap<K, Slot, Hasher>,
    /// Keys processing (the slots whose `processing` is set).
    processing: usize,
    /// Delayed adds: a min-heap of (due, sequence), the key and priority of each live
    /// sequence, and the live entry of each key. Heap entries without a live sequence
    /// are stale.
    waiting: BinaryHeap<Reverse<(Instant, u64)>>,
    waiting_by_sequence: HashMap<u64, (K, Priority)>,
    waiting_keys: HashMap<K, (Instant, u64), Hasher>,
    sequence: u64,
    /// Workers blocked in `get`; adds notify only when there is one.
    waiters: usize,
    /// Whether the waiting loop task is running; if not, `add_after` starts one or,
    /// outside a runtime, wakes blocked workers to recompute their sleep.
    waiting_loop: bool,
    shutting_down: bool,
    /// Whether `shutdown_with_drain` is waiting and no `shutdown` has cut it short.
    drain: bool,
}

/// What the queue knows of a key that is dirty, processing, or both.
struct Slot {
    /// [`CLEAN`] if the key is not dirty; otherwise its priority: [`NORMAL`] or the stamp
    /// of its `Low` entry (for a processing key, of the entry `done` will push).
    dirty: u64,
    /// Whether a worker has the key (handed out by `get`, not yet `done`).
    processing: bool,
    /// When the worker took it, when metrics are on.
    started: Stamp,
    /// When it was last added while not dirty, when metrics are on.
    added_at: Stamp,
}

/// An optional time in 8 bytes rather than 16, to keep [`Slot`]s small: nanoseconds
/// since the queue's `epoch`, plus one; 0 for none. Set only when metrics are on.
#[derive(Clone, Copy, Default)]
struct Stamp(u64);

impl Stamp {
    const NONE: Stamp = Stamp(0);

    fn at(epoch: Instant, at: Option<Instant>) -> Stamp {
        at.map_or(Stamp::NONE, |at| {
            let nanos = at.saturating_duration_since(epoch).as_nanos();
            Stamp(u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1)
        })
    }

    fn instant(self, epoch: Instant) -> Option<Instant> {
        (self.0 != 0).then(|| epoch + Duration::from_nanos(self.0 - 1))
    }
}

/// Keys are hashed on every operation; SipHash's DoS resistance buys nothing for keys
/// that come from the API server, and costs a large share of an add/get/done cycle.
type Hasher = foldhash::fast::RandomState;

/// The `dirty` value of an add at `priority`.
fn next_dirty(low_stamp: &mut u64, priority: Priority) -> u64 {
    match priority {
        Priority::Normal => NORMAL,
        Priority::Low => {
            *low_stamp += 1;
            *low_stamp
        }
    }
}

impl<K> State<K> {
    /// Keys queued and ready, of both priorities.
    fn queued(&self) -> usize {
        self.queue.len() + self.low_queued
    }

    /// Queues a dirty key that is not processing, by its `dirty` value.
    fn push(&mut self, key: K, slot: u64) {
        if slot == NORMAL {
            self.queue.push_back(key);
        } else {
            self.low.push_back((key, slot));
            self.low_queued += 1;
        }
    }
}

impl<K> Drop for Inner<K> {
    fn drop(&mut self) {
        // Lets a waiting loop sleeping on the timer see the queue is gone and end.
        self.timer.notify_one();
    }
}

impl<K> Inner<K> {
    fn lock(&self) -> MutexGuard<'_, State<K>> {
        // A panic while holding the lock cannot leave the sets half-updated in a way
        // that matters more than stopping every worker would.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: QueueKey> WorkQueue<K> {
    /// A queue with the default rate limiter ([`default_rate_limiter`]) and no metrics.
    pub fn new(name: impl Into<String>) -> Self {
        Self::builder(name).build()
    }

    /// Starts building a queue with a chosen rate limiter and metrics.
    pub fn builder(name: impl Into<String>) -> WorkQueueBuilder<K> {
        WorkQueueBuilder {
            name: name.into(),
            rate_limiter: None,
            metrics: None,
        }
    }

    /// The queue's name, used as the `name` label of its metrics.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Marks `key` as needing work, at [`Priority::Normal`]. Does nothing if it is
    /// already queued (but raises it if it is queued at `Low`) or the queue is shutting
    /// down; if it is processing, it is queued again when it is done.
    pub fn add(&self, key: K) {
        self.add_with_priority(key, Priority::Normal);
    }

    /// [`add`](Self::add) at `priority`: a key already queued keeps its place unless
    /// this raises its priority (see [Priorities](self#priorities)).
    pub fn add_with_priority(&self, key: K, priority: Priority) {
        let mut state = self.inner.lock();
        self.add_locked(&mut state, key, priority);
    }

    fn add_locked(&self, state: &mut State<K>, key: K, priority: Priority) {
        if state.shutting_down {
            return;
        }
        // Counts an add that is not a no-op; the time it was added, when metrics are on.
        let added = || {
            let at = self.inner.metrics.as_ref().map(|metrics| {
                metrics.added();
                Instant::now()
            });
            Stamp::at(self.inner.epoch, at)
        };
        match state.keys.entry(key) {
            Entry::Occupied(mut entry) => {
                let slot = entry.get_mut();
                if slot.dirty == CLEAN {
                    // Processing and not added since: queued again at `done`.
                    slot.dirty = next_dirty(&mut state.low_stamp, priority);
                    slot.added_at = added();
                } else if priority == Priority::Normal && slot.dirty != NORMAL {
                    // Raised: its `Low` entry goes stale; a processing key has none yet.
                    slot.dirty = NORMAL;
                    if !slot.processing {
                        state.low_queued -= 1;
                        state.queue.push_back(entry.key().clone());
                    }
                }
            }
            Entry::Vacant(entry) => {
                let dirty = next_dirty(&mut state.low_stamp, priority);
                let key = entry.key().clone();
                entry.insert(Slot {
                    dirty,
                    processing: false,
                    started: Stamp::NONE,
                    added_at: added(),
                });
                state.push(key, dirty);
                self.report_depth(state);
                self.wake_one(state);
            }
        }
    }

    fn wake_one(&self, state: &State<K>) {
        if state.waiters > 0 {
            self.inner.ready.notify_one();
        }
    }

    /// Adds `key` after `delay`. If the key is already waiting, the earlier time wins.
    /// A zero delay adds at once.
    pub fn add_after(&self, key: K, delay: Duration) {
        self.add_after_with_priority(key, delay, Priority::Normal);
    }

    /// [`add_after`](Self::add_after) at `priority`. A key delayed twice keeps the
    /// earlier time and the higher priority.
    pub fn add_after_with_priority(&self, key: K, delay: Duration, priority: Priority) {
        let mut state = self.inner.lock();
        if state.shutting_down {
            return;
        }
        if delay.is_zero() {
            self.add_locked(&mut state, key, priority);
            return;
        }
        let due = Instant::now() + delay;
        let mut priority = priority;
        if let Some(&(existing, sequence)) = state.waiting_keys.get(&key) {
            let waiting = state.waiting_by_sequence.get_mut(&sequence);
            if let Some((_, waiting_priority)) = waiting {
                priority = priority.max(*waiting_priority);
                if existing <= due {
                    *waiting_priority = priority;
                    return;
                }
            }
        }
        state.sequence += 1;
        let sequence = state.sequence;
        if let Some((_, superseded)) = state.waiting_keys.insert(key.clone(), (due, sequence)) {
            state.waiting_by_sequence.remove(&superseded);
        }
        state.waiting_by_sequence.insert(sequence, (key, priority));
        state.waiting.push(Reverse((due, sequence)));
        if state.waiting_loop {
            // The loop sleeps until the earliest due time: wake it only if that moved.
            let earliest = state
                .waiting
                .peek()
                .is_some_and(|Reverse((_, first))| *first == sequence);
            if earliest {
                self.inner.timer.notify_one();
            }
        } else if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            state.waiting_loop = true;
            drop(state);
            // Spawned without the lock: a runtime shutting down drops the task at once,
            // and its guard then takes the lock to clear `waiting_loop`.
            let running = LoopRunning(Some(Arc::downgrade(&self.inner)));
            runtime.spawn(waiting_loop(running, self.inner.timer.clone()));
        } else {
            // No runtime for the loop: a worker may be sleeping until a later due time,
            // let it recompute.
            self.inner.ready.notify_waiters();
        }
    }

    /// Adds `key` after the delay the rate limiter gives it (its next backoff step),
    /// and returns that delay.
    pub fn add_rate_limited(&self, key: K) -> Duration {
        self.add_rate_limited_with_priority(key, Priority::Normal)
    }

    /// [`add_rate_limited`](Self::add_rate_limited) at `priority`, e.g. the priority
    /// the failed key was handed out with.
    pub fn add_rate_limited_with_priority(&self, key: K, priority: Priority) -> Duration {
        let delay = self.inner.rate_limiter.when(&key);
        if let Some(metrics) = &self.inner.metrics {
            metrics.retried();
        }
        self.add_after_with_priority(key, delay, priority);
        delay
    }

    /// Clears the rate limiter's failure history of `key` (call after a success).
    /// It does not remove the key from the queue.
    pub fn forget(&self, key: &K) {
        self.inner.rate_limiter.forget(key);
    }

    /// How many times `key` was rate-limited since it was last forgotten.
    pub fn num_requeues(&self, key: &K) -> u32 {
        self.inner.rate_limiter.num_requeues(key)
    }

    /// Waits for a key to work on and marks it processing; the caller must call
    /// [`done`](Self::done) with it. Returns `None` once the queue is shut down and
    /// empty (delayed keys not yet due are dropped at shutdown). `Normal` keys come
    /// before `Low` ones, each in the order they were queued.
    pub async fn get(&self) -> Option<K> {
        self.get_with_priority().await.map(|(key, _)| key)
    }

    /// [`get`](Self::get), with the priority the key was queued at (to re-add it at
    /// the same priority if its work fails, as controllers do).
    pub async fn get_with_priority(&self) -> Option<(K, Priority)> {
        // Fast path: a key is ready, no wake-up registration needed.
        {
            let mut state = self.inner.lock();
            if let Some(key) = self.take_locked(&mut state) {
                return Some(key);
            }
        }
        loop {
            let notified = self.inner.ready.notified();
            tokio::pin!(notified);
            // Register before looking, so an add between the look and the wait is seen.
            notified.as_mut().enable();
            let next_due = {
                let mut state = self.inner.lock();
                if let Some(key) = self.take_locked(&mut state) {
                    return Some(key);
                }
                if state.shutting_down {
                    return None;
                }
                state.waiters += 1;
                // The waiting loop moves due keys in and wakes a worker; sleeping until
                // the earliest due time as well means a `get` whose deadline is that
                // instant gets the key whether or not the loop has run yet.
                state.waiting.peek().map(|Reverse((due, _))| *due)
            };
            let _waiting = WaiterGuard(self);
            match next_due {
                Some(due) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Moves delayed keys that are due into the queue, earliest first (ties in the
    /// order they were delayed). Reads the clock only when some key is delayed.
    fn promote_due_locked(&self, state: &mut State<K>) {
        if state.waiting.is_empty() || state.shutting_down {
            return;
        }
        let now = Instant::now();
        while let Some(&Reverse((due, sequence))) = state.waiting.peek() {
            if due > now {
                break;
            }
            state.waiting.pop();
            // Entries superseded by an earlier add_after of the same key are stale.
            if let Some((key, priority)) = state.waiting_by_sequence.remove(&sequence) {
                state.waiting_keys.remove(&key);
                self.add_locked(state, key, priority);
            }
        }
    }

    /// Pops the next key, `Normal` before `Low`, first moving delayed keys that are due
    /// into the queue.
    fn take_locked(&self, state: &mut State<K>) -> Option<(K, Priority)> {
        self.promote_due_locked(state);
        let (key, priority, slot) = match state.queue.pop_front() {
            Some(key) => {
                let slot = state.keys.get_mut(&key).expect("a queued key has a slot");
                (key, Priority::Normal, slot)
            }
            None => loop {
                let (key, stamp) = state.low.pop_front()?;
                // Stale entries (of keys raised since) are dropped as they come up.
                if let Some(slot) = state.keys.get_mut(&key)
                    && slot.dirty == stamp
                {
                    state.low_queued -= 1;
                    break (key, Priority::Low, slot);
                }
            },
        };
        slot.dirty = CLEAN;
        slot.processing = true;
        if let Some(metrics) = &self.inner.metrics {
            let now = Instant::now();
            let added_at = std::mem::take(&mut slot.added_at).instant(self.inner.epoch);
            metrics.started(added_at.map(|t| now - t).unwrap_or_default());
            slot.started = Stamp::at(self.inner.epoch, Some(now));
        }
        state.processing += 1;
        self.report_depth(state);
        Some((key, priority))
    }

    /// Marks `key` finished. If it was added while processing, it is queued again.
    pub fn done(&self, key: &K) {
        let mut guard = self.inner.lock();
        let state = &mut *guard;
        // One lookup in the common case: the key leaves the map, unless it was added
        // while processing (or is not processing at all), when it goes back in.
        let Some((owned, mut slot)) = state.keys.remove_entry(key) else {
            return;
        };
        if !slot.processing {
            state.keys.insert(owned, slot);
            return;
        }
        state.processing -= 1;
        if let Some(metrics) = &self.inner.metrics
            && let Some(started) = std::mem::take(&mut slot.started).instant(self.inner.epoch)
        {
            metrics.finished(started.elapsed());
        }
        if slot.dirty != CLEAN {
            let dirty = slot.dirty;
            slot.processing = false;
            state.keys.insert(owned, slot);
            state.push(key.clone(), dirty);
            self.report_depth(state);
            self.wake_one(state);
        }
        if state.drain && state.processing == 0 {
            self.inner.drained.notify_waiters();
        }
    }

    /// Keys queued and ready to be handed out: added keys and delayed keys that have
    /// come due; not keys still delayed, nor processing keys (one added again counts
    /// from its `done`). This is client-go's `Len` and the `workqueue_depth` metric.
    pub fn len(&self) -> usize {
        let mut state = self.inner.lock();
        self.promote_due_locked(&mut state);
        state.queued()
    }

    /// Whether no key is queued and ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.lock().shutting_down
    }

    /// Stops accepting keys, drops delayed keys not yet due and wakes every waiting
    /// worker; queued keys are still handed out, then `get` returns `None`. Does not wait
    /// for processing keys, and ends the wait of a running
    /// [`shutdown_with_drain`](Self::shutdown_with_drain).
    pub fn shutdown(&self) {
        self.shut_down(false);
    }

    /// Like [`shutdown`](Self::shutdown), then waits until no key is processing, as
    /// client-go's `ShutDownWithDrain`: keys still queued are not waited for (workers
    /// keep taking them from `get`). A `shutdown` call meanwhile ends the wait at once.
    pub async fn shutdown_with_drain(&self) {
        self.shut_down(true);
        loop {
            let drained = self.inner.drained.notified();
            tokio::pin!(drained);
            // Register before looking, so a `done` between the look and the wait is seen.
            drained.as_mut().enable();
            {
                let state = self.inner.lock();
                if !state.drain || state.processing == 0 {
                    return;
                }
            }
            drained.await;
        }
    }

    fn shut_down(&self, drain: bool) {
        let mut state = self.inner.lock();
        state.shutting_down = true;
        state.drain = drain;
        state.waiting.clear();
        state.waiting_by_sequence.clear();
        state.waiting_keys.clear();
        drop(state);
        self.inner.ready.notify_waiters();
        self.inner.drained.notify_waiters();
        self.inner.timer.notify_one();
    }

    fn report_depth(&self, state: &State<K>) {
        if let Some(metrics) = &self.inner.metrics {
            metrics.depth(state.queued());
        }
    }

    /// Reports the seconds of work in progress and the longest-running key.
    fn report_unfinished_work(inner: &Inner<K>) {
        let Some(metrics) = &inner.metrics else {
            return;
        };
        let state = inner.lock();
        let now = Instant::now();
        let (mut total, mut longest) = (0.0_f64, 0.0_f64);
        let started = state.keys.values();
        for started in started.filter_map(|slot| slot.started.instant(inner.epoch)) {
            let seconds = (now - started).as_secs_f64();
            total += seconds;
            longest = longest.max(seconds);
        }
        metrics.unfinished_work(total, longest);
    }
}

/// Counts a worker blocked in `get` until it wakes or its future is dropped.
struct WaiterGuard<'a, K: QueueKey>(&'a WorkQueue<K>);

impl<K: QueueKey> Drop for WaiterGuard<'_, K> {
    fn drop(&mut self) {
        self.0.inner.lock().waiters -= 1;
    }
}

/// Builds a [`WorkQueue`]; made by [`WorkQueue::builder`].
#[must_use]
pub struct WorkQueueBuilder<K> {
    name: String,
    rate_limiter: Option<BoxRateLimiter<K>>,
    metrics: Option<Arc<dyn QueueMetricsProvider>>,
}

impl<K> fmt::Debug for WorkQueueBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkQueueBuilder")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K: QueueKey> WorkQueueBuilder<K> {
    /// The limiter that [`WorkQueue::add_rate_limited`] consults.
    pub fn rate_limiter(mut self, limiter: impl RateLimiter<K> + 'static) -> Self {
        self.rate_limiter = Some(Box::new(limiter));
        self
    }

    /// Reports client-go's `workqueue_*` metrics through `provider`. The
    /// unfinished-work gauges are refreshed every 500 ms by a task on the current tokio
    /// runtime (none is started outside a runtime).
    pub fn metrics(mut self, provider: Arc<dyn QueueMetricsProvider>) -> Self {
        self.metrics = Some(provider);
        self
    }

    /// Builds the queue.
    pub fn build(self) -> WorkQueue<K> {
        let metrics = self.metrics.map(|p| p.queue_metrics(&self.name));
        let inner = Arc::new(Inner {
            name: self.name,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                low: VecDeque::new(),
                low_queued: 0,
                low_stamp: NORMAL,
                keys: HashMap::default(),
                processing: 0,
                waiting: BinaryHeap::new(),
                waiting_by_sequence: HashMap::new(),
                waiting_keys: HashMap::default(),
                sequence: 0,
                waiters: 0,
                waiting_loop: false,
                shutting_down: false,
                drain: false,
            }),
            ready: Notify::new(),
            drained: Notify::new(),
            timer: Arc::new(Notify::new()),
            rate_limiter: self
                .rate_limiter
                .unwrap_or_else(|| Box::new(default_rate_limiter())),
            epoch: Instant::now(),
            metrics,
        });
        if inner.metrics.is_some()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(unfinished_work_reporter(Arc::downgrade(&inner)));
        }
        WorkQueue { inner }
    }
}

/// client-go's `waitingLoop`: sleeps until the earliest due time (or a wake-up on
/// `timer`), moves the keys that are due into the queue, and ends when no key is
/// delayed, at shutdown, or when the queue is dropped. Started by `add_after`.
async fn waiting_loop<K: QueueKey>(mut running: LoopRunning<K>, timer: Arc<Notify>) {
    loop {
        let woken = timer.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let next_due = {
            let Some(inner) = running.0.as_ref().and_then(Weak::upgrade) else {
                return;
            };
            let queue = WorkQueue { inner };
            let mut state = queue.inner.lock();
            queue.promote_due_locked(&mut state);
            match state.waiting.peek() {
                Some(Reverse((due, _))) if !state.shutting_down => *due,
                _ => {
                    // Decided under the lock, so a concurrent add_after starts a new loop.
                    state.waiting_loop = false;
                    running.0 = None;
                    return;
                }
            }
        };
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep_until(next_due) => {}
        }
    }
}

/// Clears `waiting_loop` if the loop's task is dropped without ending by itself (its
/// runtime shut down, maybe before the task ever ran), so the next `add_after` starts a
/// new one.
struct LoopRunning<K>(Option<Weak<Inner<K>>>);

impl<K> Drop for LoopRunning<K> {
    fn drop(&mut self) {
        if let Some(inner) = self.0.take().and_then(|weak| weak.upgrade()) {
            inner.lock().waiting_loop = false;
        }
    }
}

async fn unfinished_work_reporter<K: QueueKey>(inner: Weak<Inner<K>>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.lock().shutting_down {
            return;
        }
        WorkQueue::report_unfinished_work(&inner);
    }
}

#[cfg(test)]
mod client_go_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
