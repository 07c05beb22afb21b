//! The queue's view of metrics: a small trait, so any metrics library can back it.
//! [`crate::metrics::Metrics`] implements it with prometheus-client and client-go's
//! metric names.

use std::{sync::Arc, time::Duration};

/// Makes the metrics of one named queue.
pub trait QueueMetricsProvider: Send + Sync {
    /// The metrics of the queue called `name` (the `name` label).
    fn queue_metrics(&self, name: &str) -> Arc<dyn QueueMetrics>;
}

/// What a queue reports. Calls happen under the queue's lock: keep them cheap.
pub trait QueueMetrics: Send + Sync {
    /// A key was added (`workqueue_adds_total`).
    fn added(&self);
    /// The number of queued keys changed (`workqueue_depth`).
    fn depth(&self, depth: usize);
    /// A key was handed to a worker after waiting `queued_for`
    /// (`workqueue_queue_duration_seconds`).
    fn started(&self, queued_for: Duration);
    /// A worker finished a key after `worked_for` (`workqueue_work_duration_seconds`).
    fn finished(&self, worked_for: Duration);
    /// A key was re-added through the rate limiter (`workqueue_retries_total`).
    fn retried(&self);
    /// Seconds of work in progress and of the longest-running key
    /// (`workqueue_unfinished_work_seconds`,
    /// `workqueue_longest_running_processor_seconds`), refreshed twice a second.
    fn unfinished_work(&self, total_seconds: f64, longest_seconds: f64);
}

/// Metrics that go nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopQueueMetrics;

impl QueueMetricsProvider for NoopQueueMetrics {
    fn queue_metrics(&self, _name: &str) -> Arc<dyn QueueMetrics> {
        Arc::new(NoopQueueMetrics)
    }
}

impl QueueMetrics for NoopQueueMetrics {
    fn added(&self) {}
    fn depth(&self, _depth: usize) {}
    fn started(&self, _queued_for: Duration) {}
    fn finished(&self, _worked_for: Duration) {}
    fn retried(&self) {}
    fn unfinished_work(&self, _total_seconds: f64, _longest_seconds: f64) {}
}
