//! What the reliability scenarios share: the pod ledger that counts over-creation,
//! manifests, convergence checks, and our controllers started on a chosen client.
#![allow(dead_code)] // the scenarios use different parts

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::Pod,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use kube_reconcile::{
    controller::ControllerHandle,
    informer::{InformerFactory, Scope},
    metrics::Metrics,
    testing::MANUAL_NODE_NAME,
};
use serde_json::{Value, json};

use crate::controllers;

/// How long a scenario may take to converge once its faults stop.
pub const CONVERGE: Duration = Duration::from_secs(240);

/// Every pod created in a namespace since the ledger started, counted from a watch
/// (which resumes from its last resourceVersion, or relists, after a fault), and
/// which of those were deleted again.
pub struct PodLedger {
    state: Arc<Mutex<Ledger>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Ledger {
    baseline: HashSet<String>,
    created: HashSet<String>,
    deleted: HashSet<String>,
    synced: bool,
}

impl PodLedger {
    /// Starts watching `ns` with `client` (the test's own, not the faulty one) and
    /// returns once the pods already there are recorded as the baseline.
    pub async fn start(client: &Client, ns: &str) -> Self {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let state = Arc::new(Mutex::new(Ledger::default()));
        let recorder = state.clone();
        let task = tokio::spawn(async move {
            let stream = watcher(pods, watcher::Config::default()).default_backoff();
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let Ok(event) = event else { continue };
                let mut ledger = recorder.lock().unwrap();
                match event {
                    watcher::Event::InitApply(pod) | watcher::Event::Apply(pod) => {
                        let uid = pod.uid().unwrap_or_default();
                        if !ledger.synced {
                            ledger.baseline.insert(uid);
                        } else if !ledger.baseline.contains(&uid) {
                            ledger.created.insert(uid);
                        }
                    }
                    watcher::Event::Delete(pod) => {
                        let uid = pod.uid().unwrap_or_default();
                        if ledger.created.contains(&uid) {
                            ledger.deleted.insert(uid);
                        }
                    }
                    watcher::Event::InitDone => ledger.synced = true,
                    watcher::Event::Init => {}
                }
            }
        });
        let ledger = Self { state, task };
        let started = Instant::now();
        while !ledger.state.lock().unwrap().synced {
            assert!(started.elapsed() < CONVERGE, "the pod ledger never listed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ledger
    }

    /// Pods created since the ledger started.
    pub fn created(&self) -> usize {
        self.state.lock().unwrap().created.len()
    }

    /// Pods created since the ledger started and deleted again.
    pub fn created_then_deleted(&self) -> usize {
        self.state.lock().unwrap().deleted.len()
    }
}

impl Drop for PodLedger {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A ReplicaSet of `replicas` pods, labelled `app=<name>`; on the hand-driven Node
/// (no scheduler, no kubelet: the pods stay Pending, which the scenarios about
/// creation do not mind) when `manual`.
pub fn replica_set(name: &str, replicas: i32, manual: bool) -> ReplicaSet {
    let mut template = json!({
        "metadata": {"labels": {"app": name}},
        "spec": {
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
            "terminationGracePeriodSeconds": 0,
        },
    });
    if manual {
        template["spec"]["nodeName"] = json!(MANUAL_NODE_NAME);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template,
        },
    }))
    .unwrap()
}

/// A Deployment of `replicas` pods for the fake Nodes (kwok makes them Ready).
pub fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                    "terminationGracePeriodSeconds": 0,
                },
            },
        },
    }))
    .unwrap()
}

/// A change to a Deployment's pod template, which starts a rolling update.
pub fn rollout_patch(revision: &str) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {"rollout": revision}}}}})
}

/// Our ReplicaSet and Deployment controllers on `client`, scoped to `ns`, reporting
/// into [`metrics`](Self::metrics).
pub struct Ours {
    handles: Vec<ControllerHandle>,
    pub factory: InformerFactory,
    pub metrics: Metrics,
}

