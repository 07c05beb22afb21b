//! client-go v0.37's own `util/workqueue` tests, restated against this API: each test
//! names the Go test whose intent it checks. The fake clock of the Go tests is tokio's
//! paused clock here.
//!
//! Not ported: `TestFind` (there is no `find`: whether a key is queued or processing is
//! not part of this API); `TestNewNamedRateLimitingWithCustomQueue` plugs in client-go's
//! priority queue, which has no counterpart, so only its rate-limited round trip is
//! checked.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use tokio::time::{Instant, advance};

use super::*;

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);

/// `get` that must not block.
async fn get_now<K: QueueKey>(queue: &WorkQueue<K>) -> Option<K> {
    tokio::time::timeout(Duration::ZERO, queue.get())
        .await
        .ok()
        .flatten()
}

/// Lets spawned tasks on the current-thread runtime run.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

// ---- queue_test.go ----

/// A key that a worker must never be handed: it is added after shutdown.
const LATE: u32 = u32::MAX;

/// TestBasic: 50 producers add their key 50 times each while 10 slow consumers work;
/// after shutdown no later add is handed out and the queue ends empty.
async fn basic(drain: bool) {
    let q = WorkQueue::<u32>::new("basic");
    let late_seen = Arc::new(AtomicBool::new(false));
    let consumers: Vec<_> = (0..10)
        .map(|_| {
            let (q, late_seen) = (q.clone(), late_seen.clone());
            tokio::spawn(async move {
                while let Some(key) = q.get().await {
                    if key == LATE {
                        late_seen.store(true, Ordering::SeqCst);
                    }
                    tokio::time::sleep(3 * MS).await;
                    q.done(&key);
                }
            })
        })
        .collect();
    let producers: Vec<_> = (0..50)
        .map(|i| {
            let q = q.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    q.add(i);
                    tokio::time::sleep(MS).await;
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await.unwrap();
    }
    if drain {
        q.shutdown_with_drain().await;
    } else {
        q.shutdown();
    }
    q.add(LATE);
    for consumer in consumers {
        consumer.await.unwrap();
    }
    assert!(
        !late_seen.load(Ordering::SeqCst),
        "a key added after shutdown"
    );
    assert_eq!(q.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn basic_with_shutdown() {
    basic(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn basic_with_shutdown_with_drain() {
    basic(true).await;
}

/// TestAddWhileProcessing: every consumer adds each key it gets back once while still
/// processing it (the dirty-while-processing path); shutdown still ends empty.
async fn add_while_processing(drain: bool) {
    let q = WorkQueue::<u32>::new("add-while-processing");
    let consumers: Vec<_> = (0..10)
        .map(|_| {
            let q = q.clone();
            tokio::spawn(async move {
                let mut seen = HashMap::<u32, u32>::new();
                while let Some(key) = q.get().await {
                    let count = seen.entry(key).or_default();
                    *count += 1;
                    if *count < 2 {
                        q.add(key);
                    }
                    tokio::task::yield_now().await;
                    q.done(&key);
                }
            })
        })
        .collect();
    let producers: Vec<_> = (0..50)
        .map(|i| {
            let q = q.clone();
            tokio::spawn(async move { q.add(i) })
        })
        .collect();
    for producer in producers {
        producer.await.unwrap();
    }
    if drain {
        q.shutdown_with_drain().await;
    } else {
        q.shutdown();
    }
    for consumer in consumers {
        consumer.await.unwrap();
    }
    assert_eq!(q.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_while_processing_with_shutdown() {
    add_while_processing(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_while_processing_with_shutdown_with_drain() {
    add_while_processing(true).await;
}

/// TestLen.
#[tokio::test]
async fn len_counts_each_queued_key_once() {
    let q = WorkQueue::new("len");
    q.add("foo");
    assert_eq!(q.len(), 1);
    q.add("bar");
    assert_eq!(q.len(), 2);
    q.add("foo");
    assert_eq!(q.len(), 2, "a queued key added again is not counted again");
}

/// TestReinsert.
#[tokio::test]
async fn a_key_added_back_while_processing_is_queued_on_done() {
    let q = WorkQueue::new("reinsert");
    q.add("foo");
    let key = get_now(&q).await.unwrap();
    assert_eq!(key, "foo");
    q.add(key);
    q.done(&key);
    let again = get_now(&q).await.unwrap();
    assert_eq!(again, "foo");
    q.done(&again);
    assert_eq!(q.len(), 0);
}

/// Starts `shutdown_with_drain` on its own task; the flag tells when it returned.
fn spawn_drain<K: QueueKey>(q: &WorkQueue<K>) -> (tokio::task::JoinHandle<()>, Arc<AtomicBool>) {
    let finished = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn({
        let (q, finished) = (q.clone(), finished.clone());
        async move {
            q.shutdown_with_drain().await;
            finished.store(true, Ordering::SeqCst);
        }
    });
    (task, finished)
}

/// Waits for `get` to say the queue is shut down and empty, so the drain surely started.
async fn get_until_shut_down<K: QueueKey>(q: &WorkQueue<K>) {
    let got = tokio::time::timeout(Duration::from_secs(10), q.get())
        .await
        .expect("get returns None once shut down");
    assert!(got.is_none(), "no key was queued");
}

/// TestQueueDrainageUsingShutDownWithDrain.
#[tokio::test(start_paused = true)]
async fn shutdown_with_drain_waits_for_processing_keys() {
    let q = WorkQueue::new("drain");
    q.add("foo");
    q.add("bar");
    let first = get_now(&q).await.unwrap();
    let second = get_now(&q).await.unwrap();
    let (drain, finished) = spawn_drain(&q);
    get_until_shut_down(&q).await;
    tokio::time::sleep(SECOND).await;
    assert!(
        !finished.load(Ordering::SeqCst),
        "two keys still processing"
    );
    q.done(&first);
    settle().await;
    assert!(!finished.load(Ordering::SeqCst), "one key still processing");
    q.done(&second);
    drain.await.unwrap();
}

/// TestNoQueueDrainageUsingShutDown.
#[tokio::test(start_paused = true)]
async fn shutdown_does_not_wait_for_processing_keys() {
    let q = WorkQueue::new("no-drain");
    q.add("foo");
    q.add("bar");
    get_now(&q).await.unwrap();
    get_now(&q).await.unwrap();
    // Returns although neither key is done.
    q.shutdown();
    assert!(q.is_shutting_down());
}

/// TestForceQueueShutdownUsingShutDown: a second signal's `shutdown` ends a drain that
/// waits for keys never to be done.
#[tokio::test(start_paused = true)]
async fn shutdown_ends_a_waiting_shutdown_with_drain() {
    let q = WorkQueue::new("force");
    q.add("foo");
    q.add("bar");
    get_now(&q).await.unwrap();
    get_now(&q).await.unwrap();
    let (drain, finished) = spawn_drain(&q);
    get_until_shut_down(&q).await;
    tokio::time::sleep(SECOND).await;
    assert!(!finished.load(Ordering::SeqCst));
    q.shutdown();
    tokio::time::timeout(SECOND, drain)
        .await
        .expect("shutdown ends the drain")
        .unwrap();
}

/// TestQueueDrainageUsingShutDownWithDrainWithDirtyItem: a key added while processing
/// is queued again by its `done` even during a drain, and handed out.
#[tokio::test(start_paused = true)]
async fn drain_with_a_key_added_while_processing() {
    let q = WorkQueue::new("drain-dirty");
    q.add("foo");
    let gotten = get_now(&q).await.unwrap();
    q.add("foo");
    let (drain, _) = spawn_drain(&q);
    get_until_shut_down(&q).await;
    q.done(&gotten);
    let again = get_now(&q).await;
    assert_eq!(again, Some("foo"), "done queued it again");
    q.done(&"foo");
    assert_eq!(get_now(&q).await, None, "now really shut down and empty");
    drain.await.unwrap();
}

/// TestGarbageCollection: a key that was added, handed out and done is not retained,
/// with or without metrics (which keep per-key timestamps).
#[tokio::test(start_paused = true)]
async fn a_finished_key_is_not_retained() {
    let plain = WorkQueue::<Arc<str>>::new("gc");
    let metered = WorkQueue::<Arc<str>>::builder("gc-metered")
        .metrics(Arc::new(NoopQueueMetrics))
        .build();
    for q in [plain, metered] {
        let key: Arc<str> = Arc::from("big object");
        q.add(key.clone());
        let got = q.get().await.unwrap();
        q.done(&got);
        drop(got);
        assert_eq!(Arc::strong_count(&key), 1, "the queue still holds the key");
        // And through a delayed add, superseded and then due.
        q.add_after(key.clone(), 2 * SECOND);
        q.add_after(key.clone(), SECOND);
        let got = q.get().await.unwrap();
        q.done(&got);
        drop(got);
        advance(5 * SECOND).await;
        settle().await;
        assert_eq!(Arc::strong_count(&key), 1, "the queue still holds the key");
    }
}

// ---- delaying_queue_test.go ----

/// TestSimpleQueue: a delayed key is not counted before it is due, is counted once due
/// without any `get`, and is not added again later.
#[tokio::test(start_paused = true)]
async fn simple_delayed_key() {
    let q = WorkQueue::new("delaying");
    q.add_after("foo", 50 * MS);
    settle().await;
    assert_eq!(q.len(), 0, "not due yet");
    advance(60 * MS).await;
    assert_eq!(q.len(), 1, "due: counted without a get");
    let key = get_now(&q).await.unwrap();
    q.done(&key);
    advance(10 * SECOND).await;
    settle().await;
    assert_eq!(q.len(), 0, "not added a second time");
}

/// TestDeduping: a key delayed twice waits for the earlier time only, whichever order
/// the adds came in; a key delayed while processing is still handed out once more.
#[tokio::test(start_paused = true)]
async fn delayed_adds_of_one_key_dedupe() {
    let q = WorkQueue::new("dedupe");
    q.add_after("foo", 50 * MS);
    q.add_after("foo", 70 * MS);
    assert_eq!(q.len(), 0);
    advance(60 * MS).await;
    assert_eq!(q.len(), 1, "the first time fired");
    let key = get_now(&q).await.unwrap();
    q.done(&key);
    advance(20 * MS).await;
    assert_eq!(q.len(), 0, "the later time was merged into the earlier one");

    q.add_after("foo", 50 * MS);
    q.add_after("foo", 30 * MS);
    assert_eq!(q.len(), 0);
    advance(40 * MS).await;
    assert_eq!(q.len(), 1, "the earlier, second time fired");
    let key = get_now(&q).await.unwrap();
    q.done(&key);
    advance(20 * MS).await;
    assert_eq!(q.len(), 0, "the first, later time was dropped");

    q.add("foo");
    let key = get_now(&q).await.unwrap();
    q.add_after("foo", 5 * MS);
    advance(10 * MS).await;
    assert_eq!(q.len(), 0, "due while processing: queued at done");
    q.done(&key);
    assert_eq!(q.len(), 1);
    assert_eq!(get_now(&q).await, Some("foo"));
}

/// TestAddTwoFireEarly: keys fire in due order, whatever order they were delayed in.
#[tokio::test(start_paused = true)]
async fn two_delayed_keys_fire_in_due_order() {
    let q = WorkQueue::new("fire-early");
    q.add_after("foo", SECOND);
    q.add_after("bar", 50 * MS);
    assert_eq!(q.len(), 0);
    advance(60 * MS).await;
    assert_eq!(q.len(), 1);
    assert_eq!(get_now(&q).await, Some("bar"));

    q.add_after("baz", 2 * SECOND);
    advance(SECOND).await;
    assert_eq!(q.len(), 1);
    assert_eq!(get_now(&q).await, Some("foo"));

    advance(2 * SECOND).await;
    assert_eq!(q.len(), 1);
    assert_eq!(get_now(&q).await, Some("baz"));
}

/// TestCopyShifting: keys due at once are queued earliest first.
#[tokio::test(start_paused = true)]
async fn keys_due_together_queue_earliest_first() {
    let q = WorkQueue::new("copy-shifting");
    q.add_after("foo", SECOND);
    q.add_after("bar", 500 * MS);
    q.add_after("baz", 250 * MS);
    assert_eq!(q.len(), 0);
    advance(2 * SECOND).await;
    assert_eq!(q.len(), 3);
    assert_eq!(get_now(&q).await, Some("baz"));
    assert_eq!(get_now(&q).await, Some("bar"));
    assert_eq!(get_now(&q).await, Some("foo"));
}

/// The point of (a): while every worker is busy, due keys reach `workqueue_depth`
/// through the background waiting loop, with no `get` or `len` call.
#[tokio::test(start_paused = true)]
async fn depth_counts_due_keys_while_workers_are_busy() {
    #[derive(Default)]
    struct Depth(std::sync::atomic::AtomicUsize);
    impl QueueMetrics for Depth {
        fn added(&self) {}
        fn depth(&self, depth: usize) {
            self.0.store(depth, Ordering::SeqCst);
        }
        fn started(&self, _: Duration) {}
        fn finished(&self, _: Duration) {}
        fn retried(&self) {}
        fn unfinished_work(&self, _: f64, _: f64) {}
    }
    struct Provider(Arc<Depth>);
    impl QueueMetricsProvider for Provider {
        fn queue_metrics(&self, _: &str) -> Arc<dyn QueueMetrics> {
            self.0.clone()
        }
    }
    let depth = Arc::new(Depth::default());
    let q = WorkQueue::builder("busy")
        .metrics(Arc::new(Provider(depth.clone())))
        .build();
    q.add("busy");
    let busy = get_now(&q).await.unwrap();
    q.add_after("a", SECOND);
    q.add_after("b", 2 * SECOND);
    q.add_after("c", 3 * SECOND);
    tokio::time::sleep(1500 * MS).await;
    assert_eq!(depth.0.load(Ordering::SeqCst), 1);
    tokio::time::sleep(2 * SECOND).await;
    assert_eq!(depth.0.load(Ordering::SeqCst), 3);
    q.done(&busy);
    assert_eq!(q.len(), 3);
}

// ---- rate_limiting_queue_test.go ----

/// How long a rate-limited add of `key` waits before `get` hands it out.
async fn rate_limited_delay(q: &WorkQueue<&'static str>, key: &'static str) -> Duration {
    let start = Instant::now();
    q.add_rate_limited(key);
    let got = q.get().await.unwrap();
    assert_eq!(got, key);
    q.done(&got);
    start.elapsed()
}

/// TestRateLimitingQueue.
#[tokio::test(start_paused = true)]
async fn rate_limiting_queue_backs_off_per_key_until_forgotten() {
    let q = WorkQueue::builder("rate-limited")
        .rate_limiter(ItemExponentialBackoff::new(MS, SECOND))
        .build();
    assert_eq!(rate_limited_delay(&q, "one").await, MS);
    assert_eq!(rate_limited_delay(&q, "one").await, 2 * MS);
    assert_eq!(q.num_requeues(&"one"), 2);
    assert_eq!(rate_limited_delay(&q, "two").await, MS);
    assert_eq!(rate_limited_delay(&q, "two").await, 2 * MS);
    q.forget(&"one");
    assert_eq!(q.num_requeues(&"one"), 0);
    assert_eq!(rate_limited_delay(&q, "one").await, MS);
}

/// TestNewNamedRateLimitingWithCustomQueue, without the custom (priority) queue: a
/// named queue with client-go's default limiter hands out a rate-limited key.
#[tokio::test(start_paused = true)]
async fn named_queue_with_client_go_default_hands_out_a_rate_limited_key() {
    let q = WorkQueue::builder("cluster")
        .rate_limiter(client_go_default())
        .build();
    assert_eq!(q.name(), "cluster");
    q.add_rate_limited("one");
    assert_eq!(q.get().await, Some("one"));
}

// ---- default_rate_limiters_test.go ----

/// TestItemExponentialFailureRateLimiter.
#[test]
fn item_exponential_backoff() {
    let limiter = ItemExponentialBackoff::new(MS, SECOND);
    for expected in [1, 2, 4, 8, 16] {
        assert_eq!(limiter.when(&"one"), expected * MS);
    }
    assert_eq!(limiter.num_requeues(&"one"), 5);
    assert_eq!(limiter.when(&"two"), MS);
    assert_eq!(limiter.when(&"two"), 2 * MS);
    assert_eq!(limiter.num_requeues(&"two"), 2);
    limiter.forget(&"one");
    assert_eq!(limiter.num_requeues(&"one"), 0);
    assert_eq!(limiter.when(&"one"), MS);
}

/// TestItemExponentialFailureRateLimiterOverFlow.
#[test]
fn item_exponential_backoff_does_not_overflow() {
    let limiter = ItemExponentialBackoff::new(MS, 1000 * SECOND);
    for _ in 0..5 {
        limiter.when(&"one");
    }
    assert_eq!(limiter.when(&"one"), 32 * MS);
    for _ in 0..1000 {
        limiter.when(&"overflow1");
    }
    assert_eq!(limiter.when(&"overflow1"), 1000 * SECOND);

    let minute = 60 * SECOND;
    let limiter = ItemExponentialBackoff::new(minute, 1000 * 60 * minute);
    for _ in 0..2 {
        limiter.when(&"two");
    }
    assert_eq!(limiter.when(&"two"), 4 * minute);
    for _ in 0..1000 {
        limiter.when(&"overflow2");
    }
    assert_eq!(limiter.when(&"overflow2"), 1000 * 60 * minute);
}

/// TestItemFastSlowRateLimiter.
#[test]
fn item_fast_slow() {
    let limiter = ItemFastSlow::new(5 * MS, 10 * SECOND, 3);
    for _ in 0..3 {
        assert_eq!(limiter.when(&"one"), 5 * MS);
    }
    assert_eq!(limiter.when(&"one"), 10 * SECOND);
    assert_eq!(limiter.when(&"one"), 10 * SECOND);
    assert_eq!(limiter.num_requeues(&"one"), 5);
    assert_eq!(limiter.when(&"two"), 5 * MS, "per key");
    assert_eq!(limiter.when(&"two"), 5 * MS);
    assert_eq!(limiter.num_requeues(&"two"), 2);
    limiter.forget(&"one");
    assert_eq!(limiter.num_requeues(&"one"), 0);
    assert_eq!(limiter.when(&"one"), 5 * MS, "fast again after forget");
}

/// TestMaxOfRateLimiter.
#[test]
fn max_of_fast_slow_and_exponential() {
    let limiter = MaxOf::<&str>::new(vec![
        Box::new(ItemFastSlow::new(5 * MS, 3 * SECOND, 3)),
        Box::new(ItemExponentialBackoff::new(MS, SECOND)),
    ]);
    for _ in 0..3 {
        assert_eq!(limiter.when(&"one"), 5 * MS);
    }
    assert_eq!(limiter.when(&"one"), 3 * SECOND);
    assert_eq!(limiter.when(&"one"), 3 * SECOND);
    assert_eq!(limiter.num_requeues(&"one"), 5);
    assert_eq!(limiter.when(&"two"), 5 * MS);
    assert_eq!(limiter.when(&"two"), 5 * MS);
    assert_eq!(limiter.num_requeues(&"two"), 2);
    limiter.forget(&"one");
    assert_eq!(limiter.num_requeues(&"one"), 0);
    assert_eq!(limiter.when(&"one"), 5 * MS);
}

/// A limiter for any key: `base` for its first `threshold` calls overall, then `max`.
struct Step {
    calls: AtomicU32,
    threshold: u32,
    base: Duration,
    max: Duration,
}

impl<K> RateLimiter<K> for Step {
    fn when(&self, _key: &K) -> Duration {
        let calls = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if calls <= self.threshold {
            self.base
        } else {
            self.max
        }
    }
    fn forget(&self, _key: &K) {}
    fn num_requeues(&self, _key: &K) -> u32 {
        0
    }
}

/// TestWithMaxWaitRateLimiter.
#[test]
fn with_max_wait_caps_the_inner_delay() {
    let step = Step {
        calls: AtomicU32::new(0),
        threshold: 100,
        base: 5 * MS,
        max: 1000 * SECOND,
    };
    let limiter = WithMaxWait::new(step, 500 * SECOND);
    for key in 0..100u32 {
        assert_eq!(limiter.when(&key), 5 * MS, "under the cap: unchanged");
    }
    for key in 100..200u32 {
        assert_eq!(limiter.when(&key), 500 * SECOND, "capped");
    }
}

/// `WithMaxWait` forgets and counts through the limiter it wraps.
#[test]
fn with_max_wait_delegates_forget_and_requeues() {
    let limiter = WithMaxWait::new(
        ItemExponentialBackoff::new(SECOND, 1000 * SECOND),
        3 * SECOND,
    );
    let delays: Vec<_> = (0..4).map(|_| limiter.when(&"k")).collect();
    assert_eq!(delays, [SECOND, 2 * SECOND, 3 * SECOND, 3 * SECOND]);
    assert_eq!(limiter.num_requeues(&"k"), 4);
    limiter.forget(&"k");
    assert_eq!(limiter.num_requeues(&"k"), 0);
    assert_eq!(limiter.when(&"k"), SECOND);
}

// ---- the waiting loop's fallbacks (no client-go counterpart) ----

/// A key delayed from a thread with no tokio runtime has no loop to move it: a worker
/// blocked in `get` sleeps until it is due instead.
#[tokio::test]
async fn a_key_delayed_outside_a_runtime_is_still_handed_out() {
    let q = WorkQueue::new("no-runtime");
    std::thread::spawn({
        let q = q.clone();
        move || q.add_after("a", 50 * MS)
    })
    .join()
    .unwrap();
    let got = tokio::time::timeout(5 * SECOND, q.get()).await;
    assert_eq!(got.expect("handed out once due"), Some("a"));
}

/// A loop dropped with its runtime clears its flag: workers still get the key on time,
/// and the next delayed add on a live runtime starts a new loop.
#[test]
fn a_loop_dropped_with_its_runtime_is_replaced() {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    };
    let q = WorkQueue::new("runtimes");
    let first = runtime();
    first.block_on(async {
        q.add_after("a", 50 * MS);
        settle().await;
    });
    assert!(q.inner.lock().waiting_loop, "the first runtime ran a loop");
    drop(first);
    assert!(!q.inner.lock().waiting_loop, "its task was dropped");
    let second = runtime();
    second.block_on(async {
        let got = tokio::time::timeout(5 * SECOND, q.get()).await;
        assert_eq!(got.expect("handed out once due"), Some("a"));
        q.done(&"a");
        q.add_after("b", 50 * MS);
        settle().await;
        assert!(q.inner.lock().waiting_loop, "a new loop");
        tokio::time::sleep(100 * MS).await;
        assert!(!q.inner.lock().waiting_loop, "ended: nothing is delayed");
        assert_eq!(q.len(), 1);
    });
}
