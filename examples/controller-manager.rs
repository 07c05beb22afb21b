//! Runs kube-reconcile's example controllers with kube-controller-manager-like flags.
//!
//! ```text
//! cargo run --example controller-manager                       # on a local control plane
//! cargo run --example controller-manager -- --kubeconfig ~/.kube/config --controllers=deployment,replicaset
//! cargo run --example controller-manager -- --print-rbac --controllers=replicaset   # its ClusterRole
//! ```
//!
//! Without `--kubeconfig` it starts the local control plane (etcd, kube-apiserver,
//! kube-scheduler, kwok with `--fake-nodes` Nodes) and prints how to reach it.
//!
//! Like kube-controller-manager it elects a leader on a Lease by default
//! (`--leader-elect=false` to run alone) and serves `/metrics`, `/healthz` and
//! `/readyz` (`--health-address`). A replica that loses the lease exits non-zero.

#[path = "common/cluster.rs"]
mod cluster;
mod controllers;
#[path = "common/logging.rs"]
mod logging;

use std::{path::PathBuf, time::Duration};

use anyhow::bail;
use clap::{ArgAction, Parser};
use kube_reconcile::{
    informer::Scope,
    leader::LeaderElection,
    manager::{Manager, ManagerBuilder},
    testing::ControlPlane,
};

/// Every controller this binary can run, with kube-controller-manager's name for it.
const CONTROLLERS: &[(&str, &str)] = &[
    ("deployment", "deployment-controller"),
    ("endpoints", "endpoints-controller"),
    ("endpointslice", "endpointslice-controller"),
    ("replicaset", "replicaset-controller"),
];

#[derive(Debug, Parser)]
#[command(about = "Runs kube-reconcile's example controllers")]
struct Args {
    /// kubeconfig of the cluster to manage; without it a local control plane is started.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Controllers to run, comma-separated (`*` for all): deployment, endpoints,
    /// endpointslice, replicaset.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    controllers: Vec<String>,
    /// Workers of the Deployment controller.
    #[arg(long, default_value_t = 5)]
    concurrent_deployment_syncs: usize,
    /// Workers of the EndpointSlice controller, and of the Endpoints controller.
    #[arg(long, default_value_t = 5)]
    concurrent_service_endpoint_syncs: usize,
    /// Endpoints per EndpointSlice at most.
    #[arg(long, default_value_t = controllers::endpointslice::MAX_ENDPOINTS_PER_SLICE)]
    max_endpoints_per_slice: usize,
    /// Delay before a pod change resyncs its Services' EndpointSlices, so that changes
    /// arriving together end in one write (Go duration, e.g. `500ms`, `1s`).
    #[arg(long, default_value = "0s", value_parser = go_duration)]
    endpointslice_updates_batch_period: Duration,
    /// The same for the Endpoints controller.
    #[arg(long, default_value = "0s", value_parser = go_duration)]
    endpoint_updates_batch_period: Duration,
    /// Workers of the ReplicaSet controller.
    #[arg(long, default_value_t = 5)]
    concurrent_replicaset_syncs: usize,
    /// Client requests per second, for the shared informers and for each controller
    /// (0 or less: no client-side limit).
    #[arg(long, default_value_t = 20.0)]
    kube_api_qps: f64,
    /// Client request burst.
    #[arg(long, default_value_t = 30)]
    kube_api_burst: u32,
    /// Talk to the API server over HTTP/2, every request and watch on one connection
    /// (as kube-controller-manager does), rather than HTTP/1.1.
    #[arg(long)]
    http2: bool,
    /// Elect a leader among replicas on a Lease before reconciling.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    leader_elect: bool,
    /// How long a lease holds without renewal.
    #[arg(long, default_value = "15s", value_parser = go_duration)]
    leader_elect_lease_duration: Duration,
    /// How long the leader retries a failing renewal before it gives up.
    #[arg(long, default_value = "10s", value_parser = go_duration)]
    leader_elect_renew_deadline: Duration,
    /// How often candidates try and the leader renews.
    #[arg(long, default_value = "2s", value_parser = go_duration)]
    leader_elect_retry_period: Duration,
    /// The Lease's name.
    #[arg(long, default_value = "kube-reconcile-controller-manager")]
    leader_elect_resource_name: String,
    /// The Lease's namespace.
    #[arg(long, default_value = "kube-system")]
    leader_elect_resource_namespace: String,
    /// This replica's identity in the Lease (default: host name and a random suffix).
    #[arg(long)]
    leader_elect_identity: Option<String>,
    /// Where to serve /metrics, /healthz and /readyz (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:10257")]
    health_address: std::net::SocketAddr,
    /// Print the ClusterRole the enabled controllers need (and the leader Lease) as
    /// YAML, and exit.
    #[arg(long)]
    print_rbac: bool,
    /// Threads of the async runtime: 0 for one per core; 1 runs everything on the main
    /// thread (a current-thread runtime, no hand-offs between threads).
    #[arg(long, default_value_t = 0)]
    worker_threads: usize,
    /// Fake Nodes of the local control plane (ignored with --kubeconfig).
    #[arg(long, default_value_t = 3)]
    fake_nodes: usize,
}

