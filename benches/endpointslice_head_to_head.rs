//! kube-reconcile's EndpointSlice controller against kube-controller-manager's, head to
//! head, on pods turning NotReady and Ready.
//!
//! ```text
//! cargo build --release --example controller-manager
//! cargo bench --bench endpointslice_head_to_head            # 3 runs of each configuration
//! cargo bench --bench endpointslice_head_to_head -- 5       # 5 runs
//! ```
//!
//! Each run starts a fresh control plane with the hand-driven Node (nothing else
//! manages pod status there) and the controller as its own process —
//! kube-controller-manager running only `endpointslice-controller`, or our
//! `controller-manager` example with `--controllers=endpointslice` — with 5 workers,
//! 100 endpoints a slice and the same client limits. A plain client creates 2,000 Ready
//! pods on that Node under one Service, and waits until the slices show all 2,000
//! endpoints ready. A watch of the Service's EndpointSlices then records when each
//! pod's `ready` condition changes, and the run flips 200 pods:
//! - one at a time: each turns NotReady, 10 a second;
//! - all at once: the same 200 turn Ready again, written with 50 requests in flight.
//!
//! Per phase it reports the p50 and p99 latency from a pod's status write (its response)
//! to the first slice event showing that pod's new condition (and to the pod's own watch
//! event: the floor no controller can beat), and the EndpointSlice
//! writes per flip (creates, updates and deletes from kube-apiserver's
//! `apiserver_request_total`). Over both phases, the controller's CPU seconds; over the
//! whole run, its peak RSS (VmHWM). Configurations: QPS 100 / burst 100 for both, then
//! no client-side limit.

mod common;

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::head_to_head::{
    CONFIGURATIONS, Results, Side, alternating_runs, cpu_seconds, our_controller_manager,
    peak_rss_mib, request_counts, requests_between, spawn_ours,
};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::{
    core::v1::{Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
    runtime::watcher,
};
use kube_reconcile::testing::{ControlPlane, MANUAL_NODE_NAME};
use serde_json::json;

const PODS: usize = 2_000;
const FLIPS: usize = 200;
/// One-at-a-time flips per second.
const FLIP_RATE: f64 = 10.0;
const SERVICE: &str = "web";

#[derive(Debug, Clone, Copy)]
struct Measured {
    one_p50_ms: f64,
    one_p99_ms: f64,
    floor_p50_ms: f64,
    floor_p99_ms: f64,
    one_writes_per_flip: f64,
    all_p50_ms: f64,
    all_p99_ms: f64,
    all_floor_p99_ms: f64,
    all_writes_per_flip: f64,
    cpu: f64,
    peak_rss_mib: f64,
}

/// Every change of a pod's `ready` condition seen in the Service's slices.
#[derive(Default)]
struct Observed {
    ready: HashMap<String, bool>,
    changes: Vec<(String, bool, Instant)>,
}

/// Watches `api` with `config`, recording each pod's ready transitions as `readiness`
/// reads them from an object.
fn watch_ready<K>(
    api: Api<K>,
    config: watcher::Config,
    readiness: fn(K) -> Vec<(String, bool)>,
) -> Arc<Mutex<Observed>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let observed = Arc::new(Mutex::new(Observed::default()));
    let sink = observed.clone();
    tokio::spawn(async move {
        let mut events = watcher(api, config).boxed();
        while let Some(Ok(event)) = events.next().await {
            let object = match event {
                watcher::Event::Apply(object) | watcher::Event::InitApply(object) => object,
                _ => continue,
            };
            let now = Instant::now();
            let mut observed = sink.lock().unwrap();
            for (pod, ready) in readiness(object) {
                if observed.ready.insert(pod.clone(), ready) != Some(ready) {
                    observed.changes.push((pod, ready, now));
                }
            }
        }
    });
    observed
}

/// Each pod's `ready` condition in a slice.
fn slice_readiness(slice: EndpointSlice) -> Vec<(String, bool)> {
    let endpoints = slice.endpoints.into_iter().flatten();
    endpoints
        .filter_map(|endpoint| {
            let pod = endpoint.target_ref?.name?;
            Some((pod, endpoint.conditions?.ready == Some(true)))
        })
        .collect()
}

