//! The Deployment controller, behaving like kube-controller-manager's
//! (pkg/controller/deployment), built only on kube-reconcile's public API.
//!
//! One sync function, [`DeploymentController::reconcile`], reads top to bottom as the
//! Go one does: an empty selector is only reported; ReplicaSets are claimed; a
//! Deployment being deleted only gets its status; paused and resumed are recorded;
//! then, in this order, a paused Deployment is only scaled ([`sync`]), a rollback
//! annotation rolls back ([`rollback`]), a scaling event scales proportionally, and
//! otherwise the strategy runs ([`rolling`] or [`recreate`]). Status and the
//! Progressing condition are written by [`progress`].

use std::sync::Arc;

use super::pod_view::PodView;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::{Api, Client, Resource, ResourceExt, api::PostParams};
use kube_reconcile::{
    ObjectKey,
    controller::{Controller, handler},
    events::EventType,
    informer::{Change, InformerFactory, Scope},
    ownership::{ClaimError, ControllerRefManager, controller_of, controller_of_kind},
    reconcile::{Action, OnError, Reconcile, Request},
    selector::Selector,
    store::Store,
};

mod progress;
mod recreate;
pub mod replica_sets;
mod rollback;
mod rolling;
mod sync;

/// The name this controller reports in events and field managers.
pub const NAME: &str = "deployment-controller";
/// The `Recreate` strategy type (`RollingUpdate` is the other, and the default).
pub const RECREATE: &str = "Recreate";
/// ReplicaSet annotation: `spec.replicas` of the Deployment when the ReplicaSet was last
/// sized; a difference means the Deployment was scaled.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// ReplicaSet annotation: `spec.replicas + maxSurge` when last sized, the base of
/// proportional scaling.
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// Deployment annotation of the deprecated rollback API: the revision to go back to
/// (0: the previous one).
pub const ROLLBACK_TO_ANNOTATION: &str = "deprecated.deployment.rollback.to";
/// kubectl's record of the last applied configuration, never copied to ReplicaSets.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Event reason: a ReplicaSet was scaled.
pub const SCALING_REPLICA_SET: &str = "ScalingReplicaSet";
/// Event reason: the selector is empty and would select every pod.
pub const SELECTING_ALL: &str = "SelectingAll";
/// Event reason: rolled back.
pub const ROLLBACK_DONE: &str = "DeploymentRollback";
/// Event reason: the revision to roll back to does not exist.
pub const ROLLBACK_REVISION_NOT_FOUND: &str = "DeploymentRollbackRevisionNotFound";
/// Event reason: the revision to roll back to holds the current template.
pub const ROLLBACK_TEMPLATE_UNCHANGED: &str = "DeploymentRollbackTemplateUnchanged";

/// Condition type: enough replicas are available.
pub const AVAILABLE: &str = "Available";
/// Condition type: the rollout moves (or has finished, or is stuck).
pub const PROGRESSING: &str = "Progressing";
/// Condition type, copied from a ReplicaSet that failed to create or delete pods.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
/// Available reason: at least `replicas - maxUnavailable` are available.
pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
/// Available reason: fewer than that.
pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
/// Progressing reason: a new ReplicaSet was created for the template.
pub const NEW_REPLICA_SET_CREATED: &str = "NewReplicaSetCreated";
/// Progressing reason: the new ReplicaSet exists (found on the first progress check).
pub const FOUND_NEW_REPLICA_SET: &str = "FoundNewReplicaSet";
/// Progressing reason: replicas moved.
pub const REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
/// Progressing reason: the rollout completed.
pub const NEW_REPLICA_SET_AVAILABLE: &str = "NewReplicaSetAvailable";
/// Progressing reason: no progress within `progressDeadlineSeconds`.
pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
/// Progressing reason, and event reason: creating the new ReplicaSet failed.
pub const REPLICA_SET_CREATE_ERROR: &str = "ReplicaSetCreateError";
/// Progressing reason: paused.
pub const DEPLOYMENT_PAUSED: &str = "DeploymentPaused";
/// Progressing reason: resumed.
pub const DEPLOYMENT_RESUMED: &str = "DeploymentResumed";

/// Why a sync failed; retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Claiming ReplicaSets failed.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// A write to the API server failed.
    #[error("{what} for deployment {key} failed")]
    Api {
        /// The Deployment.
        key: ObjectKey,
        /// What was being written.
        what: &'static str,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The new ReplicaSet's name is taken by one with another template; the collision
    /// count was raised and the next sync picks another name.
    #[error("replica set name {name} of deployment {key} collides; retrying with a new hash")]
    HashCollision {
        /// The Deployment.
        key: ObjectKey,
        /// The taken name.
        name: String,
    },
    /// A scale-down step computed a larger size (from a ReplicaSet status that reports
    /// more available replicas than it wants); refused, as kube-controller-manager does.
    #[error(
        "deployment {key}: refusing to scale down replica set {replica_set} from {from} to {to}"
    )]
    InvalidScaleDown {
        /// The Deployment.
        key: ObjectKey,
        /// The ReplicaSet.
        replica_set: String,
        /// Its size.
        from: i32,
        /// The larger size computed.
        to: i32,
    },
    /// `maxSurge` or `maxUnavailable` does not parse (the API server refuses such
    /// Deployments; this guards objects that slipped past it).
    #[error("deployment {key}: {source}")]
    Fenceposts {
        /// The Deployment.
        key: ObjectKey,
        /// The value that did not parse.
        #[source]
        source: kube_reconcile::workloads::int_or_percent::InvalidIntOrPercent,
    },
}

