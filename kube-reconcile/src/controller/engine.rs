//! The private engine of a controller: workers that take keys, reconcile, and apply the
//! outcome to the queue, with panics caught and metrics kept.

use std::{any::Any, panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures::FutureExt;
use kube::Resource;
use tokio::{sync::watch, task::JoinSet, time::Instant};
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::overload::OverloadGate;
use crate::{
    ObjectKey,
    client::server_overloaded,
    context::{self, Context},
    metrics::{Metrics, controller_labels, result_labels},
    queue::{Priority, WorkQueue},
    reconcile::{Action, OnError, Reconcile, Request},
    store::Store,
};

pub(super) struct Engine<K, R> {
    pub(super) primary: Store<K>,
    pub(super) reconciler: Arc<R>,
    pub(super) queue: WorkQueue<ObjectKey>,
    pub(super) workers: usize,
    /// Where keys wait out an overloaded server; `None`: per-key backoff only.
    pub(super) overload: Option<Arc<OverloadGate>>,
    pub(super) metrics: Option<Metrics>,
    pub(super) shutdown_timeout: Duration,
    pub(super) context: Arc<context::Shared>,
}

/// How one reconcile ended, for the `result` label and the queue.
enum Outcome {
    Success,
    Requeue,
    RequeueAfter(Duration),
    Error(OnError),
    /// An [`OnError::Backoff`] error saying the server is overloaded or unreachable.
    Overloaded,
    Panic,
}

impl<K, R> Engine<K, R>
where
    K: Resource<DynamicType = ()> + Send + Sync + 'static,
    R: Reconcile<K>,
{
    fn name(&self) -> &str {
        &self.context.name
    }

    /// Runs the workers until `shutdown`, then drains in-flight work within the timeout.
    pub(super) async fn run(&self, shutdown: impl Future<Output = ()>) {
        let (stop, stopped) = watch::channel(false);
        if let Some(metrics) = &self.metrics {
            self.initialise_metrics(metrics);
        }
        let mut workers = JoinSet::new();
        for _ in 0..self.workers {
            workers.spawn(self.worker(stopped.clone()));
        }
        info!(controller = %self.name(), workers = self.workers, "Started controller");
        shutdown.await;

        info!(controller = %self.name(), "shutting down: waiting for in-flight reconciles");
        self.context.cancel.cancel();
        let _ = stop.send(true);
        let drained = async { while workers.join_next().await.is_some() {} };
        if tokio::time::timeout(self.shutdown_timeout, drained)
            .await
            .is_err()
        {
            warn!(controller = %self.name(), timeout = ?self.shutdown_timeout,
                  "in-flight reconciles did not finish in time; cancelling them");
            workers.abort_all();
            while workers.join_next().await.is_some() {}
        }
    }

    /// Creates every series of this controller at zero, so dashboards and alerts see
    /// them before the first error happens.
    fn initialise_metrics(&self, metrics: &Metrics) {
        let families = metrics.controller();
        let labels = controller_labels(self.name());
        let max = i64::try_from(self.workers).unwrap_or(i64::MAX);
        families.max_concurrent.get_or_create(&labels).set(max);
        // Each call creates the series; the returned read guards are not needed.
        let _ = families.active_workers.get_or_create(&labels);
        let _ = families.reconcile_errors.get_or_create(&labels);
        let _ = families.terminal_errors.get_or_create(&labels);
        let _ = families.panics.get_or_create(&labels);
        for result in ["success", "error", "requeue", "requeue_after"] {
            let _ = families
                .reconcile_total
                .get_or_create(&result_labels(self.name(), result));
        }
    }

    /// One worker's loop; owns clones so it can run as its own task.
    fn worker(
        &self,
        mut stopped: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let worker = Worker {
            primary: self.primary.clone(),
            reconciler: self.reconciler.clone(),
            queue: self.queue.clone(),
            overload: self.overload.clone(),
            metrics: self.metrics.clone(),
            context: self.context.clone(),
        };
        async move {
            loop {
                let (key, priority) = tokio::select! {
                    biased;
                    _ = stopped.wait_for(|stop| *stop) => return,
                    key = worker.queue.get_with_priority() => match key {
                        Some(key) => key,
                        None => return,
                    },
                };
                worker.process(key, priority).await;
            }
        }
    }
}

struct Worker<K, R> {
    primary: Store<K>,
    reconciler: Arc<R>,
    queue: WorkQueue<ObjectKey>,
    overload: Option<Arc<OverloadGate>>,
    metrics: Option<Metrics>,
    context: Arc<context::Shared>,
}

impl<K, R> Worker<K, R>
where
    K: Resource<DynamicType = ()> + Send + Sync + 'static,
    R: Reconcile<K>,
{
    fn name(&self) -> &str {
        &self.context.name
    }

    /// Whether the caches still lag behind this key's last writes: then the key is
    /// parked, not reconciled now, and the watches bring it back as soon as they show
    /// those writes.
    fn behind_own_writes(&self, key: &ObjectKey, object: Option<&K>) -> bool {
        let Some(writes) = &self.context.writes else {
            return false;
        };
        if object.is_none() {
            writes.forget(key);
            return false;
        }
        match writes.ensure_ready(key) {
            Ok(()) => false,
            Err(lagging) => {
                debug!(controller = %self.name(), %key, %lagging,
                       "caches behind this controller's own write; reconciling once they show it");
                writes.park(key)
            }
        }
    }

    /// Reconciles `key`; a retry or requeue keeps the `priority` it was queued at.
    async fn process(&self, key: ObjectKey, priority: Priority) {
        let object = self.primary.get(&key);
        if self.behind_own_writes(&key, object.as_deref()) {
            self.queue.done(&key);
            return;
        }
        let span = info_span!(
            "reconcile",
            controller = %self.name(),
            kind = %K::kind(&()),
            namespace = key.namespace().unwrap_or_default(),
            name = key.name(),
        );
        let request = Request {
            ctx: Context::for_object(&self.context, key.clone(), object.as_deref()),
            key: key.clone(),
            object,
        };
        let active = self.metrics.as_ref().map(|m| {
            let gauge = m
                .controller()
                .active_workers
                .get_or_create_owned(&controller_labels(self.name()));
            gauge.inc();
            gauge
        });
        let started = Instant::now();
        let reconciled = AssertUnwindSafe(self.reconciler.reconcile(request))
            .catch_unwind()
            .instrument(span.clone())
            .await;
        let elapsed = started.elapsed();
        if let Some(active) = active {
            active.dec();
        }

        let outcome = span.in_scope(|| self.judge(&key, reconciled, elapsed));
        self.record(&outcome, elapsed);
        self.requeue(&key, &outcome, priority);
        self.queue.done(&key);
    }

    /// Applies `outcome` to the queue and the overload gate.
    fn requeue(&self, key: &ObjectKey, outcome: &Outcome, priority: Priority) {
        let gate = self.overload.as_deref();
        match outcome {
            Outcome::Success => self.queue.forget(key),
            Outcome::RequeueAfter(delay) => {
                self.queue.forget(key);
                self.queue
                    .add_after_with_priority(key.clone(), *delay, priority);
            }
            Outcome::Requeue | Outcome::Error(OnError::Backoff) | Outcome::Panic => {
                let delay = self
                    .queue
                    .add_rate_limited_with_priority(key.clone(), priority);
                let requeues = self.queue.num_requeues(key);
                debug!(controller = %self.name(), %key, ?delay, requeues, "backing off");
            }
            Outcome::Error(OnError::RetryAfter(delay)) => {
                self.queue
                    .add_after_with_priority(key.clone(), *delay, priority)
            }
            Outcome::Error(OnError::Terminal) => self.queue.forget(key),
            Outcome::Overloaded => {
                if let Some(gate) = gate {
                    gate.overloaded(key.clone(), priority);
                }
                return;
            }
        }
        let Some(gate) = gate else { return };
        match outcome {
            // Nothing learnt about the server: only hand the probe on if it was one.
            Outcome::Panic | Outcome::Error(OnError::RetryAfter(_) | OnError::Terminal) => {
                gate.forget(key)
            }
            _ => gate.answered(key),
        }
    }

    fn judge(
        &self,
        key: &ObjectKey,
        reconciled: Result<Result<Action, R::Error>, Box<dyn Any + Send>>,
        elapsed: Duration,
    ) -> Outcome {
        match reconciled {
            Ok(Ok(Action::Done)) => {
                debug!(?elapsed, "reconciled");
                Outcome::Success
            }
            Ok(Ok(Action::RequeueAfter(delay))) => {
                debug!(?elapsed, ?delay, "reconciled; requeue after delay");
                Outcome::RequeueAfter(delay)
            }
            Ok(Ok(Action::Requeue)) => {
                debug!(?elapsed, "reconciled; requeue with backoff");
                Outcome::Requeue
            }
            Ok(Err(err)) => {
                let policy = self.reconciler.error_policy(&err, key);
                let error: &(dyn std::error::Error + 'static) = &err;
                let overloaded = kube_error(error).is_some_and(server_overloaded);
                if policy == OnError::Backoff && overloaded && self.overload.is_some() {
                    info!(
                        error,
                        "reconcile failed: the API server is overloaded or unreachable; \
                         waiting for it with the other failed keys"
                    );
                    return Outcome::Overloaded;
                }
                match policy {
                    OnError::Terminal => error!(
                        error,
                        "reconcile failed with a terminal error; not retrying"
                    ),
                    // A write that lost an optimistic-concurrency race (HTTP 409) is the
                    // normal outcome of acting on a cache a moment old: not a warning.
                    OnError::Backoff if is_conflict(error) => {
                        info!(
                            error,
                            "reconcile hit a write conflict; retrying with backoff"
                        )
                    }
                    // The role lacks a permission: the API server's message names it.
                    OnError::Backoff if forbidden(error).is_some() => {
                        error!(
                            forbidden = forbidden(error).unwrap_or_default(),
                            "reconcile refused by RBAC: the controller's role lacks this \
                             permission (see Controller::permissions); retrying with backoff"
                        )
                    }
                    OnError::Backoff => warn!(error, "reconcile failed; retrying with backoff"),
                    OnError::RetryAfter(delay) => {
                        warn!(error, ?delay, "reconcile failed; retrying after a delay")
                    }
                }
                Outcome::Error(policy)
            }
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                error!(panic = %message, "reconcile panicked; retrying with backoff");
                Outcome::Panic
            }
        }
    }

    fn record(&self, outcome: &Outcome, elapsed: Duration) {
        let Some(metrics) = &self.metrics else { return };
        let families = metrics.controller();
        let labels = controller_labels(self.name());
        families
            .reconcile_time
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        let result = match outcome {
            Outcome::Success => "success",
            Outcome::Requeue => "requeue",
            Outcome::RequeueAfter(_) => "requeue_after",
            Outcome::Error(_) | Outcome::Overloaded | Outcome::Panic => "error",
        };
        families
            .reconcile_total
            .get_or_create(&result_labels(self.name(), result))
            .inc();
        match outcome {
            Outcome::Error(policy) => {
                families.reconcile_errors.get_or_create(&labels).inc();
                if *policy == OnError::Terminal {
                    families.terminal_errors.get_or_create(&labels).inc();
                }
            }
            Outcome::Overloaded => {
                families.reconcile_errors.get_or_create(&labels).inc();
            }
            Outcome::Panic => {
                families.reconcile_errors.get_or_create(&labels).inc();
                families.panics.get_or_create(&labels).inc();
            }
            _ => {}
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "a non-string panic payload".to_string()
    }
}

/// The first [`kube::Error`] in `error`'s source chain (itself included), if any.
fn kube_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a kube::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(kube_error) = e.downcast_ref::<kube::Error>() {
            return Some(kube_error);
        }
        current = e.source();
    }
    None
}

