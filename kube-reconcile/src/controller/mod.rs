//! Controllers: informers feed a work queue, workers run a [`Reconcile`] per key.
//!
//! [`Controller::builder`] names the primary type; [`owns`](ControllerBuilder::owns)
//! adds child types (events enqueue the controller owner), [`watches`]
//! (ControllerBuilder::watches) any type with a mapper, [`filter`]
//! (ControllerBuilder::filter) drops primary events that should not enqueue.
//! [`Controller::run`] starts the informers, waits until every cache it reads has
//! synced, runs the workers, and on shutdown stops taking keys and lets in-flight
//! reconciles finish within [`shutdown_timeout`](ControllerBuilder::shutdown_timeout).
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use std::convert::Infallible;
//! use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
//! use kube_reconcile::{
//!     controller::{Controller, filter, shutdown_signal},
//!     informer::{InformerFactory, Scope},
//!     reconcile::{Action, Reconcile, Request},
//! };
//!
//! struct Reconciler;
//! impl Reconcile<ReplicaSet> for Reconciler {
//!     type Error = Infallible;
//!     async fn reconcile(&self, request: Request<ReplicaSet>) -> Result<Action, Infallible> {
//!         println!("reconciling {}", request.key);
//!         Ok(Action::Done)
//!     }
//! }
//!
//! let informers = InformerFactory::new(client);
//! Controller::builder("replicaset", &informers, &Scope::all())
//!     .filter(filter::generation_changed)
//!     .owns::<Pod>(&Scope::all())
//!     .workers(5)
//!     .build(Reconciler)
//!     .run(shutdown_signal())
//!     .await;
//! # Ok(()) }
//! ```

mod engine;
pub mod filter;
pub mod handler;

use std::{fmt::Debug, future::Future, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use kube::Resource;

use crate::{
    ObjectKey,
    informer::{Event, HandlerId, Informer, InformerFactory, Scope, Watchable},
    metrics::Metrics,
    queue::{QueueMetricsProvider, RateLimiter, WorkQueue},
    reconcile::Reconcile,
};
pub use filter::Filter;
pub use handler::Mapper;

/// A cache the controller reads: started with it, waited for before workers start.
trait Cache: Send + Sync {
    fn start(&self);
    fn wait_for_sync(&self) -> BoxFuture<'_, ()>;
}

impl<K: Resource + Clone + Send + Sync + 'static> Cache for Informer<K> {
    fn start(&self) {
        Informer::start(self)
    }
    fn wait_for_sync(&self) -> BoxFuture<'_, ()> {
        Box::pin(Informer::wait_for_sync(self))
    }
}

type Registration = Box<dyn FnOnce(WorkQueue<ObjectKey>) -> Box<dyn FnOnce() + Send> + Send>;

/// Configures a controller; made by [`Controller::builder`].
#[must_use]
pub struct ControllerBuilder<K> {
    name: String,
    factory: InformerFactory,
    primary: Informer<K>,
    filters: Vec<Filter<K>>,
    caches: Vec<Arc<dyn Cache>>,
    registrations: Vec<Registration>,
    workers: usize,
    rate_limiter: Option<Box<dyn RateLimiter<ObjectKey>>>,
    metrics: Option<Metrics>,
    shutdown_timeout: Duration,
}

impl<K> Debug for ControllerBuilder<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerBuilder")
            .field("name", &self.name)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl<K> ControllerBuilder<K>
