//! The manager: what every operator process needs around its controllers — one
//! client, one informer factory and one metrics registry shared by all of them, one
//! shutdown, leader election with fencing, and `/metrics`, `/healthz` and `/readyz`.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use std::convert::Infallible;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_reconcile::{leader::LeaderElection, manager::Manager, prelude::*};
//!
//! struct Noop;
//! impl Reconcile<ConfigMap> for Noop {
//!     type Error = Infallible;
//!     async fn reconcile(&self, _: Request<ConfigMap>) -> Result<Action, Infallible> {
//!         Ok(Action::Done)
//!     }
//! }
//!
//! let mut manager = Manager::builder(client)
//!     .leader_election(LeaderElection::new("kube-system", "my-operator"))
//!     .health_address("0.0.0.0:8080".parse()?)
//!     .build()
//!     .await?;
//! let controller = Controller::<ConfigMap>::builder("noop", manager.factory(), &Scope::all())
//!     .build(Noop);
//! manager.add(controller);
//! manager.run(shutdown_signal()).await?; // Err if leadership was lost: exit and restart
//! # Ok(()) }
//! ```
//!
//! With leader election every replica starts its informers at once and keeps its caches
//! warm; only the leader's workers reconcile. The manager's [`client`](Manager::client)
//! is [fenced](crate::leader::fenced): once the leader cannot renew within the renew
//! deadline, its writes fail without being sent and its controllers stop, in-flight
//! reconciles cancelled, and [`run`](Manager::run) returns
//! [`ManagerError::LostLeadership`]. A graceful shutdown drains the controllers, then
//! releases the lease so a standby takes over at once.
//!
//! The manager's clients also retry what a shedding API server turns away with 429 (or
//! a 5xx) and a `Retry-After`, after the delay it asks for, as client-go does
//! ([`honouring_retry_after`](crate::client::honouring_retry_after)).
//!
//! Besides the controllers' and work queues' metrics, `/metrics` reports the process,
//! read at each scrape: `process_resident_memory_bytes` and `process_open_fds` (Linux
//! only; from `/proc/self`) and `tokio_alive_tasks` (tasks alive on the runtime), to
//! watch a long-running operator for leaks.

mod http;
mod process;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use futures::future::BoxFuture;
use kube::Client;
use tokio::{net::TcpListener, sync::watch};
use tokio_util::sync::CancellationToken;

use crate::{
    controller::{Controller, Lifecycle},
    informer::{InformerFactory, Watchable},
    leader::{Elector, Fence, LeaderElection, LeaderElectionError, Leadership, LostLeadership},
    metrics::Metrics,
    rbac::Permissions,
    reconcile::Reconcile,
};

/// Why a manager could not start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The leader election settings are inconsistent.
    #[error(transparent)]
    LeaderElection(#[from] LeaderElectionError),
    /// The health and metrics address could not be bound.
    #[error("binding the health and metrics server to {address} failed")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// This replica lost the leader lease; its controllers were stopped. Exit (and be
    /// restarted) rather than run again, as kube-controller-manager does.
    #[error(transparent)]
    LostLeadership(#[from] LostLeadership),
}

/// Configures a [`Manager`]; made by [`Manager::builder`].
#[must_use]
pub struct ManagerBuilder {
    client: Client,
    election: Option<LeaderElection>,
    address: Option<SocketAddr>,
    limits: Option<(f64, u32)>,
    server_url: Option<String>,
}

impl std::fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("election", &self.election)
            .field("address", &self.address)
            .field("limits", &self.limits)
            .field("server_url", &self.server_url)
            .finish_non_exhaustive()
    }
}

