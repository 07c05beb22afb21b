//! Controllers: informers feed a work queue, workers run a [`Reconcile`] per key.
//!
//! [`Controller::builder`] names the primary type; [`owns`](ControllerBuilder::owns)
//! adds child types (changes enqueue the controller owner),
//! [`watches`](ControllerBuilder::watches) any type with a mapper; each watched type is one
//! [`Source`], with its own filters. The builder hands out the [`Store`] of each type it
//! watches ([`store`](ControllerBuilder::store)), so a reconciler reads exactly the
//! caches the controller waits for.
//!
//! [`Controller::start`] runs the controller on its own task and returns a
//! [`ControllerHandle`] to stop and join it; [`Controller::run`] runs it until a
//! future completes. Either way the controller starts the informers it reads, waits
//! until every one has synced, runs the workers, and on shutdown cancels the
//! reconciles' [cancellation token](crate::context::Context::cancellation), stops
//! taking keys, lets in-flight reconciles finish within
//! [`shutdown_timeout`](ControllerBuilder::shutdown_timeout), and releases its
//! informers: an informer stops when the last controller reading it stops.
//!
//! By default a controller reads its own writes: what a reconcile wrote through its
//! [`Context`](crate::context::Context) must show in the controller's caches before
//! the same object is reconciled again (see
//! [`read_your_writes`](ControllerBuilder::read_your_writes)).
//!
//! By default a controller also puts real changes first, as controller-runtime does
//! since v0.23 (see [`priority_queue`](ControllerBuilder::priority_queue)): the keys
//! of objects its informers merely list when they start wait at
//! [`Priority::Low`](crate::queue::Priority::Low) behind the keys of changes, so a
//! controller starting over 10,000 objects still reconciles a fresh change at once.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use std::convert::Infallible;
//! use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
//! use kube_reconcile::prelude::*;
//!
//! struct Reconciler {
//!     pods: Store<Pod>,
//! }
//! impl Reconcile<ReplicaSet> for Reconciler {
//!     type Error = Infallible;
//!     async fn reconcile(&self, request: Request<ReplicaSet>) -> Result<Action, Infallible> {
//!         let namespace = request.key.namespace().unwrap_or_default();
//!         println!("{}: {} pods in its namespace", request.key, self.pods.list_namespace(namespace).len());
//!         Ok(Action::Done)
//!     }
//! }
//!
//! let informers = InformerFactory::new(client);
//! let builder = Controller::<ReplicaSet>::builder("replicaset", &informers, &Scope::all())
//!     .filter(filter::generation_changed)
//!     .owns::<Pod>(&Scope::all())
//!     .workers(5);
//! let pods = builder.store::<Pod>().expect("owns pods");
//! let controller = builder.build(Reconciler { pods }).start();
//! shutdown_signal().await;
//! controller.shutdown().await;
//! # Ok(()) }
//! ```

mod engine;
pub mod filter;
pub mod handler;
mod overload;
mod source;

use std::{collections::HashMap, fmt::Debug, future::Future, sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    ObjectKey, context,
    events::EventRecorder,
    informer::{Change, Informer, InformerFactory, Watchable},
    metrics::Metrics,
    queue::{QueueMetricsProvider, RateLimiter, WorkQueue},
    rbac::{self, Permissions},
    reconcile::Reconcile,
    store::Store,
};
pub use filter::Filter;
pub use handler::Mapper;
pub use overload::OverloadBackoff;
pub use source::Source;
use source::{Watch, Watched};

/// Configures a controller; made by [`Controller::builder`].
#[must_use]
pub struct ControllerBuilder<K> {
    name: String,
    factory: InformerFactory,
    /// The primary type's watch; its mapper enqueues the object itself.
    primary: Watch<K>,
    /// The secondary sources, in the order they were added.
    watches: Vec<Box<dyn Watched>>,
    workers: usize,
    rate_limiter: Option<Box<dyn RateLimiter<ObjectKey>>>,
    overload_backoff: Option<OverloadBackoff>,
    metrics: Option<Metrics>,
    shutdown_timeout: Duration,
    read_your_writes: bool,
    priority_queue: bool,
    permissions: Permissions,
}