impl Ours {
    pub fn start(client: &Client, ns: &str) -> Self {
        let scope = Scope::all().namespace(ns);
        let metrics = Metrics::new();
        let factory = InformerFactory::new(client.clone()).with_metrics(&metrics);
        let replica_sets = controllers::replicaset::controller(client.clone(), &factory, &scope, 5);
        let deployments = controllers::deployment::controller(client.clone(), &factory, &scope, 5);
        Self {
            handles: vec![replica_sets.start(), deployments.start()],
            factory,
            metrics,
        }
    }

    /// The sum over both controllers of a gauge or counter named `metric`.
    pub fn metric(&self, metric: &str) -> f64 {
        let text = self.metrics.encode();
        text.lines()
            .filter(|line| line.starts_with(&format!("{metric}{{")))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// What the controllers [`start`](Self::start) would start need to be allowed.
    pub fn permissions(client: &Client, ns: &str) -> kube_reconcile::rbac::Permissions {
        let scope = Scope::all().namespace(ns);
        let factory = InformerFactory::new(client.clone());
        let mut permissions = kube_reconcile::rbac::Permissions::new();
        permissions.merge(
            controllers::replicaset::controller(client.clone(), &factory, &scope, 1).permissions(),
        );
        permissions.merge(
            controllers::deployment::controller(client.clone(), &factory, &scope, 1).permissions(),
        );
        permissions
    }

    pub async fn stop(self) {
        for handle in self.handles {
            handle.shutdown().await;
        }
    }
}

/// Whether ReplicaSet `name` has exactly `replicas` pods and a status that says so.
pub async fn replica_set_settled(client: &Client, ns: &str, name: &str, replicas: i32) -> bool {
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let Ok(set) = sets.get(name).await else {
        return false;
    };
    let status = set.status.clone().unwrap_or_default();
    let observed = status.observed_generation == set.metadata.generation;
    observed
        && status.replicas == replicas
        && pods_labelled(client, ns, &format!("app={name}")).await == Some(replicas as usize)
}

/// Whether Deployment `name` completed its rollout: every replica updated and
/// available, and no pod of an older revision left.
pub async fn deployment_settled(client: &Client, ns: &str, name: &str, replicas: i32) -> bool {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let Ok(deployment) = deployments.get(name).await else {
        return false;
    };
    let status = deployment.status.clone().unwrap_or_default();
    status.observed_generation == deployment.metadata.generation
        && status.replicas == Some(replicas)
        && status.updated_replicas == Some(replicas)
        && status.available_replicas == Some(replicas)
        && pods_labelled(client, ns, &format!("app={name}")).await == Some(replicas as usize)
}

/// How many pods (not being deleted) carry `labels`; `None` if the list failed.
async fn pods_labelled(client: &Client, ns: &str, labels: &str) -> Option<usize> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let listed = pods
        .list(&ListParams::default().labels(labels))
        .await
        .ok()?;
    Some(
        listed
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .count(),
    )
}

/// Waits until `check` holds, failing the scenario after [`CONVERGE`]; returns how
/// long it took.
pub async fn converge(what: &str, check: impl AsyncFnMut() -> bool) -> Duration {
    converge_within(what, CONVERGE, check).await
}

/// [`converge`] with a bound of its own, for a scenario whose pace the fault sets.
pub async fn converge_within(
    what: &str,
    bound: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < bound,
            "{what}: not converged within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Creates `object` with the test's client, retrying while the API server is away.
pub async fn create<K>(api: &Api<K>, object: &K) -> K
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let started = Instant::now();
    loop {
        match api.create(&PostParams::default(), object).await {
            Ok(created) => return created,
            Err(e) if started.elapsed() < CONVERGE => {
                tracing::warn!(%e, "create failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("create {}: {e}", object.name_any()),
        }
    }
}

/// What one scenario reports, printed for RELIABILITY.md.
pub fn report(scenario: &str, faults: &str, ledger: &PodLedger, needed: usize, took: Duration) {
    let over = ledger.created().saturating_sub(needed);
    println!(
        "reliability | {scenario} | {faults} | converged | created {} (needed {needed}), over-created {over}, created-then-deleted {} | {:.1}s",
        ledger.created(),
        ledger.created_then_deleted(),
        took.as_secs_f64()
    );
}