impl ManagerBuilder {
    /// Elects a leader among replicas; without it every replica reconciles.
    pub fn leader_election(mut self, election: LeaderElection) -> Self {
        self.election = Some(election);
        self
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` on `address` (port 0 picks a free
    /// one; see [`Manager::health_address`]).
    pub fn health_address(mut self, address: SocketAddr) -> Self {
        self.address = Some(address);
        self
    }

    /// Client-side limits, as kube-controller-manager's `--kube-api-qps` and
    /// `--kube-api-burst`: the shared client (informers) and each
    /// [`controller_client`](Manager::controller_client) get a bucket of their own.
    /// Without it requests are not limited.
    pub fn kube_api_limits(mut self, qps: f64, burst: u32) -> Self {
        self.limits = Some((qps, burst));
        self
    }

    /// The client's API server URL (e.g. `kube::Config::cluster_url`), for the
    /// informers to name when a list or watch fails (see
    /// [`InformerFactory::with_server_url`]; a `kube::Client` cannot tell it).
    pub fn server_url(mut self, url: impl Into<String>) -> Self {
        self.server_url = Some(url.into());
        self
    }

    /// Binds the server's address and prepares the election.
    pub async fn build(self) -> Result<Manager, ManagerError> {
        let elector = self
            .election
            .map(|config| Elector::new(self.client.clone(), config))
            .transpose()?;
        // Fenced closest to the wire: a request waiting for a rate-limit token, or for
        // the server's Retry-After, is checked when it leaves, not before it waits.
        let fenced = match &elector {
            Some(elector) => crate::leader::fenced(self.client.clone(), elector.fence()),
            None => self.client.clone(),
        };
        let unlimited =
            crate::client::honouring_retry_after(fenced, crate::client::DEFAULT_MAX_RETRIES);
        let client = limit(&unlimited, self.limits);
        let listener = match self.address {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .map_err(|source| ManagerError::Bind { address, source })?,
            ),
            None => None,
        };
        let metrics = Metrics::new();
        process::register(&metrics);
        let mut factory = InformerFactory::new(client.clone()).with_metrics(&metrics);
        if let Some(url) = self.server_url {
            factory = factory.with_server_url(url);
        }
        Ok(Manager {
            factory,
            client,
            unlimited,
            limits: self.limits,
            metrics,
            elector,
            listener,
            controllers: Vec::new(),
            permissions: Permissions::new(),
        })
    }
}

type RunController = Box<dyn FnOnce(Lifecycle, CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// Runs controllers together; see the [module docs](self).
pub struct Manager {
    client: Client,
    /// The fenced client before client-side limits.
    unlimited: Client,
    limits: Option<(f64, u32)>,
    factory: InformerFactory,
    metrics: Metrics,
    elector: Option<Elector>,
    listener: Option<TcpListener>,
    controllers: Vec<(String, RunController)>,
    permissions: Permissions,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.controllers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Manager")
            .field("controllers", &names)
            .field("elector", &self.elector)
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// Starts configuring a manager around `client`.
    pub fn builder(client: Client) -> ManagerBuilder {
        ManagerBuilder {
            client,
            election: None,
            address: None,
            limits: None,
            server_url: None,
        }
    }

    /// The shared client (the informers' and the controllers' default): fenced when
    /// electing a leader, limited if [`kube_api_limits`](ManagerBuilder::kube_api_limits)
    /// says so.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A client for one controller's writes, like [`client`](Self::client) but with a
    /// rate-limit bucket of its own (as each kube-controller-manager controller has).
    pub fn controller_client(&self) -> Client {
        limit(&self.unlimited, self.limits)
    }

    /// The shared informer factory (on the manager's client and metrics): build every
    /// controller on it.
    pub fn factory(&self) -> &InformerFactory {
        &self.factory
    }

    /// The registry `/metrics` serves; controllers built on [`factory`](Self::factory)
    /// report to it. Register application metrics here too.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The fence that is open while this replica may write as leader (`None` without
    /// leader election), to fence clients of your own with
    /// [`fenced`](crate::leader::fenced).
    pub fn fence(&self) -> Option<Fence> {
        self.elector.as_ref().map(Elector::fence)
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served, if anywhere.
    pub fn health_address(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// What this process needs to be allowed: every controller's
    /// [`permissions`](Controller::permissions), and with leader election its Lease
    /// (read, watched by standbys, created and updated). `cluster_role` it for
    /// `--print-rbac`.
    pub fn permissions(&self) -> Permissions {
        let mut permissions = self.permissions.clone();
        if self.elector.is_some() {
            let lease = &["get", "list", "watch", "create", "update"];
            permissions.allow::<k8s_openapi::api::coordination::v1::Lease>(lease);
        }
        permissions
    }

    /// Adds a controller, to run with the others.
    pub fn add<K, R>(&mut self, controller: Controller<K, R>)
    where
        K: Watchable,
        R: Reconcile<K>,
    {
        let name = controller.name().to_string();
        self.permissions.merge(controller.permissions());
        let run: RunController = Box::new(move |lifecycle, stop| {
            Box::pin(async move { controller.run_with(lifecycle, stop.cancelled_owned()).await })
        });
        self.controllers.push((name, run));
    }

    /// Runs every controller until `shutdown` completes (then they drain, the lease is
    /// released, and this returns `Ok`) or leadership is lost (then they stop at once
    /// and this returns [`ManagerError::LostLeadership`]).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ManagerError> {
        let election = self.elector.map(|elector| {
            let status = elector.status();
            let lease = elector.lease_name().to_string();
            let stop = CancellationToken::new();
            tokio::spawn(report_leadership(
                status.clone(),
                self.metrics.clone(),
                lease,
            ));
            let task = tokio::spawn(elector.run(stop.clone()));
            (status, task, stop)
        });
        let leadership = election.as_ref().map(|(status, _, _)| status.clone());
        let synced = Arc::new(AtomicUsize::new(0));
        let health = http::Health {
            metrics: self.metrics.clone(),
            synced: synced.clone(),
            controllers: self.controllers.len(),
            leadership: leadership.clone(),
        };
        let server = self.listener.map(|l| tokio::spawn(http::serve(l, health)));

        let (stop, abort) = (CancellationToken::new(), CancellationToken::new());
        let mut running = Vec::new();
        for (_, run) in self.controllers {
            let synced = synced.clone();
            let lifecycle = Lifecycle {
                synced: Box::new(move || {
                    synced.fetch_add(1, Ordering::SeqCst);
                }),
                leading: Box::pin(until(leadership.clone(), Leadership::Leading)),
                abort: Box::pin(abort.clone().cancelled_owned()),
            };
            running.push(tokio::spawn(run(lifecycle, stop.clone())));
        }
        let lost = tokio::select! {
            _ = shutdown => false,
            _ = until(leadership.clone(), Leadership::Lost), if leadership.is_some() => true,
        };
        if lost {
            abort.cancel();
        } else {
            stop.cancel();
        }
        for controller in running {
            let _ = controller.await;
        }
        let mut outcome = Ok(());
        if let Some((_, task, stop)) = election {
            // Drained: now the lease may go (released on a graceful stop).
            stop.cancel();
            if let Ok(Err(lost)) = task.await {
                outcome = Err(ManagerError::LostLeadership(lost));
            }
        }
        if let Some(server) = server {
            server.abort();
        }
        outcome
    }
}

fn limit(client: &Client, limits: Option<(f64, u32)>) -> Client {
    match limits {
        Some((qps, burst)) if qps > 0.0 => crate::client::rate_limited(client.clone(), qps, burst),
        _ => client.clone(),
    }
}

/// Completes once `status` reaches `wanted`; at once without leader election (every
/// replica leads); never if the election ends elsewhere.
async fn until(status: Option<watch::Receiver<Leadership>>, wanted: Leadership) {
    let Some(mut status) = status else {
        return;
    };
    if status.wait_for(|s| *s == wanted).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Keeps `leader_election_master_status` in step with this replica's leadership.
async fn report_leadership(
    mut status: watch::Receiver<Leadership>,
    metrics: Metrics,
    lease: String,
) {
    loop {
        let leading = *status.borrow_and_update() == Leadership::Leading;
        metrics.set_leading(&lease, leading);
        if status.changed().await.is_err() {
            metrics.set_leading(&lease, false);
            return;
        }
    }
}
