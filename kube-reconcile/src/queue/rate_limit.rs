//! Rate limiters: how long a failed key waits before its next try.

use std::{collections::HashMap, hash::Hash, sync::Mutex, time::Duration};

use tokio::time::Instant;

/// Decides the delay of each rate-limited add of a key.
pub trait RateLimiter<K>: Send + Sync {
    /// The delay for this try of `key`, recording the try.
    fn when(&self, key: &K) -> Duration;
    /// Clears the history of `key`; its next delay starts from the beginning.
    fn forget(&self, key: &K);
    /// How many tries of `key` were recorded since it was last forgotten.
    fn num_requeues(&self, key: &K) -> u32;
}

/// A boxed limiter, as a [`WorkQueue`](super::WorkQueue) holds it.
pub type BoxRateLimiter<K> = Box<dyn RateLimiter<K>>;

impl<K> RateLimiter<K> for BoxRateLimiter<K> {
    fn when(&self, key: &K) -> Duration {
        (**self).when(key)
    }
    fn forget(&self, key: &K) {
        (**self).forget(key)
    }
    fn num_requeues(&self, key: &K) -> u32 {
        (**self).num_requeues(key)
    }
}

/// Per-key exponential backoff: `base * 2^failures`, capped at `max`.
///
/// Memory: one entry per key that failed and was not forgotten; forget keys after a
/// successful reconcile.
#[derive(Debug)]
pub struct ItemExponentialBackoff<K> {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<K, u32>>,
}

impl<K> ItemExponentialBackoff<K> {
    /// Backoff from `base`, doubling on every failure up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone + Send> RateLimiter<K> for ItemExponentialBackoff<K> {
    fn when(&self, key: &K) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(key.clone()).or_insert(0);
        let exponent = *count;
        *count = count.saturating_add(1);
        // 2^exponent overflows quickly; anything past 2^40 is past every sane cap.
        let factor = 2_f64.powi(exponent.min(60) as i32);
        let delay = self.base.as_secs_f64() * factor;
        if delay >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(delay)
        }
    }

    fn forget(&self, key: &K) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    fn num_requeues(&self, key: &K) -> u32 {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.get(key).copied().unwrap_or(0)
    }
}

/// Per-key two-speed retries: the first `max_fast_attempts` tries of a key wait `fast`,
/// later ones `slow`, until the key is forgotten. client-go's `ItemFastSlowRateLimiter`.
///
/// Suits a condition expected to clear quickly, or else take long: retry a few times at
/// once, then settle into a slow poll.
///
/// Memory: one entry per key that failed and was not forgotten; forget keys after a
/// successful reconcile.
#[derive(Debug)]
pub struct ItemFastSlow<K> {
    fast: Duration,
    slow: Duration,
    max_fast_attempts: u32,
    attempts: Mutex<HashMap<K, u32>>,
}

impl<K> ItemFastSlow<K> {
    /// `max_fast_attempts` tries of each key at `fast`, then every try at `slow`.
    pub fn new(fast: Duration, slow: Duration, max_fast_attempts: u32) -> Self {
        Self {
            fast,
            slow,
            max_fast_attempts,
            attempts: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone + Send> RateLimiter<K> for ItemFastSlow<K> {
    fn when(&self, key: &K) -> Duration {
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let count = attempts.entry(key.clone()).or_insert(0);
        *count = count.saturating_add(1);
        if *count <= self.max_fast_attempts {
            self.fast
        } else {
            self.slow
        }
    }

    fn forget(&self, key: &K) {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    fn num_requeues(&self, key: &K) -> u32 {
        let attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        attempts.get(key).copied().unwrap_or(0)
    }
}

/// One token bucket shared by all keys: `qps` tokens a second, holding at most `burst`.
/// Each call reserves a token; when the bucket is empty the delay is the wait for the
/// reserved token.
///
/// Caveat: the bucket is overall, not per key, so under a storm of failures every key
/// waits for every other. Its 10,000th reservation at 10 qps waits about 16 minutes.
#[derive(Debug)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `qps` a second.
    ///
    /// # Panics
    /// If `qps` is not positive.
    pub fn new(qps: f64, burst: u32) -> Self {
        assert!(qps > 0.0, "a token bucket needs a positive rate");
        Self {
            qps,
            burst: f64::from(burst),
            state: Mutex::new((f64::from(burst), Instant::now())),
        }
    }
}

impl<K> RateLimiter<K> for TokenBucket {
    fn when(&self, _key: &K) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = &mut *state;
        let now = Instant::now();
        *tokens = (*tokens + (now - *last).as_secs_f64() * self.qps).min(self.burst);
        *last = now;
        *tokens -= 1.0;
        if *tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-*tokens / self.qps)
        }
    }

