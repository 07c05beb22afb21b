//! The differential test kit: run one scenario against kube-controller-manager's own
//! controller and against kube-reconcile's, on real control planes, and compare
//! normalised snapshots of what they leave behind.
//!
//! Two control planes per test binary, each with kube-scheduler + kwok (2 fake Nodes)
//! and the hand-driven Node: on the *reference* one kube-controller-manager runs the
//! controller under test cluster-wide; on the *ours* one each scenario starts our
//! controller scoped to its own namespace. A scenario gets an [`Env`] per side, runs
//! the same steps on both (concurrently), then both sides wait until quiet and are
//! snapshotted. Snapshots keep what a user can observe — specs and statuses,
//! conditions, which pods exist with their labels, phase, readiness, owners, and
//! events — and drop or mask what differs by nature (UIDs, resourceVersions,
//! timestamps, generated name suffixes, IPs).
//!
//! Events about ReplicaSets are compared whole: type, reason, message (generated pod
//! names masked) and count, so the correlation (counts, combined events, the spam
//! limit) must match kube-controller-manager's too.
//!
//! Accepted differences, each with its reason:
//! - pods' `topology.kubernetes.io/*` labels are dropped: the API server copies them
//!   from the Node the scheduler picked, which is not the controller's doing;
//! - only settled states are compared, not the path to them: our controller writes a
//!   status that merely reports progress at most once a second per ReplicaSet
//!   (`PROGRESS_INTERVAL`, to spend fewer requests), so intermediate statuses are
//!   coarser than kube-controller-manager's. The quiet period a snapshot waits for
//!   (1.5 s) is longer than that interval;
//! - a scenario with a transient refusal of pod or ReplicaSet creation deletes the
//!   FailedCreate (ReplicaSetCreateError) warnings before the snapshot, once it checked
//!   there are some: how many retries fail while creation is refused depends on timing
//!   (exponential backoff), on both sides alike;
//! - the message of a Progressing condition with reason NewReplicaSetAvailable is not
//!   compared: kube-controller-manager does not refresh its Deployment between two
//!   status writes of one sync, so when its cache lags, the write recording the new
//!   ReplicaSet fails with a conflict, the next sync sees the completed rollout under
//!   the old condition and keeps its message, which then names the previous ReplicaSet
//!   (seen in the Recreate scenario; ours refreshes and names the new one);
//! - ReplicaSets a Deployment creates are named after a hash of the pod template, and
//!   each side hashes its own way: hashes are replaced by `h1`, `h2`, ... in the order
//!   each Deployment's ReplicaSets were created (numbered per Deployment: two
//!   Deployments' first ReplicaSets are created in either order), everywhere in the
//!   snapshot.
#![allow(dead_code)] // each parity test binary uses part of the kit

mod endpoints;

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::api::{
    admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding},
    apps::v1::{Deployment, ReplicaSet},
    core::v1::{Endpoints, Node, Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use kube_reconcile::{
    informer::{InformerFactory, Scope},
    testing::{ControlPlane, MANUAL_NODE_NAME, PodState, set_pod_state},
};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::{controllers, support};

static REFERENCE: OnceCell<ControlPlane> = OnceCell::const_new();
static OURS: OnceCell<ControlPlane> = OnceCell::const_new();
/// A second hand-driven Node, for scenarios about pods on several Nodes; created on
/// demand by [`Env::create_other_manual_node`].
pub const OTHER_MANUAL_NODE: &str = "manual-node-2";
/// How long a side may take to settle after a step.
const SETTLE: Duration = Duration::from_secs(90);
/// How long a state must hold unchanged to count as quiet.
const QUIET: Duration = Duration::from_millis(1500);

/// Which controller a side runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// kube-controller-manager's own controller.
    Reference,
    /// kube-reconcile's example controller.
    Ours,
}

/// Which controllers a test binary compares (one kit per binary: the control planes
/// are shared by its scenarios).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kit {
    /// The ReplicaSet controller alone.
    ReplicaSet,
    /// The Deployment controller with the ReplicaSet controller under it.
    Deployment,
    /// The EndpointSlice and Endpoints controllers (pods are the test's own).
    ServiceEndpoints,
}