impl Error {
    fn is_namespace_terminating(&self) -> bool {
        let Error::Api {
            source: kube::Error::Api(status),
            ..
        } = self
        else {
            return false;
        };
        let causes = status.details.iter().flat_map(|d| &d.causes);
        causes
            .into_iter()
            .any(|cause| cause.reason == "NamespaceTerminating")
    }
}

/// Shared state of the workers.
pub struct DeploymentController {
    client: Client,
    replica_sets: Store<ReplicaSet>,
    pods: Store<PodView>,
}

/// Builds the controller for the Deployments, ReplicaSets and pods in `scope`:
/// Deployments are primary; a ReplicaSet change maps to its controlling Deployment (an
/// orphan to every Deployment whose selector matches it); a pod deletion wakes a
/// Recreate Deployment waiting for its old pods to go.
pub fn controller(
    client: Client,
    factory: &InformerFactory,
    scope: &Scope,
    workers: usize,
) -> Controller<Deployment, DeploymentController> {
    let builder = Controller::<Deployment>::builder(NAME, factory, scope);
    let deployments = builder.store::<Deployment>().expect("the primary type");
    let on_replica_set = {
        let deployments = deployments.clone();
        move |change: &Change<ReplicaSet>| replica_set_event(&deployments, change)
    };
    let builder = builder.watches::<ReplicaSet>(scope, on_replica_set);
    let replica_sets = builder.store::<ReplicaSet>().expect("watched above");
    let on_pod = {
        let (deployments, replica_sets) = (deployments.clone(), replica_sets.clone());
        move |change: &Change<PodView>| pod_event(&deployments, &replica_sets, change)
    };
    let builder = builder.watches::<PodView>(scope, on_pod);
    let pods = builder.store::<PodView>().expect("watched above");
    builder
        .workers(workers)
        .rate_limiter(kube_reconcile::queue::client_go_default())
        // ReplicaSets: created (read back if the name is taken), scaled and annotated,
        // deleted by the history limit, patched to adopt or release; the Deployment: its
        // rollback annotation cleared.
        .needs::<ReplicaSet>(&["get", "create", "update", "delete", "patch"])
        .needs::<Deployment>(&["get", "update"]) // get: claiming re-reads the owner
        .needs_subresource::<Deployment>("status", &["update"])
        .build(DeploymentController {
            client,
            replica_sets,
            pods,
        })
}