/// A pod's Ready condition, as its own watch shows it.
fn pod_readiness(pod: Pod) -> Vec<(String, bool)> {
    let ready = kube_reconcile::service_endpoints::is_ready(&pod);
    vec![(pod.metadata.name.unwrap_or_default(), ready)]
}

fn pod_name(i: usize) -> String {
    format!("web-{i:04}")
}

fn pod(i: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": pod_name(i), "labels": {"app": SERVICE}},
        "spec": {"nodeName": MANUAL_NODE_NAME, "terminationGracePeriodSeconds": 0,
                 "tolerations": [{"operator": "Exists"}],
                 "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                                 "ports": [{"containerPort": 8080}]}]},
    }))
    .unwrap()
}

/// The kubelet's part: the pod's status, Running with a unique IP, Ready or not.
fn status(i: usize, ready: bool) -> serde_json::Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let ip = format!("10.1.{}.{}", i / 250, i % 250 + 1);
    let condition = |type_: &str, on: bool| {
        json!({"type": type_, "status": if on { "True" } else { "False" },
               "lastTransitionTime": now})
    };
    json!({"status": {
        "phase": "Running", "hostIP": "192.0.2.250", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [condition("PodScheduled", true), condition("Initialized", true),
                       condition("ContainersReady", ready), condition("Ready", ready)],
    }})
}

/// When a status write was sent and when its response came.
#[derive(Debug, Clone, Copy)]
struct Written {
    pod: usize,
    sent: Instant,
    acknowledged: Instant,
}

