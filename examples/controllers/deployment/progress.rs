//! Status during a rollout: the counts, the Progressing condition (progress, completion,
//! the deadline) and failures copied from ReplicaSets, and when to look again for a
//! Deployment that may miss its deadline.

use std::time::Duration;

use k8s_openapi::{
    api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet},
    jiff::Timestamp,
};
use kube::ResourceExt;
use kube_reconcile::workloads::conditions;

use super::{
    Error, NEW_REPLICA_SET_AVAILABLE, PROGRESS_DEADLINE_EXCEEDED, PROGRESSING, REPLICA_FAILURE,
    REPLICA_SET_UPDATED,
    replica_sets::desired,
    sync::{Sets, Sync, calculate_status, condition, progress_deadline, progressing, same_status},
};

/// Whether every replica is updated and available, for the current generation.
pub fn is_complete(d: &Deployment, status: Option<&DeploymentStatus>) -> bool {
    let status = status.cloned().unwrap_or_default();
    let replicas = desired(d);
    status.updated_replicas.unwrap_or(0) == replicas
        && status.replicas.unwrap_or(0) == replicas
        && status.available_replicas.unwrap_or(0) == replicas
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Whether `new` shows progress over the stored status.
fn is_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_pods = |s: &DeploymentStatus| n(s.replicas) - n(s.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || old_pods(new) < old_pods(&old)
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// Whether the last progress is older than the deadline.
fn timed_out(d: &Deployment, new: &DeploymentStatus) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(current) = new
        .conditions
        .as_deref()
        .and_then(|c| conditions::find(c, PROGRESSING))
    else {
        return false;
    };
    match current.reason.as_deref() {
        Some(NEW_REPLICA_SET_AVAILABLE) => false,
        Some(PROGRESS_DEADLINE_EXCEEDED) => true,
        _ => seconds_until_deadline(current, deadline).is_some_and(|left| left < 0.0),
    }
}

/// Seconds from now until the condition's last update plus the deadline.
fn seconds_until_deadline(current: &DeploymentCondition, deadline: i32) -> Option<f64> {
    let updated = current.last_update_time.as_ref()?.0;
    let due = updated.as_second() + i64::from(deadline);
    let now = Timestamp::now();
    Some(due as f64 - now.as_second() as f64 - f64::from(now.subsec_nanosecond()) / 1e9)
}

impl Sync<'_> {
    /// Writes the rollout's status with its Progressing and ReplicaFailure conditions;
    /// returns when to check the deadline again if the rollout may still miss it.
    pub async fn sync_rollout_status(
        &self,
        d: &mut Deployment,
        sets: &Sets,
    ) -> Result<Option<Duration>, Error> {
        let mut status = calculate_status(d, sets);
        let list = status.conditions.get_or_insert_with(Vec::new);
        if progress_deadline(d).is_none() {
            conditions::remove(list, PROGRESSING);
        }
        let current = progressing(d).cloned();
        let new_name = sets.new.as_ref().map(ResourceExt::name_any);
        let about = |what: &str| match &new_name {
            Some(name) => format!("ReplicaSet {name:?} {what}"),
            None => format!("Deployment {:?} {what}", d.name_any()),
        };
        let already_complete = status.replicas == status.updated_replicas
            && current.as_ref().and_then(|c| c.reason.as_deref())
                == Some(NEW_REPLICA_SET_AVAILABLE);
        if progress_deadline(d).is_some() && !already_complete {
            if is_complete(d, Some(&status)) {
                let done = condition(
                    PROGRESSING,
                    "True",
                    NEW_REPLICA_SET_AVAILABLE,
                    about("has successfully progressed."),
                );
                conditions::set(status.conditions.get_or_insert_with(Vec::new), done);
            } else if is_progressing(d, &status) {
                let mut moving = condition(
                    PROGRESSING,
                    "True",
                    REPLICA_SET_UPDATED,
                    about("is progressing."),
                );
                let list = status.conditions.get_or_insert_with(Vec::new);
                if let Some(current) = &current {
                    // Progress refreshes the update time; the transition time stays
                    // while the condition stays true.
                    if current.status.as_deref() == Some("True") {
                        moving.last_transition_time = current.last_transition_time.clone();
                    }
                    conditions::remove(list, PROGRESSING);
                }
                conditions::set(list, moving);
            } else if timed_out(d, &status) {
                let stuck = condition(
                    PROGRESSING,
                    "False",
                    PROGRESS_DEADLINE_EXCEEDED,
                    about("has timed out progressing."),
                );
                conditions::set(status.conditions.get_or_insert_with(Vec::new), stuck);
            }
        }
        let list = status.conditions.get_or_insert_with(Vec::new);
        match replica_failure(sets) {
            Some(failure) => {
                conditions::set(list, failure);
            }
            None => {
                conditions::remove(list, REPLICA_FAILURE);
            }
        }
        if same_status(d.status.as_ref(), &status) {
            return Ok(self.recheck_after(d, &status));
        }
        d.status = Some(status);
        self.update_status(d).await?;
        Ok(None)
    }

    /// When a rollout that has not progressed must be looked at again to see whether
    /// it missed its deadline (a second late, against clock skew); `None` when it
    /// cannot time out.
    fn recheck_after(&self, d: &Deployment, new: &DeploymentStatus) -> Option<Duration> {
        let deadline = progress_deadline(d)?;
        let current = progressing(d)?;
        if is_complete(d, Some(new))
            || current.reason.as_deref() == Some(PROGRESS_DEADLINE_EXCEEDED)
        {
            return None;
        }
        let left = seconds_until_deadline(current, deadline)?;
        Some(if left < 1.0 {
            Duration::from_secs(1)
        } else {
            Duration::from_secs_f64(left + 1.0)
        })
    }
}

/// The ReplicaFailure condition of the new ReplicaSet, else of any old one.
fn replica_failure(sets: &Sets) -> Option<DeploymentCondition> {
    let failure_of = |rs: &ReplicaSet| {
        let list = rs.status.as_ref()?.conditions.as_deref()?;
        let c = conditions::find(list, REPLICA_FAILURE)?;
        Some(DeploymentCondition {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            last_transition_time: c.last_transition_time.clone(),
            last_update_time: c.last_transition_time.clone(),
        })
    };
    sets.new
        .as_ref()
        .and_then(failure_of)
        .or_else(|| sets.all().into_iter().find_map(failure_of))
}