/// The Deployments a ReplicaSet change concerns.
fn replica_set_event(
    deployments: &Store<Deployment>,
    change: &Change<ReplicaSet>,
) -> Vec<ObjectKey> {
    let owner = |rs: &ReplicaSet| handler::resolve_controller_owner(deployments, rs);
    let mut keys = Vec::new();
    match change {
        Change::Added(rs) | Change::Deleted(rs) => match owner(rs) {
            Some(key) => keys.push(key),
            None if controller_of(&**rs).is_none() && matches!(change, Change::Added(_)) => {
                keys.extend(matching_deployments(deployments, rs));
            }
            None => {}
        },
        Change::Updated { old, new } => {
            if old.resource_version() == new.resource_version() {
                return keys;
            }
            let ref_changed = controller_of(&**old) != controller_of(&**new);
            if ref_changed {
                keys.extend(owner(old));
            }
            match owner(new) {
                Some(key) => keys.push(key),
                None if controller_of(&**new).is_none()
                    && (ref_changed || old.labels() != new.labels()) =>
                {
                    keys.extend(matching_deployments(deployments, new));
                }
                None => {}
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Every Deployment whose (non-empty) selector matches the ReplicaSet's labels.
fn matching_deployments(deployments: &Store<Deployment>, rs: &ReplicaSet) -> Vec<ObjectKey> {
    if rs.labels().is_empty() {
        return Vec::new();
    }
    let namespace = rs.namespace().unwrap_or_default();
    deployments
        .list_namespace(&namespace)
        .iter()
        .filter(|d| {
            Selector::from_label_selector(Some(&d.spec.selector))
                .is_ok_and(|s| !s.is_everything() && s.matches_object(rs))
        })
        .map(|d| ObjectKey::of(&**d))
        .collect()
}

/// A deleted pod wakes its Deployment (through its ReplicaSet) if that rolls by
/// Recreate: the new pods wait for the old ones to be gone.
fn pod_event(
    deployments: &Store<Deployment>,
    replica_sets: &Store<ReplicaSet>,
    change: &Change<PodView>,
) -> Vec<ObjectKey> {
    let Change::Deleted(pod) = change else {
        return Vec::new();
    };
    let Some(rs_key) = handler::resolve_controller_owner(replica_sets, &**pod) else {
        return Vec::new();
    };
    let Some(rs) = replica_sets.get(&rs_key) else {
        return Vec::new();
    };
    let Some(d_key) = handler::resolve_controller_owner(deployments, &*rs) else {
        return Vec::new();
    };
    let recreate = deployments
        .get(&d_key)
        .is_some_and(|d| !replica_sets::is_rolling_update(&d));
    if recreate { vec![d_key] } else { Vec::new() }
}

impl Reconcile<Deployment> for DeploymentController {
    type Error = Error;

    async fn reconcile(&self, request: Request<Deployment>) -> Result<Action, Error> {
        let (key, ctx) = (request.key, request.ctx);
        let Some(cached) = request.object else {
            return Ok(Action::Done);
        };
        let mut d = (*cached).clone();
        let sync = sync::Sync::new(self, &ctx, &key);

        if selects_everything(&d) {
            let note = "This deployment is selecting all pods. A non-empty selector is required.";
            ctx.event(EventType::Warning, SELECTING_ALL, note);
            let observed = d.status.as_ref().and_then(|s| s.observed_generation);
            if observed.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
                let status = d.status.get_or_insert_with(Default::default);
                status.observed_generation = d.metadata.generation;
                // kube-controller-manager ignores a failure here too: the event says it.
                let _ = sync.update_status(&mut d).await;
            }
            return Ok(Action::Done);
        }

        let mut replica_sets = self.claim_replica_sets(&d).await?;
        if d.metadata.deletion_timestamp.is_some() {
            sync.status_only(&mut d, &mut replica_sets).await?;
            return Ok(Action::Done);
        }
        sync.check_paused_conditions(&mut d).await?;
        let requeue = if d.spec.paused == Some(true) {
            sync.scale_and_clean_up(&mut d, &mut replica_sets).await?
        } else if rollback::rollback_to(&d).is_some() {
            sync.rollback(&mut d, &mut replica_sets).await?
        } else if sync.is_scaling_event(&mut d, &mut replica_sets).await? {
            sync.scale_and_clean_up(&mut d, &mut replica_sets).await?
        } else if replica_sets::is_rolling_update(&d) {
            sync.rollout_rolling(&mut d, &mut replica_sets).await?
        } else {
            sync.rollout_recreate(&mut d, &mut replica_sets).await?
        };
        Ok(requeue.map_or(Action::Done, Action::RequeueAfter))
    }

    fn error_policy(&self, error: &Error, _key: &ObjectKey) -> OnError {
        // A namespace being deleted refuses every create: nothing to retry.
        if error.is_namespace_terminating() {
            OnError::Terminal
        } else {
            OnError::Backoff
        }
    }
}

/// `selector: {}` selects every pod; the API server refuses it for apps/v1, but older
/// objects may carry it.
fn selects_everything(d: &Deployment) -> bool {
    let s = &d.spec.selector;
    s.match_labels.as_ref().is_none_or(|l| l.is_empty())
        && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
}

impl DeploymentController {
    fn api<K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>>(
        &self,
        namespace: &str,
    ) -> Api<K> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// The ReplicaSets this Deployment controls after adopting matching orphans and
    /// releasing its own that stopped matching.
    async fn claim_replica_sets(&self, d: &Deployment) -> Result<Vec<ReplicaSet>, Error> {
        let namespace = d.namespace().unwrap_or_default();
        let selector = match Selector::from_label_selector(Some(&d.spec.selector)) {
            Ok(selector) => selector,
            // The API server validates selectors; an invalid one matches nothing.
            Err(_) => return Ok(Vec::new()),
        };
        let candidates = self.replica_sets.list_namespace(&namespace);
        let claimed = ControllerRefManager::new(
            d,
            self.api::<Deployment>(&namespace),
            self.api::<ReplicaSet>(&namespace),
            &selector,
        )
        .field_manager(NAME)
        .claim(&candidates)
        .await?;
        Ok(claimed.iter().map(|rs| (**rs).clone()).collect())
    }

    /// Pods controlled by `rs` (for Recreate: are old pods still running?).
    fn pods_of(&self, rs: &ReplicaSet) -> Vec<Arc<PodView>> {
        self.pods
            .controlled_by(&rs.uid().unwrap_or_default())
            .into_iter()
            .filter(|p| controller_of_kind::<ReplicaSet, PodView>(p).is_some())
            .collect()
    }
}

/// PUT parameters naming this controller.
fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(NAME.into()),
        ..PostParams::default()
    }
}
