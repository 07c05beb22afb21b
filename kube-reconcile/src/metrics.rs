//! Prometheus metrics with the names of client-go's work queue and controller-runtime's
//! controllers, so existing dashboards and alerts work unchanged.
//!
//! ```
//! use std::sync::Arc;
//! use kube_reconcile::{metrics::Metrics, queue::WorkQueue};
//!
//! let metrics = Metrics::new();
//! let queue = WorkQueue::<String>::builder("pods").metrics(Arc::new(metrics.clone())).build();
//! queue.add("default/web".to_string());
//! assert!(metrics.encode().contains(r#"workqueue_adds_total{name="pods"} 1"#));
//! ```

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicU64},
    },
    time::Duration,
};

use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::queue::{QueueMetrics, QueueMetricsProvider};

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn histogram() -> Histogram {
    // 1 ms .. ~16 min, as client-go's work-queue buckets span.
    Histogram::new(exponential_buckets(0.001, 2.0, 21))
}

/// One registry with the work-queue and reconcile metric families. Cloning gives
/// another handle to the same registry; share one per process.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    queue: Arc<QueueFamilies>,
    controller: Arc<ControllerFamilies>,
    leader: Family<Labels, Gauge>,
    decode_failures: Family<Labels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct QueueFamilies {
    depth: Family<Labels, Gauge>,
    adds: Family<Labels, Counter>,
    queue_duration: Family<Labels, Histogram, fn() -> Histogram>,
    work_duration: Family<Labels, Histogram, fn() -> Histogram>,
    unfinished_work: Family<Labels, FloatGauge>,
    longest_running: Family<Labels, FloatGauge>,
    retries: Family<Labels, Counter>,
}

pub(crate) struct ControllerFamilies {
    pub(crate) reconcile_total: Family<Labels, Counter>,
    pub(crate) reconcile_errors: Family<Labels, Counter>,
    pub(crate) terminal_errors: Family<Labels, Counter>,
    pub(crate) panics: Family<Labels, Counter>,
    pub(crate) reconcile_time: Family<Labels, Histogram, fn() -> Histogram>,
    pub(crate) active_workers: Family<Labels, Gauge<i64, AtomicI64>>,
    pub(crate) max_concurrent: Family<Labels, Gauge<i64, AtomicI64>>,
    pub(crate) overload_active: Family<Labels, Gauge>,
    pub(crate) overload_waiting: Family<Labels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry holding every kube-reconcile metric family (empty until used).
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let queue = QueueFamilies {
            depth: Family::default(),
            adds: Family::default(),
            queue_duration: Family::new_with_constructor(histogram),
            work_duration: Family::new_with_constructor(histogram),
            unfinished_work: Family::default(),
            longest_running: Family::default(),
            retries: Family::default(),
        };
        let controller = ControllerFamilies {
            reconcile_total: Family::default(),
            reconcile_errors: Family::default(),
            terminal_errors: Family::default(),
            panics: Family::default(),
            reconcile_time: Family::new_with_constructor(histogram),
            active_workers: Family::default(),
            max_concurrent: Family::default(),
            overload_active: Family::default(),
            overload_waiting: Family::default(),
        };
        // prometheus-client appends `_total` to counters.
        let r = &mut registry;
        r.register(
            "workqueue_depth",
            "Current depth of the work queue",
            queue.depth.clone(),
        );
        r.register(
            "workqueue_adds",
            "Keys added to the work queue",
            queue.adds.clone(),
        );
        r.register(
            "workqueue_queue_duration_seconds",
            "How long a key waits in the queue before a worker takes it",
            queue.queue_duration.clone(),
        );
        r.register(
            "workqueue_work_duration_seconds",
            "How long processing a key takes",
            queue.work_duration.clone(),
        );
        r.register(
            "workqueue_unfinished_work_seconds",
            "Seconds of work in progress not yet observed by work_duration",
            queue.unfinished_work.clone(),
        );
        r.register(
            "workqueue_longest_running_processor_seconds",
            "Seconds the longest-running key has been processing",
            queue.longest_running.clone(),
        );
        r.register(
            "workqueue_retries",
            "Rate-limited re-adds",
            queue.retries.clone(),
        );
        r.register(
            "controller_runtime_reconcile",
            "Reconciles per controller and result",
            controller.reconcile_total.clone(),
        );
        r.register(
            "controller_runtime_reconcile_errors",
            "Reconciles that returned an error",
            controller.reconcile_errors.clone(),
        );
        r.register(
            "controller_runtime_terminal_reconcile_errors",
            "Reconciles that returned a terminal error (not retried)",
            controller.terminal_errors.clone(),
        );
        r.register(
            "controller_runtime_reconcile_panics",
            "Reconciles that panicked (caught, counted and retried)",
            controller.panics.clone(),
        );
        r.register(
            "controller_runtime_reconcile_time_seconds",
            "Duration of reconciles",
            controller.reconcile_time.clone(),
        );
        r.register(
            "controller_runtime_active_workers",
            "Workers currently reconciling",
            controller.active_workers.clone(),
        );
        r.register(
            "controller_runtime_max_concurrent_reconciles",
            "Configured number of workers",
            controller.max_concurrent.clone(),
        );
        r.register(
            "kube_reconcile_overload_backoff_active",
            "1 while the controller waits out an overloaded or unreachable API server, else 0",
            controller.overload_active.clone(),
        );
        r.register(
            "kube_reconcile_overload_waiting_keys",
            "Keys waiting for the API server to answer again (the probe included)",
            controller.overload_waiting.clone(),
        );
        let leader = Family::default();
        r.register(
            "leader_election_master_status",
            "1 while this replica holds the named leader lease, else 0",
            leader.clone(),
        );
        let decode_failures = Family::default();
        r.register(
            "informer_decode_failures",
            "Object versions an informer could not decode as its type (skipped, see the log)",
            decode_failures.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            queue: Arc::new(queue),
            controller: Arc::new(controller),
            leader,
            decode_failures,
        }
    }

    /// The registry, to add application metrics to the same `/metrics` page.
    pub fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every metric in the Prometheus text format (OpenMetrics flavour).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry()).expect("writing to a String cannot fail");
        text
    }

    pub(crate) fn controller(&self) -> &ControllerFamilies {
        &self.controller
    }

    /// Sets `leader_election_master_status{name=lease}`, as client-go reports it.
    pub fn set_leading(&self, lease: &str, leading: bool) {
        let labels: Labels = vec![("name", lease.to_string())];
        self.leader.get_or_create(&labels).set(i64::from(leading));
    }
}

