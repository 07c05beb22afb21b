//! Runs kube-reconcile's example controllers with kube-controller-manager-like flags.
//!
//! ```text
//! cargo run --example controller-manager                       # on a local control plane
//! cargo run --example controller-manager -- --kubeconfig ~/.kube/config --controllers=deployment,replicaset
//! ```
//!
//! Without `--kubeconfig` it starts the local control plane (etcd, kube-apiserver,
//! kube-scheduler, kwok with `--fake-nodes` Nodes) and prints how to reach it.

#[path = "common/cluster.rs"]
mod cluster;
mod controllers;

use std::{path::PathBuf, time::Duration};

use anyhow::bail;
use clap::{ArgAction, Parser};
use kube_reconcile::{
    informer::{InformerFactory, Scope},
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
    /// Leader election; only `false` is supported so far.
    #[arg(long, default_value_t = false, action = ArgAction::Set)]
    leader_elect: bool,
    /// Fake Nodes of the local control plane (ignored with --kubeconfig).
    #[arg(long, default_value_t = 3)]
    fake_nodes: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cluster::init_tracing("info,kube=warn");
    let args = Args::parse();
    if args.leader_elect {
        bail!("leader election is not implemented yet; run with --leader-elect=false");
    }
    let enabled = enabled_controllers(&args.controllers)?;
    if !(1..=1000).contains(&args.max_endpoints_per_slice) {
        bail!("--max-endpoints-per-slice must be between 1 and 1000, as kube-controller-manager's");
    }

    let (client, control_plane) = cluster::connect(args.kubeconfig.as_deref(), || {
        ControlPlane::builder().fake_nodes(args.fake_nodes)
    })
    .await?;
    // As in kube-controller-manager, the shared informers and each controller get a
    // client of their own, each with the --kube-api-qps/--kube-api-burst budget.
    let limited = |client: &kube::Client| {
        if args.kube_api_qps > 0.0 {
            kube_reconcile::client::rate_limited(
                client.clone(),
                args.kube_api_qps,
                args.kube_api_burst,
            )
        } else {
            client.clone()
        }
    };

    let factory = InformerFactory::new(limited(&client));
    let mut running = Vec::new();
    for name in enabled {
        match name {
            "deployment" => {
                let controller = controllers::deployment::controller(
                    limited(&client),
                    &factory,
                    &Scope::all(),
                    args.concurrent_deployment_syncs,
                );
                running.push(controller.start());
            }
            "endpoints" => {
                let controller = controllers::endpoints::controller(
                    limited(&client),
                    &factory,
                    &Scope::all(),
                    args.concurrent_service_endpoint_syncs,
                    args.endpoint_updates_batch_period,
                );
                running.push(controller.start());
            }
            "endpointslice" => {
                let controller = controllers::endpointslice::controller(
                    limited(&client),
                    &factory,
                    &Scope::all(),
                    args.concurrent_service_endpoint_syncs,
                    args.max_endpoints_per_slice,
                    args.endpointslice_updates_batch_period,
                );
                running.push(controller.start());
            }
            "replicaset" => {
                let controller = controllers::replicaset::controller(
                    limited(&client),
                    &factory,
                    &Scope::all(),
                    args.concurrent_replicaset_syncs,
                );
                running.push(controller.start());
            }
            other => unreachable!("{other} is in CONTROLLERS but not started"),
        }
        println!("Started the {name} controller.");
    }
    cluster::run_until_signal(running, control_plane).await;
    Ok(())
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
