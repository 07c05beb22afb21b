//! The ReplicaSet's status: computed from the claimed pods as kube-controller-manager
//! does, and written only when it changed (progress at most once a second).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::{
    ResourceExt,
    api::{Patch, PatchParams},
};
use kube_reconcile::{ObjectKey, context::Context};

use super::super::pod_view::PodView;
use super::{
    Error, FAILED_CREATE, FAILED_DELETE, NAME, PROGRESS_INTERVAL, REPLICA_FAILURE,
    ReplicaSetController, api_message, pods,
};

impl ReplicaSetController {
    /// Writes status (with observedGeneration) only when it changed. Mere progress
    /// (pod counts moving while the ReplicaSet has not settled) is written at most once
    /// per [`PROGRESS_INTERVAL`]; then the write is deferred and its delay returned.
    pub(super) async fn update_status(
        &self,
        ctx: &Context,
        key: &ObjectKey,
        rs: &ReplicaSet,
        status: ReplicaSetStatus,
    ) -> Result<Option<Duration>, Error> {
        let current = rs.status.clone().unwrap_or_default();
        let status = ReplicaSetStatus {
            observed_generation: rs.metadata.generation,
            ..status
        };
        if same_status(&current, &status) {
            return Ok(None);
        }
        if let Some(wait) = self.progress_wait(key, rs, &current, &status) {
            return Ok(Some(wait));
        }
        let mut patch = serde_json::json!({"status": status});
        if status.conditions.is_none() {
            // A merge patch keeps whatever it does not mention: a condition list that
            // is gone (the last condition removed) must be sent as null to be removed.
            patch["status"]["conditions"] = serde_json::Value::Null;
        }
        let params = PatchParams {
            field_manager: Some(NAME.into()),
            ..PatchParams::default()
        };
        let namespace = key.namespace().unwrap_or_default();
        let updated = self
            .api::<ReplicaSet>(namespace)
            .patch_status(key.name(), &params, &Patch::Merge(&patch))
            .await
            .map_err(|source| Error::Status {
                key: key.clone(),
                source,
            })?;
        self.lock_status_written()
            .insert(key.clone(), Instant::now());
        ctx.wrote(&updated);
        Ok(None)
    }

    /// How long to hold back a status write that only reports progress.
    ///
    /// Why: while pods start, every pod that turns ready changes the counts; writing
    /// each is most of a controller's requests besides the creates. A status that
    /// reaches the goal, a new generation or a condition change is written at once, so
    /// convergence is never reported late.
    fn progress_wait(
        &self,
        key: &ObjectKey,
        rs: &ReplicaSet,
        current: &ReplicaSetStatus,
        next: &ReplicaSetStatus,
    ) -> Option<Duration> {
        let wanted = rs.spec.replicas.unwrap_or(1);
        let settled = next.replicas == wanted
            && next.ready_replicas.unwrap_or(0) == wanted
            && next.available_replicas.unwrap_or(0) == wanted;
        let only_counts = current.observed_generation == next.observed_generation
            && current.conditions.clone().unwrap_or_default()
                == next.conditions.clone().unwrap_or_default();
        if settled || !only_counts {
            return None;
        }
        let since = self.lock_status_written().get(key)?.elapsed();
        PROGRESS_INTERVAL
            .checked_sub(since)
            .filter(|w| !w.is_zero())
    }

    pub(super) fn lock_status_written(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, Instant>> {
        self.status_written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// The status kube-controller-manager computes from the claimed (active) pods.
pub(super) fn calculate_status(
    rs: &ReplicaSet,
    claimed: &[Arc<PodView>],
    terminating: usize,
    manage_error: Option<&Error>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let mut status = rs.status.clone().unwrap_or_default();
    let template_labels = rs
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    let min_ready = rs.spec.min_ready_seconds.unwrap_or(0);
    let fully_labeled = claimed
        .iter()
        .filter(|p| {
            template_labels
                .iter()
                .flatten()
                .all(|(k, v)| p.labels().get(k) == Some(v))
        })
        .count();
    let ready = claimed.iter().filter(|p| pods::is_ready(p)).count();
    let available = claimed
        .iter()
        .filter(|p| pods::is_available(p, min_ready, now))
        .count();

    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let failure = conditions
        .iter()
        .position(|c| c.type_.as_deref() == Some(REPLICA_FAILURE));
    match (manage_error, failure) {
        (Some(error), None) => {
            let wanted = usize::try_from(rs.spec.replicas.unwrap_or(1)).unwrap_or(0);
            let reason = if claimed.len() < wanted {
                FAILED_CREATE
            } else {
                FAILED_DELETE
            };
            // The API server's own words, as kube-controller-manager's message.
            let message = match error {
                Error::ManageReplicas { source, .. } => api_message(source),
                other => other.to_string(),
            };
            conditions.push(ReplicaSetCondition {
                type_: Some(REPLICA_FAILURE.into()),
                status: Some("True".into()),
                reason: Some(reason.into()),
                message: Some(message),
                last_transition_time: Some(Time(now)),
            });
        }
        (None, Some(index)) => {
            conditions.remove(index);
        }
        _ => {}
    }
    if conditions.is_empty() {
        status.conditions = None;
    }
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    status.replicas = count(claimed.len());
    status.fully_labeled_replicas = Some(count(fully_labeled));
    status.ready_replicas = Some(count(ready));
    status.available_replicas = Some(count(available));
    status.terminating_replicas = Some(count(terminating));
    status
}

fn same_status(a: &ReplicaSetStatus, b: &ReplicaSetStatus) -> bool {
    let zero = |v: Option<i32>| v.unwrap_or(0);
    a.replicas == b.replicas
        && zero(a.fully_labeled_replicas) == zero(b.fully_labeled_replicas)
        && zero(a.ready_replicas) == zero(b.ready_replicas)
        && zero(a.available_replicas) == zero(b.available_replicas)
        && a.terminating_replicas == b.terminating_replicas
        && a.observed_generation == b.observed_generation
        && a.conditions.clone().unwrap_or_default() == b.conditions.clone().unwrap_or_default()
}
