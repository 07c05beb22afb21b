//! kube-reconcile's ReplicaSet controller against kube-controller-manager's, head to head.
//!
//! ```text
//! cargo build --release --example controller-manager
//! cargo bench --bench replicaset_head_to_head            # 3 runs of each configuration
//! cargo bench --bench replicaset_head_to_head -- 5       # 5 runs
//! ```
//!
//! Each run starts a fresh control plane (etcd, kube-apiserver, kube-scheduler with a
//! client limit high enough not to be the bottleneck, kwok with 10 fake Nodes) and one
//! controller as its own process — kube-controller-manager running only
//! `replicaset-controller`, or our `controller-manager` example — with 5 workers and the
//! same client limits. A plain client then creates 100 ReplicaSets of 20 replicas at once
//! (2,000 pods), and the run measures:
//! - create time: from the first create until all 2,000 pods exist (the controller's
//!   create rate, comparable with the plain client below);
//! - converge time: from the first create until every ReplicaSet reports 20 available;
//! - the controller's CPU seconds over that time and its peak RSS (VmHWM), from /proc;
//! - API requests per created pod: the API server's `apiserver_request_total` for pod
//!   creates and every ReplicaSet request (status writes, reads) except the bench's own
//!   ReplicaSet creates and list polls, divided by 2,000. Event
//!   writes are left out: the scheduler writes events too, and the counter does not say
//!   who sent a request.
//!
//! - control-plane cores busy: CPU seconds of etcd, kube-apiserver, kube-scheduler and
//!   kwok over the converge time (this machine has 2 cores), to tell when the machine,
//!   not the controller, is the limit.
//!
//! Configurations: QPS 100 / burst 100 for both, then no client-side limit (ours with
//! `--kube-api-qps=0`, kube-controller-manager with 10000/10000). A last part measures the
//! physical limit: a plain client creating 2,000 bare pods with 64 requests in flight.
//!
//! `HEAD_TO_HEAD_SPLIT_CORES=1 cargo bench --bench replicaset_head_to_head` gives the
//! control plane CPU 1 and the controller (and the plain client) CPU 0, so neither
//! takes the other's core. `HEAD_TO_HEAD_OURS_ARGS="--http2"` passes flags to our
//! controller-manager (here: its HTTP/2 client).

mod common;

use common::head_to_head::{
    CONFIGURATIONS, Metric, Results, Side, alternating_runs, cpu_seconds, median,
    our_controller_manager, peak_rss_mib, pin_control_plane_if_split, pin_self_if_split, pod_count,
    request_counts, requests_between, spawn_ours,
};

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
};
use kube_reconcile::testing::ControlPlane;
use serde_json::json;

const REPLICA_SETS: usize = 100;
const REPLICAS: i32 = 20;
const PODS: usize = REPLICA_SETS * REPLICAS as usize;

#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Seconds until all 2,000 pods exist (the controller's create rate).
    created: f64,
    /// Cores kept busy by etcd, kube-apiserver, kube-scheduler and kwok while
    /// converging (2.0 = this machine saturated).
    control_plane_cores: f64,
    converge: f64,
    cpu: f64,
    peak_rss_mib: f64,
    requests_per_pod: f64,
}

fn control_plane(
    side: Side,
    limits: Option<(u32, u32)>,
) -> kube_reconcile::testing::ControlPlaneBuilder {
    let builder = ControlPlane::builder()
        .fake_nodes(10)
        .kube_scheduler_args(["--kube-api-qps=5000", "--kube-api-burst=5000"]);
    match side {
        Side::KubeReconcile => builder,
        Side::KubeControllerManager => {
            let (qps, burst) = limits.unwrap_or((10_000, 10_000));
            builder
                .kube_controller_manager(["replicaset-controller"])
                .kube_controller_manager_args([
                    format!("--kube-api-qps={qps}"),
                    format!("--kube-api-burst={burst}"),
                    "--concurrent-replicaset-syncs=5".to_string(),
                ])
        }
    }
}

/// Controller-attributable requests: pod creates and every ReplicaSet request but the
/// bench's own (creating them, polling the list).
async fn controller_requests(client: &Client) -> BTreeMap<String, f64> {
    request_counts(client, |r| {
        let pod_create = r.resource == "pods" && r.subresource.is_empty() && r.verb == "POST";
        let replica_sets = r.resource == "replicasets" && !matches!(r.verb, "POST" | "LIST");
        pod_create || replica_sets
    })
    .await
}

fn replica_set(i: usize) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": format!("rs-{i:03}")},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": format!("rs-{i:03}")}},
            "template": {"metadata": {"labels": {"app": format!("rs-{i:03}")}},
                         "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                                  "terminationGracePeriodSeconds": 0}},
        }
    }))
    .unwrap()
}