impl<K> Debug for ControllerBuilder<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerBuilder")
            .field("name", &self.name)
            .field("watches", &(self.watches.len() + 1))
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl<K> ControllerBuilder<K>
where
    K: Watchable,
{
    /// Drops primary-type changes for which `filter` returns false (see [`filter`] for
    /// ready-made ones). Several filters must all pass.
    pub fn filter(mut self, filter: impl Fn(&Change<K>) -> bool + Send + Sync + 'static) -> Self {
        self.primary.filters.push(Arc::new(filter));
        self
    }

    /// Watches children of type `C` from `source` (a `&Scope`, or a [`Source`] with
    /// filters): each change enqueues the child's controller owner if it is a cached
    /// `K` with the referenced UID (old and new owner on an update).
    pub fn owns<C>(self, source: impl Into<Source<C>>) -> Self
    where
        C: Watchable,
    {
        let primary = self.primary.informer.store().clone();
        self.watches::<C>(source, move |change| {
            handler::enqueue_controller_owner(&primary, change)
        })
    }

    /// Watches `W` from `source`, enqueueing the keys `mapper` returns for each change
    /// that passes the source's filters.
    pub fn watches<W>(
        mut self,
        source: impl Into<Source<W>>,
        mapper: impl Fn(&Change<W>) -> Vec<ObjectKey> + Send + Sync + 'static,
    ) -> Self
    where
        W: Watchable,
    {
        let watch = source.into().resolve(&self.factory, Arc::new(mapper));
        self.watches.push(Box::new(watch));
        self.permissions.allow::<W>(rbac::WATCH);
        self
    }

    /// Caches `W` from `source` for the reconciler to read, without enqueueing
    /// anything on its changes: the controller waits for it to sync and hands out its
    /// [`store`](Self::store).
    pub fn reads<W>(self, source: impl Into<Source<W>>) -> Self
    where
        W: Watchable,
    {
        self.watches::<W>(source, |_| Vec::new())
    }

    /// The cache of a type this controller watches (`K` itself, or a type given to
    /// [`owns`](Self::owns) or [`watches`](Self::watches) so far), for the reconciler
    /// to read. The controller waits for it to sync before reconciling. If a type is
    /// watched from several sources, the first one's store. (Also for
    /// [`reads`](Self::reads).) `None` if `W` is not
    /// watched.
    pub fn store<W: 'static>(&self) -> Option<Store<W>> {
        if std::any::TypeId::of::<W>() == std::any::TypeId::of::<K>() {
            let primary: Box<dyn std::any::Any> = Box::new(self.primary.informer.store().clone());
            return primary.downcast::<Store<W>>().ok().map(|store| *store);
        }
        source::store_of::<W>(&self.watches)
    }

    /// How many keys are reconciled at once (default 1). Reconciles of one key never
    /// overlap, whatever this is.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// The limiter behind retries (default [`crate::queue::default_rate_limiter`]).
    /// Retries after an overloaded or unreachable API server do not go through it
    /// while [`overload_backoff`](Self::overload_backoff) is on.
    pub fn rate_limiter(mut self, limiter: impl RateLimiter<ObjectKey> + 'static) -> Self {
        self.rate_limiter = Some(Box::new(limiter));
        self
    }

    /// How the controller waits out an API server that is overloaded or unreachable
    /// (default `Some(OverloadBackoff::default())`: probe after 100 ms, doubling to 2 s).
    ///
    /// When a reconcile fails with [`OnError::Backoff`](crate::reconcile::OnError::Backoff)
    /// and its error (or one of its sources) is a [`kube::Error`] that
    /// [`server_overloaded`](crate::client::server_overloaded) — 429 after the client's
    /// `Retry-After` retries, 502/503/504, a refused or broken connection, a timeout —
    /// the key does not take a step of its own backoff: it is parked behind one gate
    /// the whole controller shares. While the gate is closed, one parked key at a time
    /// goes ahead as a probe, after a delay doubling from `initial` to `max`; when the
    /// server answers a probe, every parked key is queued again at once (a key that
    /// failed `n` times in a row after `initial * 2^(n-1)`, at most `max`), paced from
    /// there by the client's QPS budget. Key-specific errors (conflicts, invalid
    /// objects, denials, webhook failures) keep the per-key backoff of the
    /// [`rate_limiter`](Self::rate_limiter). So a key never sleeps for minutes because
    /// the server was down for one: client-go's per-key backoff doubles on every
    /// failure up to 1000 s whatever caused it.
    ///
    /// `None` is client-go's behaviour: every failure steps the key's own backoff.
    ///
    /// Caveats: a probe proves the server answers only if its reconcile sends a
    /// request; a probe that succeeds from the cache alone opens the gate too. The
    /// controller's informers retry their lists and watches on their own (at least
    /// every 5 s, see [`crate::informer`]). The state is exported as
    /// `kube_reconcile_overload_backoff_active` and
    /// `kube_reconcile_overload_waiting_keys`.
    pub fn overload_backoff(mut self, backoff: Option<OverloadBackoff>) -> Self {
        self.overload_backoff = backoff;
        self
    }

    /// Reports the queue's `workqueue_*` and the reconciles' `controller_runtime_*`
    /// metrics into `metrics` (default: the factory's, if it has any).
    pub fn metrics(mut self, metrics: &Metrics) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// How long in-flight reconciles may run after shutdown begins before they are
    /// cancelled (default 30 s). Their cancellation token fires at once.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Whether to read your own writes (default `true`): a key is reconciled only once
    /// the watched caches show every write its last reconcile made through its
    /// [`Context`](crate::context::Context) (apply, finalizer edits,
    /// [`Context::wrote`](crate::context::Context::wrote)); until then it is parked,
    /// and the change that brings a cache up to date queues it again at once (no
    /// polling, no backoff; kube-controller-manager's consistency store instead
    /// retries with the rate limiter). Writes to types the controller does not watch are not
    /// waited for. Caveat: a cache scoped by a selector that excludes what the
    /// controller writes sees that write's version only with its next in-scope
    /// change; turn this off for such a controller.
    pub fn read_your_writes(mut self, enabled: bool) -> Self {
        self.read_your_writes = enabled;
        self
    }

    /// Whether changes go before listed objects (default `true`). When on, the keys an
    /// informer's *initial list* maps to (its `Added` events while it stores a complete
    /// list before it is synced, when it starts or restarts, and the stored objects
    /// replayed to this controller when it attaches to an informer already running) are
    /// queued at [`Priority::Low`](crate::queue::Priority::Low): workers take them only
    /// when no key of a real change is waiting (an update, a deletion, a creation seen
    /// by the watch, what a relist of a synced informer finds changed, new or gone, a
    /// key enqueued by hand, a key whose own writes showed up), and a change to an
    /// object still waiting at `Low` raises it. A retry or requeue keeps the priority of the
    /// reconcile it follows. Every key is still reconciled, one worker per key, and
    /// deduplicated as before; only the order changes. controller-runtime made this
    /// its default in v0.23 (`UsePriorityQueue`, with `LowPriorityWhenUnchanged`
    /// handlers).
    ///
    /// Off, every key is queued at `Normal`: one FIFO, client-go's order, in which a
    /// change made during the initial sync of N objects waits behind up to N
    /// reconciles. (The `workqueue_*` metrics are the same either way.)
    pub fn priority_queue(mut self, enabled: bool) -> Self {
        self.priority_queue = enabled;
        self
    }

    /// Declares that the reconciler uses `verbs` on `W` (`get`, `create`, `update`,
    /// `patch`, `delete`, ...), for the controller's generated
    /// [`permissions`](Controller::permissions). Watching needs no declaration.
    /// Caveats: server-side apply needs `create` as well as `patch` (it creates what
    /// does not exist); [`claim`](crate::ownership) re-reads the owner (`get` on `K`).
    pub fn needs<W: kube::Resource<DynamicType = ()>>(mut self, verbs: &[&str]) -> Self {
        self.permissions.allow::<W>(verbs);
        self
    }

    /// Declares that the reconciler uses `verbs` on a subresource of `W` (`status`,
    /// `scale`).
    pub fn needs_subresource<W: kube::Resource<DynamicType = ()>>(
        mut self,
        subresource: &str,
        verbs: &[&str],
    ) -> Self {
        self.permissions.allow_subresource::<W>(subresource, verbs);
        self
    }

    /// Builds the controller around `reconciler`.
    pub fn build<R: Reconcile<K>>(self, reconciler: R) -> Controller<K, R> {
        let mut queue = WorkQueue::builder(self.name.clone());
        if let Some(limiter) = self.rate_limiter {
            queue = queue.rate_limiter(limiter);
        }
        if let Some(metrics) = &self.metrics {
            let provider: Arc<dyn QueueMetricsProvider> = Arc::new(metrics.clone());
            queue = queue.metrics(provider);
        }
        let primary = self.primary.informer.clone();
        let mut watches = self.watches;
        watches.insert(0, Box::new(self.primary));
        Controller {
            name: self.name,
            client: self.factory.client().clone(),
            primary,
            watches,
            reconciler: Arc::new(reconciler),
            queue: queue.build(),
            workers: self.workers,
            overload_backoff: self.overload_backoff,
            metrics: self.metrics,
            shutdown_timeout: self.shutdown_timeout,
            read_your_writes: self.read_your_writes,
            priority_queue: self.priority_queue,
            permissions: self.permissions,
        }
    }
}

