//! The ReplicaSet controller, behaving like kube-controller-manager's
//! (pkg/controller/replicaset), built only on kube-reconcile's public API.
//!
//! One sync function, [`ReplicaSetController::reconcile`], reads top to bottom: check
//! expectations, claim pods, create or delete the difference (slow start, burst
//! limit, deletion ranking), then write status when it changed ([`status`]).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::future::join_all;
use k8s_openapi::{
    api::{apps::v1::ReplicaSet, core::v1::Pod},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ListParams, PostParams},
};
use kube_reconcile::{
    ObjectKey,
    client::outcome_unknown,
    context::Context,
    controller::{Controller, handler},
    events::EventType,
    expectations::UidTrackingExpectations,
    informer::{Change, InformerFactory, Scope},
    ownership::{
        ClaimError, ControllerRefManager, controller_of, controller_reference, is_controlled_by,
    },
    projection::create_as,
    reconcile::{Action, Reconcile, Request},
    selector::Selector,
    store::Store,
};
use tracing::{info, warn};

use super::{pod_view::PodView, pods};

mod status;

use status::calculate_status;

/// At most this many pods are created or deleted in one sync.
pub const BURST_REPLICAS: usize = 500;
/// The shortest interval between two status writes of one ReplicaSet that only report
/// progress (a kube-reconcile choice; kube-controller-manager writes each change).
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// The name this controller reports in events and field managers.
pub const NAME: &str = "replicaset-controller";
/// Event reason: a pod was created. kube-controller-manager's events use the same
/// reasons, and the [`REPLICA_FAILURE`] condition reuses the two failure reasons.
pub const SUCCESSFUL_CREATE: &str = "SuccessfulCreate";
/// Event and condition reason: creating a pod failed.
pub const FAILED_CREATE: &str = "FailedCreate";
/// Event reason: a pod was deleted.
pub const SUCCESSFUL_DELETE: &str = "SuccessfulDelete";
/// Event and condition reason: deleting a pod failed.
pub const FAILED_DELETE: &str = "FailedDelete";
/// The status condition type present while the last sync failed to create or delete.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
/// Pods in a namespace without a controller, for adoption candidates.
const ORPHANS_INDEX: &str = "orphans-by-namespace";