/// One side of a scenario: a client and a fresh namespace.
pub struct Env {
    pub side: Side,
    pub client: Client,
    pub ns: String,
    next_ip: AtomicU32,
    /// Every `spec.replicas` each ReplicaSet had, in order (Deployment kit).
    sizes: Arc<Mutex<BTreeMap<String, Vec<i32>>>>,
    /// Every ReplicaSet seen by the size recorder, deleted ones included.
    seen: Arc<Mutex<BTreeMap<String, ReplicaSet>>>,
}

impl Env {
    pub fn replica_sets(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Creates an object from JSON in the namespace.
    pub async fn create_rs(&self, manifest: Value) {
        let rs: ReplicaSet = serde_json::from_value(manifest).unwrap();
        self.replica_sets()
            .create(&PostParams::default(), &rs)
            .await
            .unwrap();
    }

    pub fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Creates a Deployment from JSON in the namespace.
    pub async fn create_deployment(&self, manifest: Value) {
        let d: Deployment = serde_json::from_value(manifest).unwrap();
        self.deployments()
            .create(&PostParams::default(), &d)
            .await
            .unwrap();
    }

    /// Merge-patches a Deployment.
    pub async fn patch_deployment(&self, name: &str, patch: Value) {
        self.deployments()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// Drives one pod on the manual Node that is not ready yet to ready: the oldest,
    /// ties broken by its ReplicaSet's revision (names differ between sides). Returns
    /// whether there was one. One at a time, so that each controller decision sees the
    /// same readiness on both sides.
    pub async fn make_one_manual_pod_ready(&self) -> bool {
        let revisions: BTreeMap<String, i64> = self
            .replica_sets()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|rs| {
                let revision = rs.annotations().get("deployment.kubernetes.io/revision");
                (
                    rs.name_any(),
                    revision.and_then(|r| r.parse().ok()).unwrap_or(0),
                )
            })
            .collect();
        let mut waiting: Vec<Pod> = self
            .pods_by_age("")
            .await
            .into_iter()
            .filter(|pod| {
                let on_manual = pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
                    == Some(MANUAL_NODE_NAME);
                let ready = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                on_manual && !ready && pod.metadata.deletion_timestamp.is_none()
            })
            .collect();
        let revision = |pod: &Pod| {
            let owner = pod
                .owner_references()
                .first()
                .map(|o| o.name.clone())
                .unwrap_or_default();
            revisions.get(&owner).copied().unwrap_or(0)
        };
        waiting.sort_by_key(|p| (p.creation_timestamp().map(|t| t.0), revision(p)));
        let Some(pod) = waiting.first() else {
            return false;
        };
        match set_pod_state(&self.pods(), &pod.name_any(), &PodState::ready(self.ip())).await {
            Ok(_) => true,
            Err(error) => panic!("driving {} ready: {error}", pod.name_any()),
        }
    }

    /// Records every `spec.replicas` of every ReplicaSet in the namespace until the
    /// side's snapshot is taken.
    fn record_sizes(&self) -> tokio::task::JoinHandle<()> {
        let (api, sizes, seen) = (self.replica_sets(), self.sizes.clone(), self.seen.clone());
        tokio::spawn(async move {
            let mut changes = watcher(api, watcher::Config::default())
                .applied_objects()
                .boxed();
            while let Some(Ok(rs)) = changes.next().await {
                seen.lock()
                    .unwrap()
                    .entry(rs.name_any())
                    .or_insert_with(|| rs.clone());
                let mut sizes = sizes.lock().unwrap();
                let history = sizes.entry(rs.name_any()).or_default();
                let size = rs.spec.replicas.unwrap_or(1);
                if history.last() != Some(&size) {
                    history.push(size);
                }
            }
        })
    }

    /// Creates a pod from JSON in the namespace.
    pub async fn create_pod(&self, manifest: Value) {
        let pod: Pod = serde_json::from_value(manifest).unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .unwrap();
    }

    /// Gives the controller a moment to observe what was just created. Controllers see
    /// objects through separate watches, so a ReplicaSet created right after its
    /// orphans may be synced before they are cached (by either controller); scenarios
    /// about adoption must not depend on that race.
    pub async fn let_caches_catch_up(&self) {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    /// Merge-patches a ReplicaSet.
    pub async fn patch_rs(&self, name: &str, patch: Value) {
        self.replica_sets()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// Sets `spec.replicas` to each count in turn, letting the side settle after each.
    pub async fn scale_through(&self, name: &str, counts: &[i32]) {
        for replicas in counts {
            self.patch_rs(name, json!({"spec": {"replicas": replicas}}))
                .await;
            self.wait_quiet().await;
        }
    }

    /// Merge-patches a pod.
    pub async fn patch_pod(&self, name: &str, patch: Value) {
        self.pods()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// Pods matching `labels`, oldest first (ties by name), for driving by position.
    pub async fn pods_by_age(&self, labels: &str) -> Vec<Pod> {
        let mut pods = self
            .pods()
            .list(&ListParams::default().labels(labels))
            .await
            .unwrap()
            .items;
        pods.sort_by_key(|p| (p.creation_timestamp().map(|t| t.0), p.name_any()));
        pods
    }

    /// Sets the status of a pod on the manual Node.
    pub async fn drive(&self, pod: &str, state: PodState) {
        set_pod_state(&self.pods(), pod, &state).await.unwrap();
    }

    /// Creates the Node [`OTHER_MANUAL_NODE`] unless it exists: like the manual Node,
    /// unschedulable and tainted, so only pods naming it land there and nothing but
    /// the test sets their status.
    pub async fn create_other_manual_node(&self) {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": OTHER_MANUAL_NODE,
                         "labels": {"kubernetes.io/hostname": OTHER_MANUAL_NODE}},
            "spec": {"unschedulable": true, "taints": [
                {"key": "kube-reconcile.io/manual-node", "effect": "NoSchedule"}]},
        }))
        .unwrap();
        match Api::<Node>::all(self.client.clone())
            .create(&PostParams::default(), &node)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => panic!("creating Node {OTHER_MANUAL_NODE}: {error}"),
        }
    }

    /// A fresh pod IP for [`PodState`]s.
    pub fn ip(&self) -> String {
        let n = self.next_ip.fetch_add(1, Ordering::Relaxed);
        format!("10.250.{}.{}", n / 250, n % 250 + 1)
    }

    /// Waits until every ReplicaSet and Deployment observed its generation, every
    /// Service's EndpointSlices hold what its pods say
    /// ([`endpoint_slices_match_pods`](Self::endpoint_slices_match_pods)), and nothing
    /// changed for a while.
    pub async fn wait_quiet(&self) {
        let deadline = tokio::time::Instant::now() + SETTLE;
        let mut last = Value::Null;
        let mut since = tokio::time::Instant::now();
        loop {
            let (state, observed) = self.observed_state().await;
            if state != last || !observed {
                last = state;
                since = tokio::time::Instant::now();
            } else if since.elapsed() >= QUIET {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?} side did not settle within {SETTLE:?}: {last:#}",
                self.side
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn observed_state(&self) -> (Value, bool) {
        let replica_sets = self
            .replica_sets()
            .list(&ListParams::default())
            .await
            .unwrap();
        let mut observed = replica_sets.items.iter().all(|rs| {
            rs.status.as_ref().and_then(|s| s.observed_generation) == rs.metadata.generation
        });
        let deployments = self
            .deployments()
            .list(&ListParams::default())
            .await
            .unwrap();
        observed &= deployments.items.iter().all(|d| {
            d.status.as_ref().and_then(|s| s.observed_generation) == d.metadata.generation
        });
        observed &= self.endpoint_slices_match_pods().await;
        let pods = self.pods().list(&ListParams::default()).await.unwrap();
        observed &= statuses_count_what_they_own(&replica_sets.items, &pods.items);
        observed &= deployment_statuses_add_up(&deployments.items, &replica_sets.items);
        (self.snapshot().await, observed)
    }

    async fn snapshot_objects(&self) -> Value {
        let replica_sets = self
            .replica_sets()
            .list(&ListParams::default())
            .await
            .unwrap();
        let pods = self.pods().list(&ListParams::default()).await.unwrap();
        let deployments = self
            .deployments()
            .list(&ListParams::default())
            .await
            .unwrap();
        let mut snapshot = json!({
            "replicaSets": replica_sets.items.iter().map(normalise_rs).collect::<Vec<_>>(),
            "pods": sorted(pods.items.iter().map(normalise_pod).collect()),
        });
        if !deployments.items.is_empty() {
            snapshot["deployments"] = deployments.items.iter().map(normalise_deployment).collect();
        }
        let slices = self.endpoint_slices().await;
        if slices.as_object().is_some_and(|s| !s.is_empty()) {
            snapshot["endpointSlices"] = slices;
        }
        let endpoints = self.endpoints().await;
        if endpoints.as_object().is_some_and(|e| !e.is_empty()) {
            snapshot["endpoints"] = endpoints;
        }
        snapshot
    }

    /// The normalised snapshot compared between sides: template hashes are replaced by
    /// `h1`, `h2`, ... in the order each Deployment's ReplicaSets were created (hashes
    /// differ by design: each side hashes its own way).
    pub async fn snapshot(&self) -> Value {
        let mut snapshot = self.snapshot_objects().await;
        snapshot["events"] = self.events().await;
        let sizes = self.sizes.lock().unwrap().clone();
        if !sizes.is_empty() {
            snapshot["replicaSetSizes"] = json!(sizes);
        }
        let hashes = self.template_hashes().await;
        let mut text = serde_json::to_string(&snapshot).unwrap();
        for (hash, token) in hashes {
            text = text.replace(&hash, &token);
        }
        let mut snapshot: Value = serde_json::from_str(&text).unwrap();
        // Names changed: sort again.
        for list in ["replicaSets", "pods", "deployments"] {
            if let Some(items) = snapshot.get_mut(list).and_then(Value::as_array_mut) {
                items.sort_by_key(|v| v.to_string());
            }
        }
        if let Some(events) = snapshot["events"].as_object_mut() {
            for items in events.values_mut().filter_map(Value::as_array_mut) {
                items.sort_by_key(|v| v.to_string());
            }
        }
        snapshot
    }

    /// `pod-template-hash` values, each with its stand-in, numbered in creation order
    /// per owning Deployment.
    async fn template_hashes(&self) -> Vec<(String, String)> {
        let mut sets: BTreeMap<String, ReplicaSet> = self.seen.lock().unwrap().clone();
        let current = self
            .replica_sets()
            .list(&ListParams::default())
            .await
            .unwrap();
        for rs in current.items {
            sets.entry(rs.name_any()).or_insert(rs);
        }
        let mut sets: Vec<ReplicaSet> = sets.into_values().collect();
        sets.sort_by_key(|rs| {
            let revision: i64 = rs
                .annotations()
                .get("deployment.kubernetes.io/revision")
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            (
                rs.creation_timestamp().map(|t| t.0),
                revision,
                rs.name_any(),
            )
        });
        // Numbered per Deployment: two Deployments' ReplicaSets are independent
        // objects, created in either order on each side. A ReplicaSet's Deployment is
        // read from its name (`<deployment>-<hash>`), which, unlike its owner
        // reference, does not depend on when it was first seen (an orphan is adopted).
        let mut numbered: BTreeMap<String, usize> = BTreeMap::new();
        sets.iter()
            .filter_map(|rs| {
                let hash = rs.labels().get("pod-template-hash")?.clone();
                let name = rs.name_any();
                let deployment = name.strip_suffix(&format!("-{hash}")).unwrap_or(&name);
                let number = numbered.entry(deployment.to_string()).or_default();
                *number += 1;
                Some((hash, format!("h{number}")))
            })
            .collect()
    }

    /// `{object: [{type, reason, message, count}]}` for events about ReplicaSets.
    async fn events(&self) -> Value {
        let events =
            Api::<k8s_openapi::api::core::v1::Event>::namespaced(self.client.clone(), &self.ns)
                .list(&ListParams::default())
                .await
                .unwrap();
        let mut by_object: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for event in &events.items {
            let kind = event.involved_object.kind.as_deref().unwrap_or_default();
            if kind != "ReplicaSet" && kind != "Deployment" {
                continue;
            }
            let name = event.involved_object.name.clone().unwrap_or_default();
            let object = if kind == "Deployment" {
                format!("deployment/{name}")
            } else {
                name
            };
            by_object.entry(object).or_default().push(json!({
                "type": event.type_,
                "reason": event.reason,
                "message": mask_generated_names(event.message.as_deref().unwrap_or("")),
                "count": event.count,
            }));
        }
        let by_object: BTreeMap<String, Vec<Value>> =
            by_object.into_iter().map(|(k, v)| (k, sorted(v))).collect();
        json!(by_object)
    }
}

/// `web-x7k2p` → `web-*`: the five-character suffix the API server appends to a
/// generateName.
fn mask_generated_names(message: &str) -> String {
    message
        .split(' ')
        .map(|word| match word.rsplit_once('-') {
            Some((prefix, suffix))
                if !prefix.is_empty()
                    && suffix.len() == 5
                    && suffix
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) =>
            {
                format!("{prefix}-*")
            }
            _ => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn normalise_rs(rs: &ReplicaSet) -> Value {
    let status = rs.status.clone().unwrap_or_default();
    let conditions: Vec<Value> = status
        .conditions
        .iter()
        .flatten()
        .map(|c| json!({"type": c.type_, "status": c.status, "reason": c.reason}))
        .collect();
    let owners: Vec<Value> = rs
        .owner_references()
        .iter()
        .map(|r| json!({"kind": r.kind, "name": r.name, "controller": r.controller.unwrap_or(false)}))
        .collect();
    json!({
        "name": rs.name_any(),
        "replicas": rs.spec.replicas,
        "labels": rs.metadata.labels,
        "annotations": rs.metadata.annotations,
        "owners": owners,
        "selector": rs.spec.selector,
        "minReadySeconds": rs.spec.min_ready_seconds,
        "status": {
            "replicas": status.replicas,
            "fullyLabeledReplicas": status.fully_labeled_replicas.unwrap_or(0),
            "readyReplicas": status.ready_replicas.unwrap_or(0),
            "availableReplicas": status.available_replicas.unwrap_or(0),
            "terminatingReplicas": status.terminating_replicas.unwrap_or(0),
            "observedCurrentGeneration": status.observed_generation == rs.metadata.generation,
            "conditions": conditions,
        },
    })
}

fn normalise_deployment(d: &Deployment) -> Value {
    let status = d.status.clone().unwrap_or_default();
    let mut conditions: Vec<Value> = status
        .conditions
        .iter()
        .flatten()
        .map(|c| {
            // See the module docs: which ReplicaSet a completed rollout's message names
            // depends on a race inside kube-controller-manager.
            let message = match c.reason.as_deref() {
                Some("NewReplicaSetAvailable") => None,
                _ => c.message.clone(),
            };
            json!({"type": c.type_, "status": c.status, "reason": c.reason, "message": message})
        })
        .collect();
    conditions.sort_by_key(|c| c["type"].to_string());
    json!({
        "name": d.name_any(),
        "annotations": d.metadata.annotations,
        "replicas": d.spec.replicas,
        "template": d.spec.template,
        "status": {
            "replicas": status.replicas.unwrap_or(0),
            "updatedReplicas": status.updated_replicas.unwrap_or(0),
            "readyReplicas": status.ready_replicas.unwrap_or(0),
            "availableReplicas": status.available_replicas.unwrap_or(0),
            "unavailableReplicas": status.unavailable_replicas.unwrap_or(0),
            "terminatingReplicas": status.terminating_replicas,
            "collisionCount": status.collision_count,
            "observedCurrentGeneration": status.observed_generation == d.metadata.generation,
            "conditions": conditions,
        },
    })
}

fn normalise_pod(pod: &Pod) -> Value {
    let meta = &pod.metadata;
    let name = match &meta.generate_name {
        Some(prefix) => format!("{prefix}*"),
        None => pod.name_any(),
    };
    let owners: Vec<Value> = meta
        .owner_references
        .iter()
        .flatten()
        .map(|r| json!({"kind": r.kind, "name": r.name, "controller": r.controller.unwrap_or(false)}))
        .collect();
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let node = match node.as_deref() {
        None | Some("") => "unscheduled",
        Some(MANUAL_NODE_NAME) => "manual",
        Some(OTHER_MANUAL_NODE) => "manual-2",
        Some(_) => "fake",
    };
    let status = pod.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let restarts: i32 = status
        .container_statuses
        .iter()
        .flatten()
        .map(|c| c.restart_count)
        .sum();
    // The API server copies the chosen Node's topology labels onto bound pods; where
    // the scheduler places a pod is not the controller's doing, so they are dropped.
    let labels: BTreeMap<&String, &String> = meta
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| !k.starts_with("topology.kubernetes.io/"))
        .collect();
    json!({
        "name": name,
        "labels": labels,
        "annotations": meta.annotations,
        "owners": owners,
        "node": node,
        "phase": status.phase,
        "ready": ready,
        "restarts": restarts,
        "deleting": meta.deletion_timestamp.is_some(),
    })
}

fn sorted(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_key(|v| v.to_string());
    values
}

async fn control_plane(side: Side, kit: Kit) -> &'static ControlPlane {
    let builder = || {
        let builder = ControlPlane::builder().fake_nodes(2).manual_node();
        let reference = match kit {
            Kit::ReplicaSet => vec!["replicaset-controller"],
            Kit::Deployment => vec!["deployment-controller", "replicaset-controller"],
            Kit::ServiceEndpoints => vec!["endpointslice-controller", "endpoints-controller"],
        };
        match side {
            Side::Reference => builder
                .kube_controller_manager(reference)
                .kube_controller_manager_args(["--kube-api-qps=100", "--kube-api-burst=100"]),
            Side::Ours => builder,
        }
    };
    match side {
        Side::Reference => support::shared(&REFERENCE, builder).await,
        Side::Ours => support::shared(&OURS, builder).await,
    }
}

/// Runs `scenario` on both sides with the ReplicaSet controller and asserts their
/// snapshots are equal; returns the (common) snapshot for scenario-specific checks.
pub async fn run<F, Fut>(name: &str, scenario: F) -> Value
where
    F: Fn(Env) -> Fut,
    Fut: Future<Output = Env>,
{
    run_kit(Kit::ReplicaSet, name, scenario).await
}

/// As [`run`], with the Deployment controller over the ReplicaSet controller, and the
/// sizes every ReplicaSet went through compared too.
pub async fn run_deployment<F, Fut>(name: &str, scenario: F) -> Value
where
    F: Fn(Env) -> Fut,
    Fut: Future<Output = Env>,
{
    run_kit(Kit::Deployment, name, scenario).await
}

async fn run_kit<F, Fut>(kit: Kit, name: &str, scenario: F) -> Value
where
    F: Fn(Env) -> Fut,
    Fut: Future<Output = Env>,
{
    let (reference, ours) = tokio::join!(
        side(Side::Reference, kit, name, &scenario),
        side(Side::Ours, kit, name, &scenario)
    );
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap();
    assert_eq!(
        pretty(&reference),
        pretty(&ours),
        "scenario {name}: kube-reconcile (right) differs from kube-controller-manager (left)"
    );
    ours
}

async fn side<F, Fut>(side: Side, kit: Kit, name: &str, scenario: &F) -> Value
where
    F: Fn(Env) -> Fut,
    Fut: Future<Output = Env>,
{
    let cp = control_plane(side, kit).await;
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace(&client, name).await.unwrap();
    let env = Env {
        side,
        client: client.clone(),
        ns: ns.clone(),
        next_ip: AtomicU32::new(0),
        sizes: Arc::default(),
        seen: Arc::default(),
    };
    let recorder = (kit == Kit::Deployment).then(|| env.record_sizes());
    let running = match side {
        Side::Reference => Vec::new(),
        Side::Ours => {
            let scope = Scope::all().namespace(&ns);
            // Ours run as a ServiceAccount allowed exactly what the controllers declare
            // (their generated role): a permission they use but do not declare fails
            // the scenario.
            let as_controllers = support::impersonating(cp, &ns, "controllers").await;
            let factory = InformerFactory::new(as_controllers.clone());
            let running = start_ours(kit, &client, as_controllers, &factory, &scope, &ns).await;
            // kube-controller-manager's caches are long synced when a scenario starts;
            // give ours the same footing.
            factory
                .informer::<controllers::pod_view::PodView>(&scope)
                .wait_for_sync()
                .await;
            match kit {
                Kit::ServiceEndpoints => {
                    factory.informer::<Service>(&scope).wait_for_sync().await;
                    factory
                        .informer::<EndpointSlice>(&scope)
                        .wait_for_sync()
                        .await;
                    factory.informer::<Endpoints>(&scope).wait_for_sync().await;
                    factory
                        .informer::<Node>(&Scope::all())
                        .wait_for_sync()
                        .await;
                }
                _ => factory.informer::<ReplicaSet>(&scope).wait_for_sync().await,
            }
            if kit == Kit::Deployment {
                factory.informer::<Deployment>(&scope).wait_for_sync().await;
            }
            running
        }
    };
    let env = scenario(env).await;
    env.wait_quiet().await;
    let snapshot = env.snapshot().await;
    for controller in running {
        controller.shutdown().await;
    }
    if let Some(recorder) = recorder {
        recorder.abort();
    }
    snapshot
}

/// Starts the kit's controllers of ours, scoped to the scenario's namespace, once their
/// generated role is granted to the ServiceAccount `client` acts as.
async fn start_ours(
    kit: Kit,
    admin: &Client,
    client: Client,
    factory: &InformerFactory,
    scope: &Scope,
    ns: &str,
) -> Vec<kube_reconcile::controller::ControllerHandle> {
    let mut ours = Ours::default();
    if matches!(kit, Kit::ReplicaSet | Kit::Deployment) {
        ours.add(controllers::replicaset::controller(
            client.clone(),
            factory,
            scope,
            5,
        ));
    }
    if kit == Kit::Deployment {
        ours.add(controllers::deployment::controller(
            client.clone(),
            factory,
            scope,
            5,
        ));
    }
    if kit == Kit::ServiceEndpoints {
        ours.add(controllers::endpointslice::controller(
            client.clone(),
            factory,
            scope,
            5,
            controllers::endpointslice::MAX_ENDPOINTS_PER_SLICE,
            Duration::ZERO,
        ));
        ours.add(controllers::endpoints::controller(
            client.clone(),
            factory,
            scope,
            5,
            Duration::ZERO,
        ));
    }
    support::grant(admin, ns, "controllers", &ours.permissions).await;
    ours.starts.into_iter().map(|start| start()).collect()
}

/// Controllers built but not started, and what they need to be allowed.
#[derive(Default)]
struct Ours {
    permissions: kube_reconcile::rbac::Permissions,
    starts: Vec<Box<dyn FnOnce() -> kube_reconcile::controller::ControllerHandle>>,
}

impl Ours {
    fn add<K, R>(&mut self, controller: kube_reconcile::controller::Controller<K, R>)
    where
        K: kube_reconcile::informer::Watchable,
        R: kube_reconcile::reconcile::Reconcile<K>,
    {
        self.permissions.merge(controller.permissions());
        self.starts.push(Box::new(move || controller.start()));
    }
}

/// As [`run`], with the EndpointSlice and Endpoints controllers.
pub async fn run_service_endpoints<F, Fut>(name: &str, scenario: F) -> Value
where
    F: Fn(Env) -> Fut,
    Fut: Future<Output = Env>,
{
    run_kit(Kit::ServiceEndpoints, name, scenario).await
}

/// Whether each ReplicaSet's status counts the active pods it controls (not finished,
/// not being deleted) and how many of them are Ready. A pod's readiness reaches the
/// status only after the controller saw it, which no generation shows: without this a
/// side could look quiet between a pod turning Ready and its ReplicaSet saying so.
fn statuses_count_what_they_own(replica_sets: &[ReplicaSet], pods: &[Pod]) -> bool {
    replica_sets.iter().all(|rs| {
        let uid = rs.uid();
        let active: Vec<&Pod> = pods
            .iter()
            .filter(|pod| {
                let owner = pod
                    .owner_references()
                    .iter()
                    .find(|o| o.controller == Some(true));
                owner.map(|o| Some(&o.uid)) == Some(uid.as_ref())
            })
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
            .filter(|pod| {
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                !matches!(phase, Some("Succeeded" | "Failed"))
            })
            .collect();
        let ready = active
            .iter()
            .filter(|pod| {
                let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
                conditions
                    .into_iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
            .count();
        let status = rs.status.clone().unwrap_or_default();
        status.replicas == active.len() as i32 && status.ready_replicas.unwrap_or(0) == ready as i32
    })
}

/// Whether each Deployment's replica counts are the sums of its ReplicaSets'.
fn deployment_statuses_add_up(deployments: &[Deployment], replica_sets: &[ReplicaSet]) -> bool {
    deployments.iter().all(|deployment| {
        let uid = deployment.uid();
        let owned = replica_sets.iter().filter(|rs| {
            let owner = rs
                .owner_references()
                .iter()
                .find(|o| o.controller == Some(true));
            owner.map(|o| Some(&o.uid)) == Some(uid.as_ref())
        });
        let (replicas, ready) = owned.fold((0, 0), |(replicas, ready), rs| {
            let status = rs.status.clone().unwrap_or_default();
            (
                replicas + status.replicas,
                ready + status.ready_replicas.unwrap_or(0),
            )
        });
        let status = deployment.status.clone().unwrap_or_default();
        status.replicas.unwrap_or(0) == replicas && status.ready_replicas.unwrap_or(0) == ready
    })
}

/// A ReplicaSet manifest: selector `app=<name>`, template labels `app=<name>` plus
/// `extra_labels`, pods on the manual Node when `manual` is set.
pub fn replica_set(name: &str, replicas: i32, manual: bool, extra: Value) -> Value {
    let mut manifest = json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "template": "full"}},
                "spec": {
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                    "terminationGracePeriodSeconds": 0,
                },
            },
        }
    });
    if manual {
        manifest["spec"]["template"]["spec"]["nodeName"] = json!(MANUAL_NODE_NAME);
    }
    merge(&mut manifest, extra);
    manifest
}