/// A built controller: [`start`](Self::start) it, or [`run`](Self::run) it until a
/// future completes.
pub struct Controller<K, R = ()> {
    name: String,
    client: kube::Client,
    primary: Informer<K>,
    /// Every source, the primary first.
    watches: Vec<Box<dyn Watched>>,
    reconciler: Arc<R>,
    queue: WorkQueue<ObjectKey>,
    workers: usize,
    overload_backoff: Option<OverloadBackoff>,
    metrics: Option<Metrics>,
    shutdown_timeout: Duration,
    read_your_writes: bool,
    priority_queue: bool,
    permissions: Permissions,
}

impl<K, R> Debug for Controller<K, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.name)
            .field("watches", &self.watches.len())
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl<K> Controller<K, ()>
where
    K: Watchable,
{
    /// Starts configuring a controller named `name` (its queue's metric label, log
    /// field, field manager and event source) for primary type `K` from `source` (a
    /// `&Scope`, or a [`Source`]), with informers from `factory`.
    pub fn builder(
        name: impl Into<String>,
        factory: &InformerFactory,
        source: impl Into<Source<K>>,
    ) -> ControllerBuilder<K> {
        let enqueue_self: Mapper<K> = Arc::new(handler::enqueue_self::<K>);
        ControllerBuilder {
            name: name.into(),
            factory: factory.clone(),
            primary: source.into().resolve(factory, enqueue_self),
            watches: Vec::new(),
            workers: 1,
            rate_limiter: None,
            overload_backoff: Some(OverloadBackoff::default()),
            metrics: factory.metrics().cloned(),
            shutdown_timeout: Duration::from_secs(30),
            read_your_writes: true,
            priority_queue: true,
            permissions: {
                let mut permissions = Permissions::new();
                permissions.allow::<K>(rbac::WATCH);
                // Every controller records events (core/v1: created, then patched as
                // they repeat).
                permissions.allow::<k8s_openapi::api::core::v1::Event>(&["create", "patch"]);
                permissions
            },
        }
    }
}