/// Why a sync failed; retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Claiming pods failed.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// Creating or deleting pods failed (the first error of the sync).
    #[error("creating or deleting pods of {key} failed")]
    ManageReplicas {
        /// The ReplicaSet.
        key: ObjectKey,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing status failed.
    #[error("updating status of {key} failed")]
    Status {
        /// The ReplicaSet.
        key: ObjectKey,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// Shared state of the workers.
pub struct ReplicaSetController {
    client: Client,
    replica_sets: Store<ReplicaSet>,
    pods: Store<PodView>,
    expectations: Arc<UidTrackingExpectations>,
    /// When each ReplicaSet's status was last written (see [`PROGRESS_INTERVAL`]).
    status_written: Mutex<HashMap<ObjectKey, Instant>>,
    /// ReplicaSets with a pod create or delete whose outcome is unknown (the connection
    /// broke or the server failed mid-request): the cache may not show its effect yet,
    /// so the next sync asks the API server before writing again.
    uncertain: Mutex<HashSet<ObjectKey>>,
}

/// Builds the controller for the ReplicaSets and pods in `scope` (`Scope::all()` for
/// the whole cluster): ReplicaSets are primary, pod changes map to their owner (or, for
/// orphans, to every ReplicaSet whose selector matches) and feed expectations. Its
/// events and field manager are named [`NAME`]; it reads its own writes (pod creates
/// and status) before syncing a ReplicaSet again, as kube-controller-manager does.
pub fn controller(
    client: Client,
    factory: &InformerFactory,
    scope: &Scope,
    workers: usize,
) -> Controller<ReplicaSet, ReplicaSetController> {
    let builder = Controller::<ReplicaSet>::builder(NAME, factory, scope);
    let replica_sets = builder.store::<ReplicaSet>().expect("the primary type");
    let expectations = Arc::new(UidTrackingExpectations::new());
    let mapper = {
        let (replica_sets, expectations) = (replica_sets.clone(), expectations.clone());
        move |change: &Change<PodView>| pod_event(&replica_sets, &expectations, change)
    };
    let builder = builder.watches::<PodView>(scope, mapper);
    let pods = builder.store::<PodView>().expect("watched above");
    pods.add_index(ORPHANS_INDEX, |pod: &PodView| {
        let orphan = controller_of(pod).is_none();
        orphan
            .then(|| pod.namespace())
            .flatten()
            .into_iter()
            .collect()
    });
    builder
        .workers(workers)
        .rate_limiter(kube_reconcile::queue::client_go_default())
        // Pods are created, deleted, and patched to adopt or release them; claiming
        // re-reads the ReplicaSet first.
        .needs::<Pod>(&["create", "delete", "patch"])
        .needs::<ReplicaSet>(&["get"])
        .needs_subresource::<ReplicaSet>("status", &["patch"])
        .build(ReplicaSetController {
            client,
            replica_sets,
            pods,
            expectations,
            status_written: Mutex::default(),
            uncertain: Mutex::default(),
        })
}

/// Maps a pod change to ReplicaSet keys, recording observed creations and deletions.
fn pod_event(
    replica_sets: &Store<ReplicaSet>,
    expectations: &UidTrackingExpectations,
    change: &Change<PodView>,
) -> Vec<ObjectKey> {
    let owner_key = |pod: &PodView| {
        handler::resolve_controller_owner(replica_sets, pod)
            .into_iter()
            .collect::<Vec<_>>()
    };
    match change {
        Change::Added(pod) if pod.metadata.deletion_timestamp.is_some() => {
            deleted(expectations, pod, owner_key(pod))
        }
        Change::Added(pod) => match owner_key(pod) {
            keys if !keys.is_empty() => {
                keys.iter().for_each(|k| expectations.creation_observed(k));
                keys
            }
            _ if controller_of(&**pod).is_none() => matching_replica_sets(replica_sets, pod),
            _ => Vec::new(),
        },
        Change::Updated { old, new } => {
            if new.resource_version() == old.resource_version() {
                // A relist or resync delivers the same version again: nothing changed.
                return Vec::new();
            }
            let labels_changed = new.labels() != old.labels();
            let mut keys = Vec::new();
            if new.metadata.deletion_timestamp.is_some() {
                // A graceful delete started: count it as observed now, as the reference
                // does, for the owner now and, if the labels moved, the owner before.
                keys.extend(deleted(expectations, new, owner_key(new)));
                if labels_changed {
                    keys.extend(deleted(expectations, old, owner_key(old)));
                }
            } else {
                let (old_ref, new_ref) = (controller_of(&**old), controller_of(&**new));
                let ref_changed = old_ref != new_ref;
                if ref_changed {
                    // Released or handed over: the previous owner resyncs too.
                    keys.extend(owner_key(old));
                }
                if new_ref.is_some() {
                    keys.extend(owner_key(new));
                } else if labels_changed || ref_changed {
                    // An orphan that changed: whoever matches it now may adopt it.
                    keys.extend(matching_replica_sets(replica_sets, new));
                }
            }
            keys.sort();
            keys.dedup();
            keys
        }
        Change::Deleted(pod) => deleted(expectations, pod, owner_key(pod)),
    }
}

fn deleted(
    expectations: &UidTrackingExpectations,
    pod: &PodView,
    owners: Vec<ObjectKey>,
) -> Vec<ObjectKey> {
    for owner in &owners {
        expectations.deletion_observed(owner, &pods::key(pod));
    }
    owners
}

fn matching_replica_sets(replica_sets: &Store<ReplicaSet>, pod: &PodView) -> Vec<ObjectKey> {
    let namespace = pod.namespace().unwrap_or_default();
    replica_sets
        .list_namespace(&namespace)
        .iter()
        .filter(|rs| {
            Selector::from_label_selector(Some(&rs.spec.selector))
                .is_ok_and(|s| !s.is_everything() && s.matches_object(pod))
        })
        .map(|rs| ObjectKey::of(&**rs))
        .collect()
}

impl Reconcile<ReplicaSet> for ReplicaSetController {
    type Error = Error;

    async fn reconcile(&self, request: Request<ReplicaSet>) -> Result<Action, Error> {
        // The controller has made sure the caches show this ReplicaSet's own last
        // writes (pod creates, status) before calling us.
        let (key, ctx) = (request.key, request.ctx);
        let Some(rs) = request.object else {
            self.expectations.delete(&key);
            self.lock_status_written().remove(&key);
            self.lock_uncertain().remove(&key);
            return Ok(Action::Done);
        };
        let needs_sync =
            self.expectations.satisfied(&key) && self.settle_uncertain_writes(&key, &rs).await?;
        let selector = match Selector::from_label_selector(Some(&rs.spec.selector)) {
            Ok(selector) => selector,
            Err(error) => {
                warn!(%key, %error, "invalid selector; not syncing");
                return Ok(Action::Done);
            }
        };

        // Pods controlled by this ReplicaSet, plus orphans that it may adopt.
        let namespace = key.namespace().unwrap_or_default();
        let mut candidates = self.pods.controlled_by(&rs.uid().unwrap_or_default());
        candidates.extend(
            self.pods
                .by_index(ORPHANS_INDEX, namespace)
                .unwrap_or_default(),
        );
        let active: Vec<Arc<PodView>> = candidates
            .iter()
            .filter(|p| pods::is_active(p))
            .cloned()
            .collect();
        let claimed =
            ControllerRefManager::new(&*rs, self.api(namespace), self.api(namespace), &selector)
                .field_manager(NAME)
                .claim(&active)
                .await?;
        let terminating = candidates
            .iter()
            .filter(|p| {
                pods::is_terminating(p)
                    && is_controlled_by(&***p, &*rs)
                    && selector.matches_object(&***p)
            })
            .count();

        let managed = if needs_sync && rs.metadata.deletion_timestamp.is_none() {
            self.manage_replicas(&ctx, &key, &rs, &claimed).await
        } else {
            Ok(())
        };

        let now = Timestamp::now();
        let status = calculate_status(&rs, &claimed, terminating, managed.as_ref().err(), now);
        let deferred = self.update_status(&ctx, &key, &rs, status).await?;
        managed?;

        // Re-check when the next pod becomes available.
        let min_ready = rs.spec.min_ready_seconds.unwrap_or(0);
        let next_available = claimed
            .iter()
            .filter_map(|p| pods::seconds_until_available(p, min_ready, now))
            .min_by(f64::total_cmp);
        let next_available = next_available
            .filter(|_| min_ready > 0)
            .map(Duration::from_secs_f64);
        Ok(match next_available.into_iter().chain(deferred).min() {
            Some(after) => Action::RequeueAfter(after),
            None => Action::Done,
        })
    }
}

impl ReplicaSetController {
    fn lock_uncertain(&self) -> std::sync::MutexGuard<'_, HashSet<ObjectKey>> {
        self.uncertain.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After a create or delete whose outcome is unknown: lists the ReplicaSet's pods
    /// from the API server and expects what the cache has not caught up with — pods
    /// that exist but are not cached yet, or cached pods already gone — so that the
    /// sync waits for the cache instead of creating or deleting again. Returns whether
    /// the sync may go on (the cache agreed with the server); fails while the server
    /// is unreachable, so the ReplicaSet is retried with backoff and writes nothing
    /// meanwhile.
    async fn settle_uncertain_writes(
        &self,
        key: &ObjectKey,
        rs: &ReplicaSet,
    ) -> Result<bool, Error> {
        if !self.lock_uncertain().contains(key) {
            return Ok(true);
        }
        let namespace = key.namespace().unwrap_or_default();
        let uid = rs.uid().unwrap_or_default();
        let listed = self
            .api::<Pod>(namespace)
            .list_metadata(&ListParams::default())
            .await
            .map_err(|source| manage_error(key, source))?;
        let on_server: HashSet<ObjectKey> = listed
            .items
            .iter()
            .filter(|pod| controller_of(*pod).is_some_and(|owner| owner.uid == uid))
            .map(ObjectKey::of)
            .collect();
        let unseen = on_server
            .iter()
            .filter(|pod| self.pods.get(pod).is_none())
            .count();
        let gone: Vec<String> = self
            .pods
            .controlled_by(&uid)
            .iter()
            .filter(|pod| !on_server.contains(&ObjectKey::of(&***pod)))
            .map(|pod| pods::key(pod))
            .collect();
        // One kind of expectation at a time: deletions are settled by the next sync.
        if unseen > 0 {
            info!(%key, unseen, "pods made by creates whose answers were lost; waiting for the cache");
            self.expectations.expect_creations(key, unseen);
            return Ok(false);
        }
        self.lock_uncertain().remove(key);
        if !gone.is_empty() {
            info!(%key, gone = gone.len(), "pods removed by deletes whose answers were lost; waiting for the cache");
            self.expectations.expect_deletions(key, gone);
            return Ok(false);
        }
        Ok(true)
    }

    fn api<K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>>(
        &self,
        namespace: &str,
    ) -> Api<K> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Creates or deletes pods so that `claimed` reaches `spec.replicas`.
    async fn manage_replicas(
        &self,
        ctx: &Context,
        key: &ObjectKey,
        rs: &ReplicaSet,
        claimed: &[Arc<PodView>],
    ) -> Result<(), Error> {
        let wanted = usize::try_from(rs.spec.replicas.unwrap_or(1)).unwrap_or(0);
        if claimed.len() < wanted {
            let missing = (wanted - claimed.len()).min(BURST_REPLICAS);
            self.expectations.expect_creations(key, missing);
            let (created, error) = self.create_in_slow_start(ctx, rs, missing).await;
            // Pods never attempted, or that failed, will not be observed; a failure
            // that may have created its pod is settled by the next sync.
            self.expectations.lower_creations(key, missing - created);
            if error.as_ref().is_some_and(outcome_unknown) {
                self.lock_uncertain().insert(key.clone());
            }
            return error.map_or(Ok(()), |source| Err(manage_error(key, source)));
        }
        if claimed.len() > wanted {
            let surplus = (claimed.len() - wanted).min(BURST_REPLICAS);
            let victims = self.pods_to_delete(rs, claimed, surplus);
            self.expectations
                .expect_deletions(key, victims.iter().map(|p| pods::key(p)));
            let deletions = victims.iter().map(|pod| self.delete_pod(ctx, key, rs, pod));
            let first_error = join_all(deletions).await.into_iter().find_map(Result::err);
            return first_error.map_or(Ok(()), |source| Err(manage_error(key, source)));
        }
        Ok(())
    }

    /// Batches of 1, 2, 4, ... creations, stopping after the first batch with a failure;
    /// returns how many were created and the first error.
    async fn create_in_slow_start(
        &self,
        ctx: &Context,
        rs: &ReplicaSet,
        count: usize,
    ) -> (usize, Option<kube::Error>) {
        let (mut created, mut batch) = (0, 1);
        while created < count {
            let size = batch.min(count - created);
            let results = join_all((0..size).map(|_| self.create_pod(ctx, rs))).await;
            let successes = results.iter().filter(|r| r.is_ok()).count();
            created += successes;
            if let Some(error) = results.into_iter().find_map(Result::err) {
                return (created, Some(error));
            }
            batch *= 2;
        }
        (created, None)
    }

    async fn create_pod(&self, ctx: &Context, rs: &ReplicaSet) -> Result<(), kube::Error> {
        let template = rs.spec.template.clone().unwrap_or_default();
        let template_meta = template.metadata.unwrap_or_default();
        let pod = Pod {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", rs.name_any())),
                labels: template_meta.labels,
                annotations: template_meta.annotations,
                finalizers: template_meta.finalizers,
                owner_references: Some(vec![controller_reference(rs)]),
                ..ObjectMeta::default()
            },
            spec: template.spec,
            status: None,
        };
        let namespace = rs.namespace().unwrap_or_default();
        // The answer is decoded as the cached projection: only what the cache holds.
        let api = self.api::<Pod>(&namespace);
        match create_as::<PodView>(&api, &PostParams::default(), &pod).await {
            Ok(created) => {
                ctx.wrote(&created);
                let note = format!("Created pod: {}", created.name_any());
                ctx.event(EventType::Normal, SUCCESSFUL_CREATE, &note);
                Ok(())
            }
            Err(error) => {
                // A namespace being deleted refuses every create; no event for that.
                if !is_namespace_terminating(&error) {
                    let note = format!("Error creating: {}", api_message(&error));
                    ctx.event(EventType::Warning, FAILED_CREATE, &note);
                }
                Err(error)
            }
        }
    }

    async fn delete_pod(
        &self,
        ctx: &Context,
        key: &ObjectKey,
        rs: &ReplicaSet,
        pod: &PodView,
    ) -> Result<(), kube::Error> {
        let namespace = rs.namespace().unwrap_or_default();
        match self
            .api::<Pod>(&namespace)
            .delete(&pod.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {
                let note = format!("Deleted pod: {}", pod.name_any());
                ctx.event(EventType::Normal, SUCCESSFUL_DELETE, &note);
                Ok(())
            }
            // Already gone: its delete event settles the expectation.
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(error) => {
                self.expectations.deletion_observed(key, &pods::key(pod));
                if outcome_unknown(&error) {
                    self.lock_uncertain().insert(key.clone());
                }
                let note = format!("Error deleting: {}", api_message(&error));
                ctx.event(EventType::Warning, FAILED_DELETE, &note);
                Err(error)
            }
        }
    }

    /// The `count` pods to delete first, by kube-controller-manager's ranking. Pods of
    /// ReplicaSets with the same controller (one Deployment) count as colocated; a
    /// ReplicaSet without a controller has no such pods, so that criterion ties.
    fn pods_to_delete(
        &self,
        rs: &ReplicaSet,
        claimed: &[Arc<PodView>],
        count: usize,
    ) -> Vec<Arc<PodView>> {
        let mut ranked: Vec<Arc<PodView>> = claimed.to_vec();
        if count < ranked.len() {
            let on_node = self.active_related_pods_per_node(rs);
            let colocated = |p: &PodView| {
                let node = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .unwrap_or("");
                on_node.get(node).copied().unwrap_or(0)
            };
            let now = Timestamp::now();
            let order = |a: &Arc<PodView>, b: &Arc<PodView>| {
                pods::deletion_order((a, colocated(a)), (b, colocated(b)), now)
            };
            pods::sort_tolerant(&mut ranked, &order);
        }
        ranked.truncate(count);
        ranked
    }

    /// Active pods per node of every ReplicaSet controlled by `rs`'s controller (`rs`
    /// included). Empty when `rs` has no controller, as in kube-controller-manager,
    /// which then ranks every pod the same on colocation.
    fn active_related_pods_per_node(&self, rs: &ReplicaSet) -> HashMap<String, usize> {
        let namespace = rs.namespace().unwrap_or_default();
        let related: Vec<Arc<ReplicaSet>> = match controller_of(rs) {
            Some(owner) => self.replica_sets.controlled_by(&owner.uid),
            None => Vec::new(),
        };
        let mut seen = HashSet::new();
        let mut on_node = HashMap::new();
        for related_rs in related {
            let Ok(selector) = Selector::from_label_selector(Some(&related_rs.spec.selector))
            else {
                continue;
            };
            for pod in self.pods.list_namespace(&namespace) {
                if selector.matches_object(&*pod) && pods::is_active(&pod) && seen.insert(pod.uid())
                {
                    let node = pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.node_name.clone())
                        .unwrap_or_default();
                    *on_node.entry(node).or_insert(0) += 1;
                }
            }
        }
        on_node
    }
}

/// The API server's own words for a refusal (what kube-controller-manager's events
/// quote), or the client error.
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

fn is_namespace_terminating(error: &kube::Error) -> bool {
    let kube::Error::Api(status) = error else {
        return false;
    };
    let causes = status.details.iter().flat_map(|d| &d.causes);
    causes
        .into_iter()
        .any(|cause| cause.reason == "NamespaceTerminating")
}

fn manage_error(key: &ObjectKey, source: kube::Error) -> Error {
    Error::ManageReplicas {
        key: key.clone(),
        source,
    }
}