    fn forget(&self, _key: &K) {}

    fn num_requeues(&self, _key: &K) -> u32 {
        0
    }
}

/// The longest delay of several limiters; forgets in all of them.
pub struct MaxOf<K> {
    limiters: Vec<BoxRateLimiter<K>>,
}

impl<K> std::fmt::Debug for MaxOf<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaxOf")
            .field("limiters", &self.limiters.len())
            .finish()
    }
}

impl<K> MaxOf<K> {
    /// Combines `limiters`.
    pub fn new(limiters: Vec<BoxRateLimiter<K>>) -> Self {
        Self { limiters }
    }
}

impl<K> RateLimiter<K> for MaxOf<K> {
    fn when(&self, key: &K) -> Duration {
        let delays = self.limiters.iter().map(|l| l.when(key));
        delays.max().unwrap_or(Duration::ZERO)
    }

    fn forget(&self, key: &K) {
        self.limiters.iter().for_each(|l| l.forget(key));
    }

    fn num_requeues(&self, key: &K) -> u32 {
        let counts = self.limiters.iter().map(|l| l.num_requeues(key));
        counts.max().unwrap_or(0)
    }
}

/// Caps the delay of another limiter at `max_wait`; forgetting and counting are the
/// inner limiter's. client-go's `WithMaxWaitRateLimiter`.
///
/// Bounds how long any key can wait, e.g. to keep the shared [`TokenBucket`] of
/// [`client_go_default`] from pushing retries minutes out under a storm of failures:
/// `WithMaxWait::new(client_go_default(), Duration::from_secs(60))`.
#[derive(Debug)]
pub struct WithMaxWait<L> {
    limiter: L,
    max_wait: Duration,
}

impl<L> WithMaxWait<L> {
    /// `limiter`, with every delay capped at `max_wait`.
    pub fn new(limiter: L, max_wait: Duration) -> Self {
        Self { limiter, max_wait }
    }
}

impl<K, L: RateLimiter<K>> RateLimiter<K> for WithMaxWait<L> {
    fn when(&self, key: &K) -> Duration {
        self.limiter.when(key).min(self.max_wait)
    }

    fn forget(&self, key: &K) {
        self.limiter.forget(key)
    }

    fn num_requeues(&self, key: &K) -> u32 {
        self.limiter.num_requeues(key)
    }
}

/// kube-reconcile's default: per-key exponential backoff from 5 ms to 1000 s.
///
/// controller-runtime dropped the overall token bucket from its default because one
/// storm of failures makes every key wait; so does kube-reconcile. Use
/// [`client_go_default`] for kube-controller-manager's exact behaviour.
pub fn default_rate_limiter<K: Eq + Hash + Clone + Send + Sync + 'static>()
-> ItemExponentialBackoff<K> {
    ItemExponentialBackoff::new(Duration::from_millis(5), Duration::from_secs(1000))
}

/// client-go's `DefaultControllerRateLimiter`, as kube-controller-manager uses it: the
/// longer of per-key exponential backoff (5 ms to 1000 s) and a 10 qps / burst 100
/// token bucket.
pub fn client_go_default<K: Eq + Hash + Clone + Send + Sync + 'static>() -> MaxOf<K> {
    MaxOf::new(vec![
        Box::new(default_rate_limiter::<K>()),
        Box::new(TokenBucket::new(10.0, 100)),
    ])
}
