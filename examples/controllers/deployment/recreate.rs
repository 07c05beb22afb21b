//! Recreate: every old ReplicaSet to 0, wait until no old pod runs, then the new
//! ReplicaSet to `spec.replicas`.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::super::pod_view::PodView;
use super::{
    Error,
    progress::is_complete,
    replica_sets::{self as sets, desired, size},
    sync::{Sets, Sync, replace_in},
};

impl Sync<'_> {
    /// One step of a Recreate rollout; returns when to check progress again.
    pub async fn rollout_recreate(
        &self,
        d: &mut Deployment,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<Option<Duration>, Error> {
        // The new ReplicaSet is not created before the old pods are gone.
        let mut sets = self.sets_and_sync_revision(d, list, false).await?;
        let mut scaled_down = false;
        for old in sets.old.clone().iter().filter(|rs| size(rs) > 0) {
            let (scaled, updated) = self.scale_replica_set(d, old, 0, false, list).await?;
            scaled_down |= scaled;
            replace_in(&mut sets, updated);
        }
        if scaled_down || self.old_pods_running(&sets) {
            return self.sync_rollout_status(d, &sets).await;
        }
        if sets.new.is_none() {
            sets = self.sets_and_sync_revision(d, list, true).await?;
        }
        let new = sets.new.clone().expect("created above");
        let (_, updated) = self
            .scale_replica_set(d, &new, desired(d), false, list)
            .await?;
        replace_in(&mut sets, updated);
        if is_complete(d, d.status.as_ref()) {
            self.clean_up(d, &sets.old).await?;
        }
        self.sync_rollout_status(d, &sets).await
    }

    /// Whether an old ReplicaSet still reports pods, or an old pod is not terminal yet.
    fn old_pods_running(&self, sets: &Sets) -> bool {
        if sets::total_status(&sets.old, sets::actual) > 0 {
            return true;
        }
        let terminal = |pod: &PodView| {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            matches!(phase, Some("Failed" | "Succeeded"))
        };
        sets.old
            .iter()
            .flat_map(|rs| self.controller.pods_of(rs))
            .any(|pod| !terminal(&pod))
    }
}