/// A bare pod labelled `app=<app>`, optionally with owner references.
pub fn pod(name: &str, app: &str, owners: Value) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"app": app}, "ownerReferences": owners},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                 "terminationGracePeriodSeconds": 0},
    })
}

/// Recursively merges `patch` into `base` (objects merge, everything else replaces).
pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch,
    }
}

/// What a [`Refusal`] refuses to create.
#[derive(Debug, Clone, Copy)]
pub enum Refused {
    Pods,
    ReplicaSets,
}

/// A ValidatingAdmissionPolicy (and its binding) that refuses every creation of one
/// kind in one namespace: the same transient failure for both sides, lifted on demand.
pub struct Refusal {
    name: String,
}

impl Refusal {
    pub async fn install(env: &Env, refused: Refused) -> Self {
        let name = format!("refuse-{}", env.ns);
        let (group, resource) = match refused {
            Refused::Pods => ("", "pods"),
            Refused::ReplicaSets => ("apps", "replicasets"),
        };
        let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{"apiGroups": [group], "apiVersions": ["v1"],
                    "operations": ["CREATE"], "resources": [resource]}]},
                "validations": [{"expression": "false", "message": format!("{resource} are refused for now")}],
            },
        }))
        .unwrap();
        let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels":
                    {"kubernetes.io/metadata.name": env.ns}}},
            },
        }))
        .unwrap();
        let post = PostParams::default();
        Api::<ValidatingAdmissionPolicy>::all(env.client.clone())
            .create(&post, &policy)
            .await
            .unwrap();
        Api::<ValidatingAdmissionPolicyBinding>::all(env.client.clone())
            .create(&post, &binding)
            .await
            .unwrap();
        // The API server enforces it once its own informers saw both: probe with
        // dry-run creates until one is refused.
        let deadline = tokio::time::Instant::now() + support::WAIT;
        while env.dry_run_create(refused).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the admission policy {name} was not enforced within {:?}",
                support::WAIT
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { name }
    }

    pub async fn remove(self, env: &Env) {
        let delete = DeleteParams::default();
        Api::<ValidatingAdmissionPolicyBinding>::all(env.client.clone())
            .delete(&self.name, &delete)
            .await
            .unwrap();
        Api::<ValidatingAdmissionPolicy>::all(env.client.clone())
            .delete(&self.name, &delete)
            .await
            .unwrap();
    }
}