impl Metrics {
    /// Counts one undecodable object version in
    /// `informer_decode_failures_total{resource, object}`. One series per object, which
    /// is fine only because such objects are rare and worth naming.
    pub(crate) fn informer_decode_failure(&self, resource: &str, object: &str) {
        let labels: Labels = vec![
            ("resource", resource.to_string()),
            ("object", object.to_string()),
        ];
        self.decode_failures.get_or_create(&labels).inc();
    }
}

impl QueueMetricsProvider for Metrics {
    fn queue_metrics(&self, name: &str) -> Arc<dyn QueueMetrics> {
        let labels: Labels = vec![("name", name.to_string())];
        let q = &self.queue;
        Arc::new(NamedQueueMetrics {
            depth: q.depth.get_or_create_owned(&labels),
            adds: q.adds.get_or_create_owned(&labels),
            queue_duration: q.queue_duration.get_or_create_owned(&labels),
            work_duration: q.work_duration.get_or_create_owned(&labels),
            unfinished_work: q.unfinished_work.get_or_create_owned(&labels),
            longest_running: q.longest_running.get_or_create_owned(&labels),
            retries: q.retries.get_or_create_owned(&labels),
        })
    }
}

/// The metrics of one queue, resolved once so each call is a few atomic operations.
struct NamedQueueMetrics {
    depth: Gauge,
    adds: Counter,
    queue_duration: Histogram,
    work_duration: Histogram,
    unfinished_work: FloatGauge,
    longest_running: FloatGauge,
    retries: Counter,
}

impl QueueMetrics for NamedQueueMetrics {
    fn added(&self) {
        self.adds.inc();
    }
    fn depth(&self, depth: usize) {
        self.depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }
    fn started(&self, queued_for: Duration) {
        self.queue_duration.observe(queued_for.as_secs_f64());
    }
    fn finished(&self, worked_for: Duration) {
        self.work_duration.observe(worked_for.as_secs_f64());
    }
    fn retried(&self) {
        self.retries.inc();
    }
    fn unfinished_work(&self, total_seconds: f64, longest_seconds: f64) {
        self.unfinished_work.set(total_seconds);
        self.longest_running.set(longest_seconds);
    }
}

pub(crate) fn controller_labels(controller: &str) -> Labels {
    vec![("controller", controller.to_string())]
}

pub(crate) fn result_labels(controller: &str, result: &'static str) -> Labels {
    vec![
        ("controller", controller.to_string()),
        ("result", result.to_string()),
    ]
}