/// Writes pod `i`'s status.
async fn set_ready(pods: &Api<Pod>, i: usize, ready: bool) -> anyhow::Result<Written> {
    let patch = status(i, ready);
    let sent = Instant::now();
    pods.patch_status(&pod_name(i), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(Written {
        pod: i,
        sent,
        acknowledged: Instant::now(),
    })
}

/// Waits until the slices show `ready` for every written pod, then returns each
/// pod's latency in ms from its write's response to the first slice event after the
/// write showing it.
async fn latencies(
    observed: &Mutex<Observed>,
    written: &[Written],
    ready: bool,
    side: Side,
) -> anyhow::Result<Vec<f64>> {
    let started = Instant::now();
    loop {
        {
            let observed = observed.lock().unwrap();
            let seen: Option<Vec<f64>> = written
                .iter()
                .map(|w| {
                    let name = pod_name(w.pod);
                    let (_, _, seen) = observed
                        .changes
                        .iter()
                        .find(|(pod, r, at)| *pod == name && *r == ready && *at >= w.sent)?;
                    let latency = seen.saturating_duration_since(w.acknowledged);
                    Some(latency.as_secs_f64() * 1000.0)
                })
                .collect();
            if let Some(seen) = seen {
                return Ok(seen);
            }
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "{side:?}: the slices never showed every flipped pod ready={ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The p-th percentile (0–100) by nearest rank.
fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

async fn slice_writes(client: &Client) -> std::collections::BTreeMap<String, f64> {
    request_counts(client, |r| {
        r.resource == "endpointslices" && matches!(r.verb, "POST" | "PUT" | "PATCH" | "DELETE")
    })
    .await
}

async fn start_controller(
    side: Side,
    limits: Option<(u32, u32)>,
    ours: &Path,
) -> anyhow::Result<(ControlPlane, u32, Option<std::process::Child>)> {
    let builder = ControlPlane::builder().manual_node();
    if side == Side::KubeReconcile {
        let cp = builder.start().await?;
        let flags = [
            "--controllers=endpointslice",
            "--concurrent-service-endpoint-syncs=5",
        ];
        let child = spawn_ours(ours, &cp, &flags, limits)?;
        return Ok((cp, child.id(), Some(child)));
    }
    let (qps, burst) = limits.unwrap_or((10_000, 10_000));
    let cp = builder
        .kube_controller_manager(["endpointslice-controller"])
        .kube_controller_manager_args([
            format!("--kube-api-qps={qps}"),
            format!("--kube-api-burst={burst}"),
            "--concurrent-service-endpoint-syncs=5".to_string(),
        ])
        .start()
        .await?;
    let pid = cp.pid("kube-controller-manager").expect("started");
    Ok((cp, pid, None))
}

async fn run_once(side: Side, limits: Option<(u32, u32)>, ours: &Path) -> anyhow::Result<Measured> {
    let (cp, pid, ours_process) = start_controller(side, limits, ours).await?;
    let client = cp.client().await?;
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    let selected = format!("kubernetes.io/service-name={SERVICE}");
    let observed = watch_ready(
        Api::<EndpointSlice>::namespaced(client.clone(), "default"),
        watcher::Config::default().labels(&selected),
        slice_readiness,
    );
    // The floor: how long a plain watch takes to show the pod's own status write.
    let pod_watch = watch_ready(
        pods.clone(),
        watcher::Config::default().labels(&format!("app={SERVICE}")),
        pod_readiness,
    );
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": SERVICE},
        "spec": {"selector": {"app": SERVICE}, "ports": [{"port": 80, "targetPort": 8080}]},
    }))?;
    Api::<Service>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &service)
        .await?;
    // The Service first, so the initial sync covers pods arriving as well as listed.
    let written: Vec<Written> = stream::iter(0..PODS)
        .map(|i| {
            let pods = pods.clone();
            async move {
                pods.create(&PostParams::default(), &pod(i)).await?;
                set_ready(&pods, i, true).await
            }
        })
        .buffer_unordered(50)
        .try_collect()
        .await?;
    latencies(&observed, &written, true, side).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let cpu_before = cpu_seconds(pid);
    // One at a time: every 10th pod turns NotReady, at a fixed rate.
    let flipped: Vec<usize> = (0..FLIPS).map(|n| n * (PODS / FLIPS)).collect();
    let writes_before = slice_writes(&client).await;
    let mut written = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / FLIP_RATE));
    for &i in &flipped {
        tick.tick().await;
        written.push(set_ready(&pods, i, false).await?);
    }
    let one = latencies(&observed, &written, false, side).await?;
    let floor = latencies(&pod_watch, &written, false, side).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes_between = slice_writes(&client).await;
    let (one_by_kind, one_writes) = requests_between(&writes_before, &writes_between);

    // All at once: the same pods turn Ready again.
    let written: Vec<Written> = stream::iter(flipped.clone())
        .map(|i| {
            let pods = pods.clone();
            async move { set_ready(&pods, i, true).await }
        })
        .buffer_unordered(50)
        .try_collect()
        .await?;
    let all = latencies(&observed, &written, true, side).await?;
    let all_floor = latencies(&pod_watch, &written, true, side).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = cpu_seconds(pid) - cpu_before;
    let (all_by_kind, all_writes) = requests_between(&writes_between, &slice_writes(&client).await);
    eprintln!("{side:?} slice writes: one at a time {one_by_kind:?}, all at once {all_by_kind:?}");

    let measured = Measured {
        one_p50_ms: percentile(one.clone(), 50.0),
        one_p99_ms: percentile(one, 99.0),
        floor_p50_ms: percentile(floor.clone(), 50.0),
        floor_p99_ms: percentile(floor, 99.0),
        one_writes_per_flip: one_writes / FLIPS as f64,
        all_p50_ms: percentile(all.clone(), 50.0),
        all_p99_ms: percentile(all, 99.0),
        all_floor_p99_ms: percentile(all_floor, 99.0),
        all_writes_per_flip: all_writes / FLIPS as f64,
        cpu,
        peak_rss_mib: peak_rss_mib(pid),
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
            &format!("{label} ({runs} runs, medians; {FLIPS} of {PODS} pods flipped)"),
            &[
                ("one at a time: p50 (ms)", |m| m.one_p50_ms),
                ("one at a time: p99 (ms)", |m| m.one_p99_ms),
                ("one at a time: writes/flip", |m| m.one_writes_per_flip),
                ("  pod's own watch: p50 (ms)", |m| m.floor_p50_ms),
                ("  pod's own watch: p99 (ms)", |m| m.floor_p99_ms),
                ("all at once: p50 (ms)", |m| m.all_p50_ms),
                ("all at once: p99 (ms)", |m| m.all_p99_ms),
                ("  pod's own watch: p99 (ms)", |m| m.all_floor_p99_ms),
                ("all at once: writes/flip", |m| m.all_writes_per_flip),
                ("controller CPU (s)", |m| m.cpu),
                ("controller peak RSS (MiB)", |m| m.peak_rss_mib),
            ],
        );
    }
    Ok(())
}
