use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;

use super::*;

fn queue() -> WorkQueue<&'static str> {
    WorkQueue::new("test")
}

/// `get` that must not block: the key must already be ready.
async fn get_now(queue: &WorkQueue<&'static str>) -> Option<&'static str> {
    tokio::time::timeout(Duration::ZERO, queue.get())
        .await
        .ok()
        .flatten()
}

#[tokio::test(start_paused = true)]
async fn duplicate_adds_collapse_into_one() {
    let q = queue();
    q.add("a");
    q.add("b");
    q.add("a");
    assert_eq!(q.len(), 2);
    assert_eq!(get_now(&q).await, Some("a"));
    assert_eq!(get_now(&q).await, Some("b"));
    assert_eq!(get_now(&q).await, None);
}

#[tokio::test(start_paused = true)]
async fn a_key_added_while_processing_waits_for_done() {
    let q = queue();
    q.add("a");
    let key = get_now(&q).await.unwrap();
    q.add("a");
    q.add("a");
    assert_eq!(
        get_now(&q).await,
        None,
        "a processing key is never handed out twice"
    );
    q.done(&key);
    assert_eq!(get_now(&q).await, Some("a"), "re-added once after done");
    q.done(&"a");
    assert_eq!(get_now(&q).await, None);
}

#[tokio::test(start_paused = true)]
async fn done_without_re_add_does_not_requeue() {
    let q = queue();
    q.add("a");
    let key = get_now(&q).await.unwrap();
    q.done(&key);
    assert!(q.is_empty());
}

#[tokio::test(start_paused = true)]
async fn get_waits_for_an_add() {
    let q = queue();
    let waiter = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!waiter.is_finished());
    q.add("late");
    assert_eq!(waiter.await.unwrap(), Some("late"));
}

#[tokio::test(start_paused = true)]
async fn add_after_delays_and_the_earlier_time_wins() {
    let q = queue();
    let start = Instant::now();
    q.add_after("a", Duration::from_secs(10));
    q.add_after("a", Duration::from_secs(3));
    q.add_after("a", Duration::from_secs(7));
    assert_eq!(get_now(&q).await, None);
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    q.done(&"a");
    // The superseded 7 s and 10 s entries are gone.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(get_now(&q).await, None);
}

#[tokio::test(start_paused = true)]
async fn add_after_zero_adds_now_and_delayed_keys_keep_their_order() {
    let q = queue();
    q.add_after("b", Duration::from_secs(2));
    q.add_after("a", Duration::from_secs(1));
    q.add_after("now", Duration::ZERO);
    assert_eq!(get_now(&q).await, Some("now"));
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(q.get().await, Some("b"));
}

#[tokio::test(start_paused = true)]
async fn a_delayed_key_that_is_already_queued_is_handed_out_once() {
    let q = queue();
    q.add("a");
    q.add_after("a", Duration::from_secs(1));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(get_now(&q).await, Some("a"));
    assert_eq!(get_now(&q).await, None);
}