impl Env {
    /// Whether a dry-run create of the kind is accepted.
    async fn dry_run_create(&self, refused: Refused) -> bool {
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        match refused {
            Refused::Pods => {
                let probe: Pod =
                    serde_json::from_value(pod("probe", "probe", json!(null))).unwrap();
                self.pods().create(&dry_run, &probe).await.is_ok()
            }
            Refused::ReplicaSets => {
                let probe: ReplicaSet =
                    serde_json::from_value(replica_set("probe", 0, false, json!({}))).unwrap();
                self.replica_sets().create(&dry_run, &probe).await.is_ok()
            }
        }
    }

    /// Deletes the events with `reason` after checking there are some: how many
    /// retries fail while something is refused depends on timing (they back off
    /// exponentially), so their number differs between sides by nature.
    pub async fn drop_events_after_checking(&self, reason: &str) {
        let events =
            Api::<k8s_openapi::api::core::v1::Event>::namespaced(self.client.clone(), &self.ns);
        let selected = ListParams::default().fields(&format!("reason={reason}"));
        let found = events.list(&selected).await.unwrap().items;
        assert!(!found.is_empty(), "{:?}: no {reason} event", self.side);
        events
            .delete_collection(&DeleteParams::default(), &selected)
            .await
            .unwrap();
    }
}
