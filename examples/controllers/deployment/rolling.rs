//! RollingUpdate: grow the new ReplicaSet within `replicas + maxSurge`, shrink the old
//! ones (unhealthy pods first) without going below `replicas - maxUnavailable`
//! available, and clean up once complete.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::{
    Error,
    progress::is_complete,
    replica_sets::{self as sets, available, desired, size},
    sync::{Sets, Sync, replace_in},
};

impl Sync<'_> {
    /// One step of a rolling update; returns when to check progress again.
    pub async fn rollout_rolling(
        &self,
        d: &mut Deployment,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<Option<Duration>, Error> {
        let mut sets = self.sets_and_sync_revision(d, list, true).await?;
        if self.scale_up_new(d, &mut sets, list).await? {
            return self.sync_rollout_status(d, &sets).await;
        }
        if self.scale_down_old(d, &mut sets, list).await? {
            return self.sync_rollout_status(d, &sets).await;
        }
        if is_complete(d, d.status.as_ref()) {
            self.clean_up(d, &sets.old).await?;
        }
        self.sync_rollout_status(d, &sets).await
    }

    /// Sizes the new ReplicaSet towards `spec.replicas` within the surge (or down to it).
    async fn scale_up_new(
        &self,
        d: &Deployment,
        sets: &mut Sets,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<bool, Error> {
        let new = sets.new.clone().expect("created above");
        if size(&new) == desired(d) {
            return Ok(false);
        }
        let target = if size(&new) > desired(d) {
            desired(d)
        } else {
            sets::new_rs_new_replicas(d, &sets.all(), &new).map_err(|source| Error::Fenceposts {
                key: self.key.clone(),
                source,
            })?
        };
        let (scaled, updated) = self.scale_replica_set(d, &new, target, false, list).await?;
        replace_in(sets, updated);
        Ok(scaled)
    }

    /// Shrinks old ReplicaSets as far as availability allows; returns whether any shrank.
    async fn scale_down_old(
        &self,
        d: &Deployment,
        sets: &mut Sets,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<bool, Error> {
        let old_active: Vec<ReplicaSet> =
            sets.old.iter().filter(|rs| size(rs) > 0).cloned().collect();
        if sets::total_size(&old_active) == 0 {
            return Ok(false);
        }
        let new = sets.new.clone().expect("created above");
        let all_pods = sets::total_size(sets.all());
        let min_available = desired(d) - sets::max_unavailable(d);
        let new_unavailable = size(&new) - available(&new);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        // Unhealthy replicas first: removing them costs no availability. As in
        // kube-controller-manager, a failed write here is not an error of the sync.
        let Ok((old_active, cleaned)) = self
            .clean_up_unhealthy(d, old_active, max_scaled_down, sets, list)
            .await
        else {
            return Ok(false);
        };
        let Ok(scaled) = self
            .scale_down_for_rolling_update(d, old_active, sets, list)
            .await
        else {
            return Ok(false);
        };
        Ok(cleaned + scaled > 0)
    }

    async fn clean_up_unhealthy(
        &self,
        d: &Deployment,
        mut old: Vec<ReplicaSet>,
        max_cleanup: i32,
        sets: &mut Sets,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<(Vec<ReplicaSet>, i32), Error> {
        old.sort_by(sets::by_creation);
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= max_cleanup {
                break;
            }
            if size(rs) == 0 || size(rs) == available(rs) {
                continue;
            }
            let count = (max_cleanup - total).min(size(rs) - available(rs));
            if count < 0 {
                // A status showing more available than wanted (a scale-down its
                // ReplicaSet has not caught up with): never "clean up" upwards.
                return Err(Error::InvalidScaleDown {
                    key: self.key.clone(),
                    replica_set: kube::ResourceExt::name_any(rs),
                    from: size(rs),
                    to: size(rs) - count,
                });
            }
            let (_, updated) = self
                .scale_replica_set(d, rs, size(rs) - count, false, list)
                .await?;
            replace_in(sets, updated.clone());
            *rs = updated;
            total += count;
        }
        Ok((old, total))
    }

    async fn scale_down_for_rolling_update(
        &self,
        d: &Deployment,
        mut old: Vec<ReplicaSet>,
        sets: &mut Sets,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<i32, Error> {
        let min_available = desired(d) - sets::max_unavailable(d);
        let all: Vec<&ReplicaSet> = old.iter().chain(&sets.new).collect();
        let available_pods = sets::total_status(all, available);
        if available_pods <= min_available {
            return Ok(0);
        }
        old.sort_by(sets::by_creation);
        let to_scale_down = available_pods - min_available;
        let mut total = 0;
        for rs in &old {
            if total >= to_scale_down {
                break;
            }
            if size(rs) == 0 {
                continue;
            }
            let count = size(rs).min(to_scale_down - total);
            let (_, updated) = self
                .scale_replica_set(d, rs, size(rs) - count, false, list)
                .await?;
            replace_in(sets, updated);
            total += count;
        }
        Ok(total)
    }
}
