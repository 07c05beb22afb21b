//! Model-based property tests: random operation sequences run against the queue and
//! against a plain model of client-go's dirty/processing/waiting sets (with a FIFO per
//! priority), on tokio's paused clock so delays cost nothing and land on exact
//! instants.

use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
    time::Duration,
};

use proptest::prelude::*;
use tokio::time::Instant;

use super::*;

const KEYS: &[&str] = &["a", "b", "c", "d"];
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(16);

#[derive(Debug, Clone)]
enum Op {
    Add(&'static str),
    AddAfter(&'static str, Duration),
    AddRateLimited(&'static str),
    AddLow(&'static str),
    AddAfterLow(&'static str, Duration),
    AddRateLimitedLow(&'static str),
    Forget(&'static str),
    /// `get` that must not block.
    Get,
    /// `get` bounded by a timeout; the 1 ms keeps its deadline off every due time.
    GetWait(Duration),
    /// `done` of a key, processing or not.
    Done(&'static str),
    /// `done` of the n-th key currently held by the test, so done usually matters.
    DoneHeld(usize),
    Advance(Duration),
    Shutdown,
}

fn op() -> impl Strategy<Value = Op> {
    let key = || prop::sample::select(KEYS);
    let secs = |max: u64| (0..=max).prop_map(Duration::from_secs);
    prop_oneof![
        6 => key().prop_map(Op::Add),
        3 => (key(), secs(10)).prop_map(|(k, d)| Op::AddAfter(k, d)),
        2 => key().prop_map(Op::AddRateLimited),
        4 => key().prop_map(Op::AddLow),
        2 => (key(), secs(10)).prop_map(|(k, d)| Op::AddAfterLow(k, d)),
        1 => key().prop_map(Op::AddRateLimitedLow),
        1 => key().prop_map(Op::Forget),
        5 => Just(Op::Get),
        2 => secs(20).prop_map(|d| Op::GetWait(d + Duration::from_millis(1))),
        1 => key().prop_map(Op::Done),
        5 => any::<usize>().prop_map(Op::DoneHeld),
        2 => secs(12).prop_map(Op::Advance),
        // Rare, so most sequences exercise the running queue.
        1 => prop::bool::weighted(0.15).prop_map(|stop| if stop { Op::Shutdown } else { Op::Get }),
    ]
}

/// client-go's workqueue semantics, with controller-runtime's priorities, written out
/// plainly.
#[derive(Default, Debug)]
struct Model {
    /// Queued keys at `Normal`, then at `Low`.
    queue: VecDeque<&'static str>,
    low: VecDeque<&'static str>,
    dirty: HashMap<&'static str, Priority>,
    processing: HashSet<&'static str>,
    /// Delayed adds: due time, insertion order (ties go in insertion order), priority.
    waiting: HashMap<&'static str, (Duration, u64, Priority)>,
    sequence: u64,
    failures: HashMap<&'static str, u32>,
    shutting_down: bool,
    /// Time since the start.
    now: Duration,
}

impl Model {
    fn len(&self) -> usize {
        self.queue.len() + self.low.len()
    }

    fn push(&mut self, key: &'static str, priority: Priority) {
        match priority {
            Priority::Normal => self.queue.push_back(key),
            Priority::Low => self.low.push_back(key),
        }
    }

    fn add(&mut self, key: &'static str, priority: Priority) {
        if self.shutting_down {
            return;
        }
        if let Some(queued) = self.dirty.get_mut(key) {
            // A higher priority moves a queued key to the back of its new FIFO.
            if priority > *queued {
                *queued = priority;
                if !self.processing.contains(key) {
                    self.low.retain(|k| *k != key);
                    self.push(key, priority);
                }
            }
            return;
        }
        self.dirty.insert(key, priority);
        if !self.processing.contains(key) {
            self.push(key, priority);
        }
    }

    fn add_after(&mut self, key: &'static str, delay: Duration, priority: Priority) {
        if self.shutting_down {
            return;
        }
        if delay.is_zero() {
            return self.add(key, priority);
        }
        let due = self.now + delay;
        let mut priority = priority;
        if let Some((d, _, p)) = self.waiting.get_mut(key) {
            priority = priority.max(*p);
            if *d <= due {
                *p = priority;
                return;
            }
        }
        self.sequence += 1;
        self.waiting.insert(key, (due, self.sequence, priority));
    }

    fn add_rate_limited(&mut self, key: &'static str, priority: Priority) {
        let failures = self.failures.entry(key).or_default();
        let delay = BACKOFF_BASE
            .checked_mul(1 << (*failures).min(20))
            .unwrap()
            .min(BACKOFF_MAX);
        *failures += 1;
        self.add_after(key, delay, priority);
    }

    /// Time passes. Delayed keys join the queue when they come due, not when a worker
    /// asks (client-go's `waitingLoop`), so `len` counts them at once.
    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.promote();
    }

    /// Moves due delayed keys into the queue, earliest first.
    fn promote(&mut self) {
        let mut due: Vec<_> = self
            .waiting
            .iter()
            .filter(|(_, (d, _, _))| *d <= self.now)
            .map(|(k, (d, s, p))| (*d, *s, *k, *p))
            .collect();
        due.sort();
        for (_, _, key, priority) in due {
            self.waiting.remove(key);
            self.add(key, priority);
        }
    }

    fn take(&mut self) -> Option<(&'static str, Priority)> {
        if !self.shutting_down {
            self.promote();
        }
        let key = self.queue.pop_front().or_else(|| self.low.pop_front())?;
        let priority = self.dirty.remove(key).expect("a queued key is dirty");
        self.processing.insert(key);
        Some((key, priority))
    }

    /// `get` bounded by `limit`: sleeps from one due time to the next until a key is
    /// ready (a due key that is processing is only marked dirty) or the limit passes.
    fn take_within(&mut self, limit: Duration) -> Option<(&'static str, Priority)> {
        let deadline = self.now + limit;
        loop {
            if let Some(key) = self.take() {
                return Some(key);
            }
            if self.shutting_down {
                return None;
            }
            match self.waiting.values().map(|(d, _, _)| *d).min() {
                Some(due) if due <= deadline => self.now = due,
                _ => {
                    self.now = deadline;
                    return None;
                }
            }
        }
    }

    fn done(&mut self, key: &'static str) {
        if self.processing.remove(key)
            && let Some(&priority) = self.dirty.get(key)
        {
            self.push(key, priority);
        }
    }

    fn shutdown(&mut self) {
        self.shutting_down = true;
        self.waiting.clear();
    }
}

/// Model-free bookkeeping: who holds which key, and which adds still owe a delivery.
#[derive(Default)]
struct Ledger {
    held: BTreeSet<&'static str>,
    /// (step of the add, key, whether it was immediate).
    owed: Vec<(usize, &'static str, bool)>,
}

impl Ledger {
    fn handed_out(&mut self, key: &'static str) -> Result<(), TestCaseError> {
        prop_assert!(
            self.held.insert(key),
            "{key} handed out while still processing"
        );
        // A delivery settles every add made before it: the add was merged into it.
        self.owed.retain(|(_, k, _)| *k != key);
        Ok(())
    }
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let queue = WorkQueue::builder("proptest")
        .rate_limiter(ItemExponentialBackoff::new(BACKOFF_BASE, BACKOFF_MAX))
        .build();
    let start = Instant::now();
    let mut model = Model::default();
    let mut ledger = Ledger::default();

    for (step, op) in ops.into_iter().enumerate() {
        let accepting = !model.shutting_down;
        match op {
            Op::Add(k) => {
                queue.add(k);
                model.add(k, Priority::Normal);
            }
            Op::AddAfter(k, d) => {
                queue.add_after(k, d);
                model.add_after(k, d, Priority::Normal);
            }
            Op::AddRateLimited(k) => {
                queue.add_rate_limited(k);
                model.add_rate_limited(k, Priority::Normal);
            }
            Op::AddLow(k) => {
                queue.add_with_priority(k, Priority::Low);
                model.add(k, Priority::Low);
            }
            Op::AddAfterLow(k, d) => {
                queue.add_after_with_priority(k, d, Priority::Low);
                model.add_after(k, d, Priority::Low);
            }
            Op::AddRateLimitedLow(k) => {
                queue.add_rate_limited_with_priority(k, Priority::Low);
                model.add_rate_limited(k, Priority::Low);
            }
            Op::Forget(k) => {
                queue.forget(&k);
                model.failures.remove(k);
            }
            Op::Get | Op::GetWait(_) => {
                let limit = match op {
                    Op::GetWait(d) => d,
                    _ => Duration::ZERO,
                };
                let got = tokio::time::timeout(limit, queue.get_with_priority())
                    .await
                    .ok()
                    .flatten();
                let expected = model.take_within(limit);
                prop_assert_eq!(got, expected, "get after {:?}", start.elapsed());
                if let Some((k, _)) = got {
                    ledger.handed_out(k)?;
                }
            }
            Op::Done(k) => {
                queue.done(&k);
                model.done(k);
                ledger.held.remove(k);
            }
            Op::DoneHeld(n) => {
                if let Some(&k) = ledger.held.iter().nth(n % ledger.held.len().max(1)) {
                    queue.done(&k);
                    model.done(k);
                    ledger.held.remove(k);
                }
            }
            Op::Advance(d) => {
                tokio::time::advance(d).await;
                model.advance(d);
            }
            Op::Shutdown => {
                queue.shutdown();
                model.shutdown();
            }
        }
        if let Op::Add(k)
        | Op::AddAfter(k, _)
        | Op::AddRateLimited(k)
        | Op::AddLow(k)
        | Op::AddAfterLow(k, _)
        | Op::AddRateLimitedLow(k) = op
            && accepting
        {
            let immediate = matches!(
                op,
                Op::Add(_)
                    | Op::AddAfter(_, Duration::ZERO)
                    | Op::AddLow(_)
                    | Op::AddAfterLow(_, Duration::ZERO)
            );
            ledger.owed.push((step, k, immediate));
        }
        prop_assert_eq!(start.elapsed(), model.now, "the clock after {:?}", op);
        prop_assert_eq!(queue.len(), model.len(), "len after {:?}", op);
        prop_assert!(queue.len() <= KEYS.len(), "a key counted twice");
        prop_assert_eq!(queue.is_shutting_down(), model.shutting_down);
        for k in KEYS {
            prop_assert_eq!(
                queue.num_requeues(k),
                model.failures.get(k).copied().unwrap_or(0)
            );
        }
    }

    // Finish: workers finish what they hold and keep taking until nothing more comes.
    for k in std::mem::take(&mut ledger.held) {
        queue.done(&k);
        model.done(k);
    }
    let limit = Duration::from_secs(3600);
    loop {
        let got = tokio::time::timeout(limit, queue.get_with_priority())
            .await
            .ok()
            .flatten();
        prop_assert_eq!(got, model.take_within(limit));
        let Some((k, _)) = got else { break };
        ledger.handed_out(k)?;
        queue.done(&k);
        model.done(k);
        ledger.held.remove(k);
    }
    if model.shutting_down {
        // Delayed keys are dropped at shutdown by design; plain adds are not.
        ledger.owed.retain(|(_, _, immediate)| *immediate);
        prop_assert_eq!(
            start.elapsed(),
            model.now,
            "a shut down queue returns at once"
        );
    }
    prop_assert!(
        ledger.owed.is_empty(),
        "adds never delivered: {:?}",
        ledger.owed
    );
    prop_assert!(queue.is_empty());
    Ok(())
}

fn run_paused(ops: Vec<Op>) -> Result<(), TestCaseError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(run(ops))
}

/// Cases the property once failed on, kept as plain tests.
#[test]
fn regressions() {
    let ms = Duration::from_millis;
    let cases = [
        // A delayed key counts in `len` as soon as it is due, without a `get`.
        vec![Op::AddRateLimited("a"), Op::Advance(BACKOFF_BASE)],
        // A `get` whose deadline is exactly a due time gets the key, whether or not the
        // waiting loop ran first.
        vec![
            Op::AddRateLimited("a"),
            Op::GetWait(ms(1)),
            Op::AddAfter("b", Duration::from_secs(9)),
            Op::GetWait(ms(1001)),
            Op::GetWait(ms(8001)),
        ],
    ];
    for ops in cases {
        run_paused(ops.clone()).unwrap_or_else(|e| panic!("{ops:?}: {e}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matches_the_model_and_loses_nothing(ops in prop::collection::vec(op(), 1..80)) {
        run_paused(ops)?;
    }
}
