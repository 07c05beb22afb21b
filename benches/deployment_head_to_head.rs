//! kube-reconcile's Deployment controller against kube-controller-manager's, head to
//! head, on a rolling update.
//!
//! ```text
//! cargo build --release --example controller-manager
//! cargo bench --bench deployment_head_to_head            # 3 runs of each configuration
//! cargo bench --bench deployment_head_to_head -- 5       # 5 runs
//! ```
//!
//! Each run starts a fresh control plane (etcd, kube-apiserver, kube-scheduler with a
//! client limit high enough not to be the bottleneck, kwok with 10 fake Nodes) and the
//! controllers as their own process — kube-controller-manager running
//! `deployment-controller` and `replicaset-controller`, or our `controller-manager`
//! example with both — with 5 workers each and the same client limits. A plain client
//! creates 20 Deployments of 50 replicas (1,000 pods) and waits until they are complete;
//! then it changes every template at once (a rolling update, maxSurge 25%,
//! maxUnavailable 25%), and the run measures, from that change:
//! - rollout time: until every Deployment reports all replicas updated and available,
//!   with its old ReplicaSets at 0;
//! - API requests per pod created: the API server's `apiserver_request_total` for pod
//!   creates and deletes and every ReplicaSet and Deployment request except the bench's
//!   own (its patches and list polls), divided by the 1,000 pods created;
//! - the controllers' CPU seconds over the rollout and their peak RSS (VmHWM) over the
//!   whole run, from /proc.
//!
//! Configurations: QPS 100 / burst 100 for both, then no client-side limit (ours with
//! `--kube-api-qps=0`, kube-controller-manager with 10000/10000). Sides alternate which
//! goes first from run to run.

mod common;

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use common::head_to_head::{
    CONFIGURATIONS, Results, Side, alternating_runs, cpu_seconds, our_controller_manager,
    peak_rss_mib, request_counts, requests_between, spawn_ours,
};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use kube_reconcile::testing::ControlPlane;
use serde_json::json;

const DEPLOYMENTS: usize = 20;
const REPLICAS: i32 = 50;
const PODS: usize = DEPLOYMENTS * REPLICAS as usize;

#[derive(Debug, Clone, Copy)]
struct Measured {
    rollout: f64,
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
                .kube_controller_manager(["deployment-controller", "replicaset-controller"])
                .kube_controller_manager_args([
                    format!("--kube-api-qps={qps}"),
                    format!("--kube-api-burst={burst}"),
                    "--concurrent-deployment-syncs=5".to_string(),
                    "--concurrent-replicaset-syncs=5".to_string(),
                ])
        }
    }
}

/// The controllers' requests: pod creates and deletes, every ReplicaSet request, and
/// every Deployment request but the bench's own patches and list polls. A pod DELETE
/// answered 404 is left out: kwok deletes the pods it finished too, and about one per
/// pod arrives after the controller's own delete, on both sides alike.
async fn controller_requests(client: &Client) -> BTreeMap<String, f64> {
    let mut counts = request_counts(client, |r| {
        let pods =
            r.resource == "pods" && r.subresource.is_empty() && matches!(r.verb, "POST" | "DELETE");
        let replica_sets = r.resource == "replicasets";
        let deployments =
            r.resource == "deployments" && !matches!(r.verb, "PATCH" | "LIST" | "POST");
        pods || replica_sets || deployments
    })
    .await;
    counts.remove("pods/ DELETE 404");
    counts
}

fn deployment(i: usize) -> Deployment {
    let name = format!("web-{i:02}");
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                                  "terminationGracePeriodSeconds": 0}},
        }
    }))
    .unwrap()
}

/// Whether every Deployment is complete at its current generation, and (when
/// `old_gone`) every ReplicaSet but the newest of each is scaled to 0.
async fn all_complete(
    deployments: &Api<Deployment>,
    sets: &Api<ReplicaSet>,
) -> anyhow::Result<bool> {
    let complete = deployments
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .all(|d| {
            let s = d.status.clone().unwrap_or_default();
            s.observed_generation == d.metadata.generation
                && s.updated_replicas == Some(REPLICAS)
                && s.available_replicas == Some(REPLICAS)
                && s.replicas == Some(REPLICAS)
        });
    if !complete {
        return Ok(false);
    }
    let running: i32 = sets
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|rs| rs.spec.replicas.unwrap_or(0))
        .sum();
    Ok(running == PODS as i32)
}

async fn wait_complete(
    deployments: &Api<Deployment>,
    sets: &Api<ReplicaSet>,
    side: Side,
) -> anyhow::Result<()> {
    let started = Instant::now();
    while !all_complete(deployments, sets).await? {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "{side:?} did not complete"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn run_once(side: Side, limits: Option<(u32, u32)>, ours: &Path) -> anyhow::Result<Measured> {
    let cp = control_plane(side, limits).start().await?;
    let client = cp.client().await?;
    let mut ours_process = None;
    let pid = match side {
        Side::KubeControllerManager => cp.pid("kube-controller-manager").expect("started"),
        Side::KubeReconcile => {
            let child = spawn_ours(
                ours,
                &cp,
                &[
                    "--controllers=deployment,replicaset",
                    "--concurrent-deployment-syncs=5",
                    "--concurrent-replicaset-syncs=5",
                ],
                limits,
            )?;
            let pid = child.id();
            ours_process = Some(child);
            pid
        }
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), "default");
    let sets = Api::<ReplicaSet>::namespaced(client.clone(), "default");
    stream::iter(0..DEPLOYMENTS)
        .map(|i| {
            let api = deployments.clone();
            async move { api.create(&PostParams::default(), &deployment(i)).await }
        })
        .buffer_unordered(20)
        .try_collect::<Vec<_>>()
        .await?;
    wait_complete(&deployments, &sets, side).await?;

    let (cpu_before, requests_before) = (cpu_seconds(pid), controller_requests(&client).await);
    let started = Instant::now();
    let new_image = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "registry.k8s.io/pause:3.9"}]}}}});
    stream::iter(0..DEPLOYMENTS)
        .map(|i| {
            let (api, patch) = (deployments.clone(), new_image.clone());
            async move {
                api.patch(
                    &format!("web-{i:02}"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            }
        })
        .buffer_unordered(20)
        .try_collect::<Vec<_>>()
        .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    wait_complete(&deployments, &sets, side).await?;
    let rollout = started.elapsed().as_secs_f64();
    let (by_kind, requests) =
        requests_between(&requests_before, &controller_requests(&client).await);
    eprintln!("{side:?} requests: {by_kind:?}");
    let measured = Measured {
        rollout,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs = common::count_arg(3);
    let ours = our_controller_manager()?;
    for (label, limits) in CONFIGURATIONS {
        let results: Results<Measured> =
            alternating_runs(runs, label, |side| run_once(side, limits, &ours)).await?;
        results.print_table(
            &format!(
                "{label} ({runs} runs, medians; rolling update of {DEPLOYMENTS} x {REPLICAS} replicas)"
            ),
            &[
                ("rollout time (s)", |m| m.rollout),
                ("controller CPU (s)", |m| m.cpu),
                ("controller peak RSS (MiB)", |m| m.peak_rss_mib),
                ("API requests per pod", |m| m.requests_per_pod),
            ],
        );
    }
    Ok(())
}