impl<K, R> Controller<K, R>
where
    K: Watchable,
    R: Reconcile<K>,
{
    /// The controller's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the controller needs to be allowed: `list` and `watch` on every type it
    /// watches, what its builder declared it [`needs`](ControllerBuilder::needs),
    /// and events.
    pub fn permissions(&self) -> &Permissions {
        &self.permissions
    }

    /// The controller's work queue, e.g. to enqueue a key by hand.
    pub fn queue(&self) -> &WorkQueue<ObjectKey> {
        &self.queue
    }

    /// Runs the controller on a new task; the handle stops and joins it.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(self) -> ControllerHandle {
        let stop = CancellationToken::new();
        let name = self.name.clone();
        let task = tokio::spawn(self.run(stop.clone().cancelled_owned()));
        ControllerHandle { name, stop, task }
    }

    /// Runs until `shutdown` completes: subscribes to the informers, starts them, waits
    /// for every cache to sync, then reconciles with the configured workers. On
    /// shutdown it cancels the reconciles' token, stops taking keys, waits up to the
    /// shutdown timeout for in-flight reconciles, aborts the rest, and releases its
    /// informers (each stops if no other controller reads it).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        self.run_with(
            Lifecycle {
                synced: Box::new(|| {}),
                leading: Box::pin(std::future::ready(())),
                abort: Box::pin(std::future::pending()),
            },
            shutdown,
        )
        .await;
    }

    /// [`run`](Self::run) with the manager's gates: caches start and sync at once (a
    /// standby keeps them warm), then workers wait for `leading`; `abort` stops the
    /// workers at once, cancelling in-flight reconciles (fencing).
    pub(crate) async fn run_with(
        self,
        lifecycle: Lifecycle,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        // kube-controller-manager's words, so its readers find the same three lines:
        // "Starting controller", "Caches are synced", "Started controller" (the last
        // once workers run, which under leader election waits for the lease).
        tracing::info!(controller = %self.name, "Starting controller");
        let context = Arc::new(self.context());
        // Keys parked behind their own writes come back once a watch shows them.
        let resume_parked: source::AfterChange = match &context.writes {
            Some(writes) => {
                let (writes, queue) = (writes.clone(), self.queue.clone());
                Arc::new(move || {
                    for key in writes.take_ready() {
                        queue.add(key);
                    }
                })
            }
            None => Arc::new(|| {}),
        };
        let attached: Vec<_> = self
            .watches
            .iter()
            .map(|watch| {
                watch.attach(
                    self.queue.clone(),
                    resume_parked.clone(),
                    self.priority_queue,
                )
            })
            .collect();
        let synced = futures::future::join_all(self.watches.iter().map(|w| w.wait_for_sync()));
        let Lifecycle {
            synced: on_synced,
            leading,
            abort,
        } = lifecycle;
        tokio::pin!(shutdown);
        let name = &self.name;
        let ready = async {
            synced.await;
            tracing::info!(controller = %name, "Caches are synced");
            on_synced();
            leading.await;
        };
        let ready = tokio::select! {
            _ = ready => true,
            _ = &mut shutdown => false,
        };
        if ready {
            let engine = engine::Engine {
                primary: self.primary.store().clone(),
                reconciler: self.reconciler.clone(),
                queue: self.queue.clone(),
                workers: self.workers,
                overload: self.overload_backoff.map(|backoff| {
                    Arc::new(overload::OverloadGate::new(
                        backoff,
                        &self.name,
                        self.queue.clone(),
                        self.metrics.as_ref(),
                    ))
                }),
                metrics: self.metrics.clone(),
                shutdown_timeout: self.shutdown_timeout,
                context: context.clone(),
            };
            tokio::select! {
                _ = engine.run(shutdown) => {}
                // Dropping the engine's future aborts its workers.
                _ = abort => context.cancel.cancel(),
            }
        }
        drop(attached);
        self.queue.shutdown();
    }

    fn context(&self) -> context::Shared {
        let stores: HashMap<_, _> = self
            .watches
            .iter()
            .rev() // the first source of a type wins
            .map(|watch| (watch.watched_type(), watch.versioned()))
            .collect();
        context::Shared {
            name: self.name.as_str().into(),
            recorder: EventRecorder::new(self.client.clone(), &self.name),
            client: self.client.clone(),
            cancel: CancellationToken::new(),
            writes: self
                .read_your_writes
                .then(|| Arc::new(crate::consistency::ReadYourWrites::new())),
            stores,
        }
    }
}