/// The API server's answer in `error` or one of its sources, if any.
fn api_status<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a kube::core::Status> {
    match kube_error(error)? {
        kube::Error::Api(status) => Some(status),
        _ => None,
    }
}

/// Whether `error` or one of its sources is the API server's 409 Conflict.
fn is_conflict(error: &(dyn std::error::Error + 'static)) -> bool {
    api_status(error).is_some_and(|s| s.code == 409 && s.reason == "Conflict")
}

/// The API server's message if `error` is its 403 Forbidden (it names the user, verb,
/// resource and namespace).
fn forbidden<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a str> {
    api_status(error)
        .filter(|s| s.code == 403)
        .map(|s| s.message.as_str())
}

#[cfg(test)]
mod conflict_tests {
    use kube::core::Status;

    use super::is_conflict;

    #[derive(Debug, thiserror::Error)]
    #[error("updating status failed")]
    struct Wrapped(#[source] kube::Error);

    #[test]
    fn a_conflict_is_found_through_the_source_chain() {
        let api = |code: u16, reason: &str| {
            kube::Error::Api(Box::new(
                Status::failure("modified", reason).with_code(code),
            ))
        };
        assert!(is_conflict(&Wrapped(api(409, "Conflict"))));
        assert!(!is_conflict(&Wrapped(api(409, "AlreadyExists"))));
        assert!(!is_conflict(&Wrapped(api(500, "InternalError"))));
    }

    #[test]
    fn a_forbidden_answer_is_found_with_its_message() {
        let denied = kube::Error::Api(Box::new(
            Status::failure("cannot delete resource \"pods\"", "Forbidden").with_code(403),
        ));
        assert_eq!(
            super::forbidden(&Wrapped(denied)),
            Some("cannot delete resource \"pods\"")
        );
    }
}