where
    K: Watchable,
{
    /// Drops primary-type events for which `filter` returns false (see [`filter`] for
    /// ready-made ones). Several filters must all pass.
    pub fn filter(mut self, filter: impl Fn(&Event<K>) -> bool + Send + Sync + 'static) -> Self {
        self.filters.push(Arc::new(filter));
        self
    }

    /// Watches children of type `C` in `scope`: each event enqueues the child's
    /// controller owner if it is a `K` (old and new owner on an update).
    pub fn owns<C>(self, scope: &Scope) -> Self
    where
        C: Watchable,
    {
        let primary = self.primary.store().clone();
        self.watches::<C>(scope, move |event| {
            handler::enqueue_controller_owner(&primary, event)
        })
    }

    /// Watches `W` in `scope`, enqueueing the keys `mapper` returns for each event.
    pub fn watches<W>(
        self,
        scope: &Scope,
        mapper: impl Fn(&Event<W>) -> Vec<ObjectKey> + Send + Sync + 'static,
    ) -> Self
    where
        W: Watchable,
    {
        let informer = self.factory.informer::<W>(scope);
        self.watches_informer(informer, mapper)
    }

    /// Watches an informer you built (e.g. a metadata-only one from
    /// [`InformerFactory::metadata_informer`]), enqueueing what `mapper` returns.
    pub fn watches_informer<W>(
        mut self,
        informer: Informer<W>,
        mapper: impl Fn(&Event<W>) -> Vec<ObjectKey> + Send + Sync + 'static,
    ) -> Self
    where
        W: Resource + Clone + Send + Sync + 'static,
    {
        self.caches.push(Arc::new(informer.clone()));
        self.registrations.push(Box::new(move |queue| {
            let id = informer.add_handler(move |event| {
                for key in mapper(event) {
                    queue.add(key);
                }
            });
            remover(informer, id)
        }));
        self
    }

    /// How many keys are reconciled at once (default 1). Reconciles of one key never
    /// overlap, whatever this is.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// The limiter behind retries (default [`crate::queue::default_rate_limiter`]).
    pub fn rate_limiter(mut self, limiter: impl RateLimiter<ObjectKey> + 'static) -> Self {
        self.rate_limiter = Some(Box::new(limiter));
        self
    }

    /// Reports the queue's `workqueue_*` and the reconciles' `controller_runtime_*`
    /// metrics into `metrics`.
    pub fn metrics(mut self, metrics: &Metrics) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// How long in-flight reconciles may run after shutdown begins before they are
    /// cancelled (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
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
        let queue = queue.build();

        let filters = self.filters;
        let mut registrations = self.registrations;
        let primary = self.primary.clone();
        registrations.insert(
            0,
            Box::new(move |queue: WorkQueue<ObjectKey>| {
                let id = primary.add_handler(move |event| {
                    if filters.iter().all(|f| f(event)) {
                        for key in handler::enqueue_self(event) {
                            queue.add(key);
                        }
                    }
                });
                remover(primary, id)
            }),
        );
        let mut caches = self.caches;
        caches.insert(0, Arc::new(self.primary.clone()));
        Controller {
            engine: engine::Engine {
                name: self.name,
                primary: self.primary,
                reconciler: Arc::new(reconciler),
                queue,
                workers: self.workers,
                metrics: self.metrics,
                shutdown_timeout: self.shutdown_timeout,
            },
            caches,
            registrations,
        }
    }
}

fn remover<W: Resource + Clone + Send + Sync + 'static>(
    informer: Informer<W>,
    id: HandlerId,
) -> Box<dyn FnOnce() + Send> {
    Box::new(move || informer.remove_handler(id))
}

/// A built controller; [`run`](Self::run) it.
pub struct Controller<K, R = ()> {
    engine: engine::Engine<K, R>,
    caches: Vec<Arc<dyn Cache>>,
    registrations: Vec<Registration>,
}

impl<K, R> Debug for Controller<K, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.engine.name)
            .field("workers", &self.engine.workers)
            .finish_non_exhaustive()
    }
}

impl<K> Controller<K, ()>
where
    K: Watchable,
{
    /// Starts configuring a controller named `name` (its queue's metric label and log
    /// field) for primary type `K` in `scope`, with informers from `factory`.
    pub fn builder(
        name: impl Into<String>,
        factory: &InformerFactory,
        scope: &Scope,
    ) -> ControllerBuilder<K> {
        ControllerBuilder {
            name: name.into(),
            factory: factory.clone(),
            primary: factory.informer::<K>(scope),
            filters: Vec::new(),
            caches: Vec::new(),
            registrations: Vec::new(),
            workers: 1,
            rate_limiter: None,
            metrics: None,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl<K, R> Controller<K, R>
where
    K: Watchable,
    R: Reconcile<K>,
{
    /// The controller's work queue, e.g. to enqueue a key by hand.
    pub fn queue(&self) -> &WorkQueue<ObjectKey> {
        &self.engine.queue
    }

    /// Runs until `shutdown` completes: subscribes to the informers, starts them, waits
    /// for every cache to sync, then reconciles with the configured workers. On
    /// shutdown it stops taking keys, waits up to the shutdown timeout for in-flight
    /// reconciles, cancels the rest, and unsubscribes.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let removers: Vec<_> = self
            .registrations
            .into_iter()
            .map(|register| register(self.engine.queue.clone()))
            .collect();
        for cache in &self.caches {
            cache.start();
        }
        let synced = futures::future::join_all(self.caches.iter().map(|c| c.wait_for_sync()));
        tokio::pin!(shutdown);
        tokio::select! {
            _ = synced => self.engine.run(shutdown).await,
            _ = &mut shutdown => {}
        }
        for remove in removers {
            remove();
        }
        self.engine.queue.shutdown();
    }
}

/// Completes on SIGTERM or Ctrl-C (SIGINT): the usual trigger for a graceful shutdown.
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