fn main() -> anyhow::Result<()> {
    logging::init_tracing("info");
    let args = Args::parse();
    let runtime = match args.worker_threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        0 => tokio::runtime::Runtime::new()?,
        threads => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?,
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let enabled = enabled_controllers(&args.controllers)?;
    if !(1..=1000).contains(&args.max_endpoints_per_slice) {
        bail!("--max-endpoints-per-slice must be between 1 and 1000, as kube-controller-manager's");
    }
    let election = args.leader_elect.then(|| {
        let election = LeaderElection::new(
            &args.leader_elect_resource_namespace,
            &args.leader_elect_resource_name,
        )
        .lease_duration(args.leader_elect_lease_duration)
        .renew_deadline(args.leader_elect_renew_deadline)
        .retry_period(args.leader_elect_retry_period);
        match &args.leader_elect_identity {
            Some(identity) => election.identity(identity),
            None => election,
        }
    });
    // Requests carry the replica's identity, so the API server's audit log tells
    // replicas apart.
    let identity = election.as_ref().map(|e| e.identity_str().to_string());
    let user_agent = format!(
        "kube-reconcile-controller-manager/{}",
        identity.as_deref().unwrap_or("single")
    );

    if args.print_rbac {
        // Nothing is sent: the client only has to exist for the controllers to be built.
        let offline = kube::Client::try_from(kube::Config::new("https://127.0.0.1:1".parse()?))?;
        let builder = Manager::builder(offline);
        let manager = build_manager(&args, &enabled, builder, election, None).await?;
        let role = manager
            .permissions()
            .cluster_role("kube-reconcile-controller-manager");
        print!("{}", serde_saphyr::to_string(&role)?);
        return Ok(());
    }
    let options = cluster::ClientOptions {
        user_agent: Some(&user_agent),
        http2: args.http2,
    };
    let cluster::Connection {
        client,
        server_url,
        control_plane,
    } = cluster::connect(args.kubeconfig.as_deref(), options, || {
        ControlPlane::builder().fake_nodes(args.fake_nodes)
    })
    .await?;
    let address = Some(args.health_address);
    let builder = Manager::builder(client).server_url(server_url);
    let manager = build_manager(&args, &enabled, builder, election, address).await?;
    println!("Controllers: {}.", enabled.join(", "));
    if let Some(address) = manager.health_address() {
        println!("Serving /metrics, /healthz and /readyz on http://{address}");
    }
    if let Some(identity) = &identity {
        println!("Leader election as {identity}; reconciling once leading.");
    }
    // Losing the lease ends the process (non-zero), to be restarted as a candidate.
    cluster::run(manager, control_plane, async { Ok(()) }).await
}

/// The manager with the enabled controllers, as the flags say.
async fn build_manager(
    args: &Args,
    enabled: &[&str],
    mut builder: ManagerBuilder,
    election: Option<LeaderElection>,
    health_address: Option<std::net::SocketAddr>,
) -> anyhow::Result<Manager> {
    if let Some(address) = health_address {
        builder = builder.health_address(address);
    }
    if args.kube_api_qps > 0.0 {
        // As in kube-controller-manager, the shared informers and each controller get a
        // client of their own, each with the --kube-api-qps/--kube-api-burst budget.
        builder = builder.kube_api_limits(args.kube_api_qps, args.kube_api_burst);
    }
    if let Some(election) = election {
        builder = builder.leader_election(election);
    }
    let mut manager = builder.build().await?;
    let (factory, scope) = (manager.factory().clone(), Scope::all());
    for name in enabled {
        let client = manager.controller_client();
        match *name {
            "deployment" => manager.add(controllers::deployment::controller(
                client,
                &factory,
                &scope,
                args.concurrent_deployment_syncs,
            )),
            "endpoints" => manager.add(controllers::endpoints::controller(
                client,
                &factory,
                &scope,
                args.concurrent_service_endpoint_syncs,
                args.endpoint_updates_batch_period,
            )),
            "endpointslice" => manager.add(controllers::endpointslice::controller(
                client,
                &factory,
                &scope,
                args.concurrent_service_endpoint_syncs,
                args.max_endpoints_per_slice,
                args.endpointslice_updates_batch_period,
            )),
            "replicaset" => manager.add(controllers::replicaset::controller(
                client,
                &factory,
                &scope,
                args.concurrent_replicaset_syncs,
            )),
            other => unreachable!("{other} is in CONTROLLERS but not added"),
        }
    }
    Ok(manager)
}

/// Resolves `--controllers` (our names or kube-controller-manager's, `*` for all).
fn enabled_controllers(requested: &[String]) -> anyhow::Result<Vec<&'static str>> {
    let mut enabled = Vec::new();
    for name in requested {
        let found: Vec<&'static str> = CONTROLLERS
            .iter()
            .filter(|(ours, theirs)| name == "*" || name == ours || name == theirs)
            .map(|(ours, _)| *ours)
            .collect();
        if found.is_empty() {
            let known: Vec<_> = CONTROLLERS.iter().map(|(ours, _)| *ours).collect();
            bail!("unknown controller {name:?}; known: {}", known.join(", "));
        }
        enabled.extend(found);
    }
    enabled.sort();
    enabled.dedup();
    Ok(enabled)
}

/// Parses a duration as Go's `time.ParseDuration` writes them: decimal numbers with a
/// unit each (`ns`, `us`, `ms`, `s`, `m`, `h`), e.g. `1.5s` or `1m30s`.
fn go_duration(text: &str) -> Result<Duration, String> {
    const UNITS: &[(&str, f64)] = &[
        ("ns", 1e-9),
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ms", 1e-3),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
    ];
    let invalid = || format!("invalid duration {text:?} (e.g. 500ms, 1s, 1m30s)");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut seconds = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_end].parse().map_err(|_| invalid())?;
        rest = &rest[number_end..];
        // Longest unit first, so "ms" is not read as "m".
        let (unit, scale) = UNITS
            .iter()
            .filter(|(unit, _)| rest.starts_with(unit))
            .max_by_key(|(unit, _)| unit.len())
            .ok_or_else(invalid)?;
        seconds += number * scale;
        rest = &rest[unit.len()..];
    }
    if text.is_empty() {
        return Err(invalid());
    }
    Ok(Duration::from_secs_f64(seconds))
}