#[tokio::test(start_paused = true)]
async fn rate_limited_adds_back_off_exponentially_until_forgotten() {
    let q = queue();
    let mut delays = Vec::new();
    for _ in 0..4 {
        let start = Instant::now();
        q.add_rate_limited("a");
        let key = q.get().await.unwrap();
        delays.push(start.elapsed());
        q.done(&key);
    }
    let ms = Duration::from_millis;
    assert_eq!(delays, [ms(5), ms(10), ms(20), ms(40)]);
    assert_eq!(q.num_requeues(&"a"), 4);
    q.forget(&"a");
    assert_eq!(q.num_requeues(&"a"), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_hands_out_queued_keys_then_none_and_ignores_adds() {
    let q = queue();
    q.add("a");
    q.add_after("later", Duration::from_secs(1));
    let waiter = tokio::spawn({
        let q = q.clone();
        async move {
            let first = q.get().await;
            (first, q.get().await)
        }
    });
    tokio::task::yield_now().await;
    q.shutdown();
    q.add("ignored");
    assert_eq!(waiter.await.unwrap(), (Some("a"), None));
    assert!(q.is_shutting_down());
}

#[tokio::test(start_paused = true)]
async fn shutdown_with_drain_waits_for_processing_keys() {
    let q = queue();
    q.add("a");
    let key = q.get().await.unwrap();
    let drained = Arc::new(AtomicUsize::new(0));
    let drain = tokio::spawn({
        let (q, drained) = (q.clone(), drained.clone());
        async move {
            q.shutdown_with_drain().await;
            drained.fetch_add(1, Ordering::SeqCst);
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        drained.load(Ordering::SeqCst),
        0,
        "a key is still processing"
    );
    q.done(&key);
    drain.await.unwrap();
    assert_eq!(drained.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_workers_never_process_one_key_concurrently() {
    let q = WorkQueue::<u32>::new("contended");
    let in_flight = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let processed = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (q, in_flight, processed) = (q.clone(), in_flight.clone(), processed.clone());
            tokio::spawn(async move {
                while let Some(key) = q.get().await {
                    assert!(in_flight.lock().unwrap().insert(key), "{key} twice at once");
                    tokio::task::yield_now().await;
                    in_flight.lock().unwrap().remove(&key);
                    processed.fetch_add(1, Ordering::SeqCst);
                    q.done(&key);
                }
            })
        })
        .collect();
    for round in 0..2_000u32 {
        q.add(round % 10);
        if round % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    q.shutdown_with_drain().await;
    for worker in workers {
        worker.await.unwrap();
    }
    let processed = processed.load(Ordering::SeqCst);
    assert!((10..=2_000).contains(&processed), "{processed} runs");
}

#[derive(Default)]
struct Recorded {
    adds: AtomicUsize,
    retries: AtomicUsize,
    started: Mutex<Vec<Duration>>,
    finished: Mutex<Vec<Duration>>,
    depth: AtomicUsize,
}

impl QueueMetrics for Recorded {
    fn added(&self) {
        self.adds.fetch_add(1, Ordering::SeqCst);
    }
    fn depth(&self, depth: usize) {
        self.depth.store(depth, Ordering::SeqCst);
    }
    fn started(&self, queued_for: Duration) {
        self.started.lock().unwrap().push(queued_for);
    }
    fn finished(&self, worked_for: Duration) {
        self.finished.lock().unwrap().push(worked_for);
    }
    fn retried(&self) {
        self.retries.fetch_add(1, Ordering::SeqCst);
    }
    fn unfinished_work(&self, _total: f64, _longest: f64) {}
}

struct Provider(Arc<Recorded>);
impl QueueMetricsProvider for Provider {
    fn queue_metrics(&self, _name: &str) -> Arc<dyn QueueMetrics> {
        self.0.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn metrics_see_adds_depth_waits_work_and_retries() {
    let recorded = Arc::new(Recorded::default());
    let q = WorkQueue::builder("metered")
        .metrics(Arc::new(Provider(recorded.clone())))
        .build();
    q.add("a");
    q.add("a");
    q.add("b");
    assert_eq!(recorded.adds.load(Ordering::SeqCst), 2);
    assert_eq!(recorded.depth.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let key = q.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    q.done(&key);
    q.add_rate_limited("c");
    assert_eq!(recorded.started.lock().unwrap()[0], Duration::from_secs(2));
    assert_eq!(recorded.finished.lock().unwrap()[0], Duration::from_secs(1));
    assert_eq!(recorded.retries.load(Ordering::SeqCst), 1);
    assert_eq!(recorded.depth.load(Ordering::SeqCst), 1);
}

#[test]
fn exponential_backoff_doubles_to_its_cap() {
    let limiter = ItemExponentialBackoff::new(Duration::from_millis(5), Duration::from_secs(1000));
    let delays: Vec<_> = (0..20).map(|_| limiter.when(&"k")).collect();
    assert_eq!(delays[0], Duration::from_millis(5));
    assert_eq!(delays[1], Duration::from_millis(10));
    assert_eq!(delays[17], Duration::from_millis(655_360));
    assert_eq!(delays[18], Duration::from_secs(1000), "capped");
    assert_eq!(limiter.when(&"other"), Duration::from_millis(5), "per key");
    for _ in 0..100 {
        limiter.when(&"k");
    }
    assert_eq!(limiter.when(&"k"), Duration::from_secs(1000), "no overflow");
}

#[tokio::test(start_paused = true)]
async fn token_bucket_allows_the_burst_then_spaces_at_qps() {
    let bucket = TokenBucket::new(10.0, 100);
    for _ in 0..100 {
        assert_eq!(RateLimiter::<&str>::when(&bucket, &"k"), Duration::ZERO);
    }
    let next = RateLimiter::<&str>::when(&bucket, &"k");
    assert!((next.as_secs_f64() - 0.1).abs() < 1e-9, "{next:?}");
    let after = RateLimiter::<&str>::when(&bucket, &"k");
    assert!((after.as_secs_f64() - 0.2).abs() < 1e-9, "{after:?}");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        RateLimiter::<&str>::when(&bucket, &"k"),
        Duration::ZERO,
        "refilled"
    );
}

#[tokio::test(start_paused = true)]
async fn client_go_default_takes_the_longer_delay_and_forgets_both() {
    let limiter = client_go_default::<&str>();
    assert_eq!(limiter.when(&"a"), Duration::from_millis(5));
    for _ in 0..200 {
        limiter.when(&"b");
    }
    // "a" has failed once, but the shared bucket is long empty.
    assert!(limiter.when(&"a") > Duration::from_secs(9));
    assert_eq!(limiter.num_requeues(&"a"), 2);
    limiter.forget(&"a");
    assert_eq!(limiter.num_requeues(&"a"), 0);
}

/// Every key ready now, in the order `get` hands them out, each marked done.
async fn drain(queue: &WorkQueue<&'static str>) -> Vec<(&'static str, Priority)> {
    let mut order = Vec::new();
    while let Ok(Some((key, priority))) =
        tokio::time::timeout(Duration::ZERO, queue.get_with_priority()).await
    {
        queue.done(&key);
        order.push((key, priority));
    }
    order
}

#[tokio::test(start_paused = true)]
async fn low_priority_keys_wait_behind_normal_ones_in_order() {
    use Priority::{Low, Normal};
    let q = queue();
    q.add_with_priority("listed-1", Low);
    q.add_with_priority("listed-2", Low);
    q.add("changed-1");
    q.add_with_priority("listed-3", Low);
    q.add("changed-2");
    assert_eq!(q.len(), 5);
    assert_eq!(
        drain(&q).await,
        [
            ("changed-1", Normal),
            ("changed-2", Normal),
            ("listed-1", Low),
            ("listed-2", Low),
            ("listed-3", Low),
        ]
    );
    assert!(q.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_normal_add_raises_a_queued_low_key_once_and_a_low_add_never_lowers() {
    use Priority::{Low, Normal};
    let q = queue();
    for key in ["a", "b", "c"] {
        q.add_with_priority(key, Low);
    }
    q.add("x");
    q.add("b"); // raised: behind "x", out of the low FIFO
    q.add("b");
    q.add_with_priority("x", Low); // already queued at Normal: unchanged
    assert_eq!(q.len(), 4, "a raised key counts once");
    assert_eq!(
        drain(&q).await,
        [("x", Normal), ("b", Normal), ("a", Low), ("c", Low)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_raised_keys_stale_low_entry_never_hands_it_out_again() {
    use Priority::{Low, Normal};
    let q = queue();
    for key in ["a", "b", "c"] {
        q.add_with_priority(key, Low);
    }
    q.add("b");
    assert_eq!(get_now(&q).await, Some("b"));
    // Added again at Low while processing, then done: its old entry is stale, its new
    // one is behind "c".
    q.add_with_priority("b", Low);
    q.done(&"b");
    assert_eq!(q.len(), 3);
    assert_eq!(drain(&q).await, [("a", Low), ("c", Low), ("b", Low)]);
    // Raised while processing: queued at Normal on done.
    q.add_with_priority("a", Low);
    q.add_with_priority("d", Low);
    let (a, _) = q.get_with_priority().await.unwrap();
    q.add_with_priority(a, Low);
    q.add(a);
    q.add_with_priority("e", Low);
    q.done(&a);
    assert_eq!(
        drain(&q).await,
        [("a", Normal), ("d", Low), ("e", Low)],
        "raised while processing"
    );
    assert!(q.is_empty());
}

#[tokio::test(start_paused = true)]
async fn delayed_keys_keep_the_higher_priority_and_the_earlier_time() {
    use Priority::{Low, Normal};
    let q = queue();
    q.add_with_priority("listed", Low);
    q.add_after_with_priority("a", Duration::from_secs(1), Low);
    q.add_after_with_priority("a", Duration::from_secs(5), Normal); // later: raises only
    q.add_after_with_priority("b", Duration::from_secs(5), Normal);
    q.add_after_with_priority("b", Duration::from_secs(1), Low); // earlier: keeps Normal
    q.add_rate_limited_with_priority("c", Low);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        drain(&q).await,
        [("a", Normal), ("b", Normal), ("listed", Low), ("c", Low)]
    );
}

#[tokio::test(start_paused = true)]
async fn metrics_count_keys_of_both_priorities_and_a_raise_is_no_add() {
    let recorded = Arc::new(Recorded::default());
    let q = WorkQueue::builder("metered")
        .metrics(Arc::new(Provider(recorded.clone())))
        .build();
    q.add_with_priority("a", Priority::Low);
    q.add_with_priority("b", Priority::Low);
    q.add("c");
    q.add("a");
    assert_eq!(recorded.adds.load(Ordering::SeqCst), 3);
    assert_eq!(recorded.depth.load(Ordering::SeqCst), 3);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(q.get().await, Some("c"));
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(recorded.depth.load(Ordering::SeqCst), 1);
    // Waited since its first add, not since the raise.
    assert_eq!(recorded.started.lock().unwrap()[1], Duration::from_secs(2));
}