/// How a [`Manager`](crate::manager::Manager) runs a controller: told when its caches
/// have synced, reconciling once `leading` completes, stopped at once by `abort`.
pub(crate) struct Lifecycle {
    pub(crate) synced: Box<dyn FnOnce() + Send>,
    pub(crate) leading: futures::future::BoxFuture<'static, ()>,
    pub(crate) abort: futures::future::BoxFuture<'static, ()>,
}

/// A running controller, from [`Controller::start`]. Dropping the handle leaves the
/// controller running; [`shutdown`](Self::shutdown) stops it and waits.
#[derive(Debug)]
pub struct ControllerHandle {
    name: String,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl ControllerHandle {
    /// The controller's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Begins a graceful shutdown (see [`Controller::run`]); returns at once.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Whether the controller has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until the controller has stopped (after [`stop`](Self::stop), or a
    /// panic outside any reconcile, which is re-raised here).
    pub async fn join(self) {
        if let Err(error) = self.task.await
            && error.is_panic()
        {
            std::panic::resume_unwind(error.into_panic());
        }
    }

    /// Stops the controller and waits until it has: in-flight reconciles finish or
    /// are aborted after the shutdown timeout, and its informers are released.
    pub async fn shutdown(self) {
        self.stop();
        self.join().await;
    }
}

/// Completes on SIGTERM or Ctrl-C (SIGINT): the usual trigger for a graceful shutdown.
#[cfg(unix)]
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