async fn run_once(side: Side, limits: Option<(u32, u32)>, ours: &Path) -> anyhow::Result<Measured> {
    let cp = control_plane(side, limits).start().await?;
    pin_control_plane_if_split(&cp)?;
    let client = cp.client().await?;
    let mut ours_process = None;
    let pid = match side {
        Side::KubeControllerManager => cp.pid("kube-controller-manager").expect("started"),
        Side::KubeReconcile => {
            let child = spawn_ours(
                ours,
                &cp,
                &[
                    "--controllers=replicaset",
                    "--concurrent-replicaset-syncs=5",
                ],
                limits,
            )?;
            let pid = child.id();
            ours_process = Some(child);
            pid
        }
    };
    // Both controllers start their informers and wait for them to sync.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let api = Api::<ReplicaSet>::namespaced(client.clone(), "default");
    let components = ["etcd", "kube-apiserver", "kube-scheduler", "kwok"].map(|c| cp.pid(c));
    let control_plane_cpu = || {
        components
            .iter()
            .flatten()
            .map(|p| cpu_seconds(*p))
            .sum::<f64>()
    };
    let control_plane_before = control_plane_cpu();
    let (cpu_before, requests_before) = (cpu_seconds(pid), controller_requests(&client).await);
    let started = Instant::now();
    stream::iter(0..REPLICA_SETS)
        .map(|i| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &replica_set(i)).await }
        })
        .buffer_unordered(50)
        .try_collect::<Vec<_>>()
        .await?;
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    let mut created = None;
    loop {
        if created.is_none() && pod_count(&pods).await? >= PODS {
            created = Some(started.elapsed().as_secs_f64());
        }
        let replica_sets = api.list(&ListParams::default()).await?.items;
        let available = replica_sets
            .iter()
            .filter(|rs| rs.status.as_ref().and_then(|s| s.available_replicas) == Some(REPLICAS))
            .count();
        if available == REPLICA_SETS {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "{side:?} did not converge"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let converge = started.elapsed().as_secs_f64();
    let control_plane_cores = (control_plane_cpu() - control_plane_before) / converge;
    let (by_kind, requests) =
        requests_between(&requests_before, &controller_requests(&client).await);
    eprintln!("{side:?} requests: {by_kind:?}");
    let measured = Measured {
        created: created.unwrap_or(converge),
        control_plane_cores,
        converge,
        cpu: cpu_seconds(pid) - cpu_before,
        peak_rss_mib: peak_rss_mib(pid),
        requests_per_pod: requests / PODS as f64,
    };
    if let Some(mut child) = ours_process {
        let _ = child.kill();
        let _ = child.wait();
    }
    cp.stop().await;
    Ok(measured)
}

/// A plain client creating the pods itself: the API server's own limit.
async fn plain_client_rate() -> anyhow::Result<f64> {
    let cp = control_plane(Side::KubeReconcile, None).start().await?;
    pin_control_plane_if_split(&cp)?;
    let client = cp.client().await?;
    let pods = Api::<Pod>::namespaced(client, "default");
    let started = Instant::now();
    stream::iter(0..PODS)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("pod-{i:04}"), "labels": {"app": "plain"}},
                    "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
                }))
                .unwrap();
                pods.create(&PostParams::default(), &pod).await
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<_>>()
        .await?;
    let rate = PODS as f64 / started.elapsed().as_secs_f64();
    cp.stop().await;
    Ok(rate)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs = common::count_arg(3);
    let ours = our_controller_manager()?;
    pin_self_if_split()?;
    for (label, limits) in CONFIGURATIONS {
        let results: Results<Measured> =
            alternating_runs(runs, label, |side| run_once(side, limits, &ours)).await?;
        results.print_table(
            &format!("{label} ({runs} runs, medians)"),
            &[
                ("all pods created (s)", |m| m.created),
                ("converge time (s)", |m| m.converge),
                ("controller CPU (s)", |m| m.cpu),
                ("controller peak RSS (MiB)", |m| m.peak_rss_mib),
                ("API requests per pod", |m| m.requests_per_pod),
                ("control-plane cores busy", |m| m.control_plane_cores),
            ],
        );
        let rate = |side, f: Metric<Measured>| PODS as f64 / results.median(side, f);
        for (name, f) in [
            ("pods created / s", (|m| m.created) as Metric<Measured>),
            ("pods made available / s", |m| m.converge),
        ] {
            println!(
                "{name:<30} {:>14.0} {:>14.0}",
                rate(Side::KubeControllerManager, f),
                rate(Side::KubeReconcile, f)
            );
        }
    }
    let rates: Vec<f64> = {
        let mut rates = Vec::new();
        for _ in 0..runs {
            rates.push(plain_client_rate().await?);
        }
        rates
    };
    println!(
        "\nplain client creating {PODS} pods, 64 in flight: median {:.0} pods/s",
        median(rates)
    );
    Ok(())
}
