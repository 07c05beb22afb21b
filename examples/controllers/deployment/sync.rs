//! The steps every path of the sync shares: finding (or creating) the new ReplicaSet
//! and keeping revisions in step, scaling ReplicaSets (proportionally on a scaling
//! event), cleaning up old ones beyond `revisionHistoryLimit`, and writing status.

use std::time::Duration;

use k8s_openapi::{
    api::apps::v1::{
        Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
    jiff::Timestamp,
};
use kube::{ResourceExt, api::DeleteParams};
use kube_reconcile::{
    ObjectKey,
    context::Context,
    events::EventType,
    ownership::controller_reference,
    workloads::{conditions, revision, template},
};

use super::{
    AVAILABLE, DEPLOYMENT_PAUSED, DEPLOYMENT_RESUMED, DeploymentController, Error,
    FOUND_NEW_REPLICA_SET, LAST_APPLIED_ANNOTATION, MINIMUM_REPLICAS_AVAILABLE,
    MINIMUM_REPLICAS_UNAVAILABLE, NEW_REPLICA_SET_CREATED, PROGRESS_DEADLINE_EXCEEDED, PROGRESSING,
    REPLICA_SET_CREATE_ERROR, ROLLBACK_TO_ANNOTATION, SCALING_REPLICA_SET, post_params,
    replica_sets::{self as sets, desired, size},
};

/// Annotations a Deployment never hands to its ReplicaSets (nor takes back on rollback).
const NOT_COPIED: &[&str] = &[
    LAST_APPLIED_ANNOTATION,
    revision::REVISION_ANNOTATION,
    revision::REVISION_HISTORY_ANNOTATION,
    super::DESIRED_REPLICAS_ANNOTATION,
    super::MAX_REPLICAS_ANNOTATION,
    ROLLBACK_TO_ANNOTATION,
];

/// One sync of one Deployment: what its steps share.
pub(super) struct Sync<'a> {
    pub controller: &'a DeploymentController,
    pub ctx: &'a Context,
    pub key: &'a ObjectKey,
}

/// The new ReplicaSet (if any) and all the others.
pub(super) struct Sets {
    pub new: Option<ReplicaSet>,
    pub old: Vec<ReplicaSet>,
}

impl Sets {
    /// Old ones first, then the new one.
    pub fn all(&self) -> Vec<&ReplicaSet> {
        self.old.iter().chain(&self.new).collect()
    }
}

/// Whether the annotation may go from a Deployment to its ReplicaSets.
pub(super) fn is_copied(key: &str) -> bool {
    !NOT_COPIED.contains(&key)
}

/// Now, in whole seconds (as the API server stores times).
pub(super) fn now() -> Time {
    let now = Timestamp::now();
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// A Deployment condition stamped now.
pub(super) fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: Some(type_.into()),
        status: Some(status.into()),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now()),
        last_transition_time: Some(now()),
    }
}

/// `progressDeadlineSeconds`, unless it is unset or "forever" (`MaxInt32`).
pub(super) fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec.progress_deadline_seconds.filter(|s| *s != i32::MAX)
}

pub(super) fn status_conditions(d: &mut Deployment) -> &mut Vec<DeploymentCondition> {
    d.status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new)
}

pub(super) fn progressing(d: &Deployment) -> Option<&DeploymentCondition> {
    let list = d.status.as_ref()?.conditions.as_deref()?;
    conditions::find(list, PROGRESSING)
}

impl Sync<'_> {
    pub fn new<'a>(
        controller: &'a DeploymentController,
        ctx: &'a Context,
        key: &'a ObjectKey,
    ) -> Sync<'a> {
        Sync {
            controller,
            ctx,
            key,
        }
    }

    fn namespace(&self) -> &str {
        self.key.namespace().unwrap_or_default()
    }

    fn api_error(&self, what: &'static str) -> impl FnOnce(kube::Error) -> Error + '_ {
        move |source| Error::Api {
            key: self.key.clone(),
            what,
            source,
        }
    }

    /// Writes `d` through the status endpoint (which, for Deployments, also takes the
    /// annotations: that is how the revision reaches the Deployment) and keeps the
    /// stored version.
    pub async fn update_status(&self, d: &mut Deployment) -> Result<(), Error> {
        let updated = self
            .controller
            .api::<Deployment>(self.namespace())
            .replace_status(&d.name_any(), &post_params(), &*d)
            .await
            .map_err(self.api_error("updating status"))?;
        self.ctx.wrote(&updated);
        *d = updated;
        Ok(())
    }

    /// Writes a ReplicaSet and keeps the stored version in `list`.
    async fn update_replica_set(
        &self,
        rs: &ReplicaSet,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<ReplicaSet, Error> {
        let updated = self
            .controller
            .api::<ReplicaSet>(self.namespace())
            .replace(&rs.name_any(), &post_params(), rs)
            .await
            .map_err(self.api_error("updating a replica set"))?;
        self.ctx.wrote(&updated);
        remember(list, &updated);
        Ok(updated)
    }

    /// Status only, for a Deployment being deleted.
    pub async fn status_only(
        &self,
        d: &mut Deployment,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<(), Error> {
        let sets = self.sets_and_sync_revision(d, list, false).await?;
        self.sync_status(d, &sets).await
    }

    /// Records pausing and resuming in the Progressing condition (so a resumed
    /// Deployment is not judged by the time it spent paused).
    pub async fn check_paused_conditions(&self, d: &mut Deployment) -> Result<(), Error> {
        if progress_deadline(d).is_none() {
            return Ok(());
        }
        let reason = progressing(d).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(PROGRESS_DEADLINE_EXCEEDED) {
            return Ok(());
        }
        let paused_recorded = reason.as_deref() == Some(DEPLOYMENT_PAUSED);
        let paused = d.spec.paused == Some(true);
        let new = match (paused, paused_recorded) {
            (true, false) => condition(
                PROGRESSING,
                "Unknown",
                DEPLOYMENT_PAUSED,
                "Deployment is paused".into(),
            ),
            (false, true) => condition(
                PROGRESSING,
                "Unknown",
                DEPLOYMENT_RESUMED,
                "Deployment is resumed".into(),
            ),
            _ => return Ok(()),
        };
        conditions::set(status_conditions(d), new);
        self.update_status(d).await
    }

    /// Scales (proportionally when several ReplicaSets run) and, when paused, cleans
    /// up old ReplicaSets: what a paused Deployment or a scaling event gets.
    pub async fn scale_and_clean_up(
        &self,
        d: &mut Deployment,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<Option<Duration>, Error> {
        let mut sets = self.sets_and_sync_revision(d, list, false).await?;
        self.scale(d, &mut sets, list).await?;
        if d.spec.paused == Some(true) && super::rollback::rollback_to(d).is_none() {
            self.clean_up(d, &sets.old).await?;
        }
        self.sync_status(d, &sets).await?;
        Ok(None)
    }

    /// Whether `spec.replicas` changed since the active ReplicaSets were sized (their
    /// desired-replicas annotation says another number).
    pub async fn is_scaling_event(
        &self,
        d: &mut Deployment,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<bool, Error> {
        let sets = self.sets_and_sync_revision(d, list, false).await?;
        Ok(sets.all().into_iter().filter(|rs| size(rs) > 0).any(|rs| {
            sets::int_annotation(rs, super::DESIRED_REPLICAS_ANNOTATION)
                .is_some_and(|annotated| annotated != desired(d))
        }))
    }

    /// Splits `list` into the new ReplicaSet and the old ones; brings the new one's
    /// revision (and copied annotations, minReadySeconds) up to date, or creates it when
    /// `create` is set; records the revision on the Deployment.
    pub async fn sets_and_sync_revision(
        &self,
        d: &mut Deployment,
        list: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> Result<Sets, Error> {
        let existing = sets::find_new(d, list).cloned();
        let old: Vec<ReplicaSet> = list
            .iter()
            .filter(|rs| existing.as_ref().is_none_or(|n| n.uid() != rs.uid()))
            .cloned()
            .collect();
        let new_revision = revision::max(&old) + 1;
        let new = match existing {
            Some(rs) => Some(self.sync_new_replica_set(d, rs, new_revision, list).await?),
            None if create => Some(
                self.create_new_replica_set(d, &old, new_revision, list)
                    .await?,
            ),
            None => None,
        };
        Ok(Sets { new, old })
    }

    /// The existing new ReplicaSet with its annotations and minReadySeconds brought up to
    /// date (then returned at once, as kube-controller-manager does: the Deployment's
    /// revision follows on the next sync), or the Deployment's revision and first
    /// Progressing condition updated.
    async fn sync_new_replica_set(
        &self,
        d: &mut Deployment,
        rs: ReplicaSet,
        new_revision: i64,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<ReplicaSet, Error> {
        let mut updated = rs.clone();
        let annotations_changed = copy_annotations(d, &mut updated)
            | revision::advance(updated.annotations_mut(), new_revision);
        let min_ready_changed = updated.spec.min_ready_seconds != d.spec.min_ready_seconds;
        if annotations_changed || min_ready_changed {
            updated.spec.min_ready_seconds = d.spec.min_ready_seconds;
            return self.update_replica_set(&updated, list).await;
        }
        let rs_revision = rs
            .annotations()
            .get(revision::REVISION_ANNOTATION)
            .cloned()
            .unwrap_or_default();
        let mut needs_update = set_deployment_revision(d, &rs_revision);
        if progress_deadline(d).is_some() && progressing(d).is_none() {
            let message = format!("Found new replica set {:?}", rs.name_any());
            conditions::set(
                status_conditions(d),
                condition(PROGRESSING, "True", FOUND_NEW_REPLICA_SET, message),
            );
            needs_update = true;
        }
        if needs_update {
            self.update_status(d).await?;
        }
        Ok(rs)
    }

    /// Creates the ReplicaSet for the Deployment's template, named after the template's
    /// hash; a name taken by another template raises `status.collisionCount`.
    async fn create_new_replica_set(
        &self,
        d: &mut Deployment,
        old: &[ReplicaSet],
        new_revision: i64,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<ReplicaSet, Error> {
        let collision_count = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = template::hash(&d.spec.template, collision_count);
        let mut new_rs = new_replica_set(d, &hash);
        let all: Vec<&ReplicaSet> = old.iter().chain([&new_rs]).collect();
        let replicas =
            sets::new_rs_new_replicas(d, &all, &new_rs).map_err(|source| Error::Fenceposts {
                key: self.key.clone(),
                source,
            })?;
        new_rs.spec.replicas = Some(replicas);
        copy_annotations(d, &mut new_rs);
        revision::advance(new_rs.annotations_mut(), new_revision);
        sets::set_replicas_annotations(&mut new_rs, desired(d), desired(d) + sets::max_surge(d));

        let api = self.controller.api::<ReplicaSet>(self.namespace());
        let (created, already_existed) = match api.create(&post_params(), &new_rs).await {
            Ok(created) => (created, false),
            Err(kube::Error::Api(status))
                if status.code == 409 && status.reason == "AlreadyExists" =>
            {
                let existing = api
                    .get(&new_rs.name_any())
                    .await
                    .map_err(self.api_error("reading a replica set"))?;
                let ours = existing
                    .owner_references()
                    .iter()
                    .any(|r| r.controller == Some(true) && Some(&r.uid) == d.metadata.uid.as_ref());
                let same_template = existing
                    .spec
                    .template
                    .as_ref()
                    .is_some_and(|t| template::equal_ignoring_hash(t, &d.spec.template));
                if !(ours && same_template) {
                    let status = d.status.get_or_insert_with(Default::default);
                    status.collision_count = Some(collision_count.unwrap_or(0) + 1);
                    // The name stays taken: the next sync hashes with the new count.
                    let _ = self.update_status(d).await;
                    return Err(Error::HashCollision {
                        key: self.key.clone(),
                        name: new_rs.name_any(),
                    });
                }
                (existing, true)
            }
            Err(error) => return Err(self.failed_to_create(d, &new_rs, error).await),
        };
        self.ctx.wrote(&created);
        remember(list, &created);
        if !already_existed && replicas > 0 {
            let note = format!(
                "Scaled up replica set {} from 0 to {replicas}",
                created.name_any()
            );
            self.ctx
                .event(EventType::Normal, SCALING_REPLICA_SET, &note);
        }
        let mut needs_update = set_deployment_revision(d, &new_revision.to_string());
        if !already_existed && progress_deadline(d).is_some() {
            let message = format!("Created new replica set {:?}", created.name_any());
            conditions::set(
                status_conditions(d),
                condition(PROGRESSING, "True", NEW_REPLICA_SET_CREATED, message),
            );
            needs_update = true;
        }
        if needs_update {
            self.update_status(d).await?;
        }
        Ok(created)
    }

    /// Reports a refused create as kube-controller-manager does: Progressing false with
    /// ReplicaSetCreateError, and a warning event (not when the namespace is going).
    async fn failed_to_create(
        &self,
        d: &mut Deployment,
        rs: &ReplicaSet,
        error: kube::Error,
    ) -> Error {
        let error = self.api_error("creating the new replica set")(error);
        if error.is_namespace_terminating() {
            return error;
        }
        let Error::Api { source, .. } = &error else {
            return error;
        };
        let message = format!(
            "Failed to create new replica set {:?}: {}",
            rs.name_any(),
            api_message(source)
        );
        if progress_deadline(d).is_some() {
            conditions::set(
                status_conditions(d),
                condition(
                    PROGRESSING,
                    "False",
                    REPLICA_SET_CREATE_ERROR,
                    message.clone(),
                ),
            );
            let _ = self.update_status(d).await;
        }
        self.ctx
            .event(EventType::Warning, REPLICA_SET_CREATE_ERROR, &message);
        error
    }

    /// Scales to `spec.replicas`: the only active (or the newest) ReplicaSet takes all;
    /// with a saturated new ReplicaSet the old ones go to 0; otherwise, while rolling,
    /// the difference is spread over the active ReplicaSets in proportion to their size.
    async fn scale(
        &self,
        d: &Deployment,
        sets: &mut Sets,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<(), Error> {
        if let Some(target) = active_or_latest(sets) {
            if size(&target) != desired(d) {
                let (_, scaled) = self
                    .scale_replica_set(d, &target, desired(d), false, list)
                    .await?;
                replace_in(sets, scaled);
            }
            return Ok(());
        }
        if sets::is_saturated(d, sets.new.as_ref()) {
            for old in sets.old.clone().iter().filter(|rs| size(rs) > 0) {
                let (_, scaled) = self.scale_replica_set(d, old, 0, false, list).await?;
                replace_in(sets, scaled);
            }
            return Ok(());
        }
        if !sets::is_rolling_update(d) {
            return Ok(());
        }
        let mut active: Vec<ReplicaSet> = sets
            .all()
            .into_iter()
            .filter(|rs| size(rs) > 0)
            .cloned()
            .collect();
        let allowed = if desired(d) > 0 {
            desired(d) + sets::max_surge(d)
        } else {
            0
        };
        let to_add = allowed - sets::total_size(&active);
        match to_add.signum() {
            1 => active.sort_by(sets::by_size_newer),
            -1 => active.sort_by(sets::by_size_older),
            _ => {}
        }
        let mut added = 0;
        let mut new_sizes: Vec<i32> = Vec::with_capacity(active.len());
        for rs in &active {
            let proportion = sets::proportion(d, rs, to_add, added);
            new_sizes.push(size(rs) + proportion);
            added += proportion;
        }
        if to_add != 0 && !new_sizes.is_empty() {
            // Leftovers from rounding go to the largest.
            new_sizes[0] = (new_sizes[0] + to_add - added).max(0);
        }
        for (rs, new_size) in active.iter().zip(new_sizes) {
            let (_, scaled) = self.scale_replica_set(d, rs, new_size, true, list).await?;
            replace_in(sets, scaled);
        }
        Ok(())
    }

    /// Sets a ReplicaSet's size (and its replicas annotations); without `force`, only
    /// when the size differs. Returns whether the size changed, and the ReplicaSet.
    pub async fn scale_replica_set(
        &self,
        d: &Deployment,
        rs: &ReplicaSet,
        new_size: i32,
        force: bool,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<(bool, ReplicaSet), Error> {
        let old_size = size(rs);
        if !force && old_size == new_size {
            return Ok((false, rs.clone()));
        }
        let max = desired(d) + sets::max_surge(d);
        let size_changes = old_size != new_size;
        if !size_changes && !sets::replicas_annotations_differ(rs, desired(d), max) {
            return Ok((false, rs.clone()));
        }
        let mut copy = rs.clone();
        copy.spec.replicas = Some(new_size);
        sets::set_replicas_annotations(&mut copy, desired(d), max);
        let updated = self.update_replica_set(&copy, list).await?;
        if size_changes {
            let direction = if old_size < new_size { "up" } else { "down" };
            let note = format!(
                "Scaled {direction} replica set {} from {old_size} to {new_size}",
                updated.name_any()
            );
            self.ctx
                .event(EventType::Normal, SCALING_REPLICA_SET, &note);
        }
        Ok((size_changes, updated))
    }

    /// Deletes the oldest revisions beyond `revisionHistoryLimit`, only those fully
    /// scaled down and settled.
    pub async fn clean_up(&self, d: &Deployment, old: &[ReplicaSet]) -> Result<(), Error> {
        let Some(limit) = d.spec.revision_history_limit.filter(|l| *l != i32::MAX) else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let surplus = usize::try_from(i32::try_from(cleanable.len()).unwrap_or(i32::MAX) - limit)
            .unwrap_or(0);
        cleanable.sort_by(|a, b| sets::by_revision(a, b));
        let api = self.controller.api::<ReplicaSet>(self.namespace());
        for rs in cleanable.into_iter().take(surplus) {
            let settled =
                rs.status.as_ref().and_then(|s| s.observed_generation) >= rs.metadata.generation;
            if sets::actual(rs) != 0 || size(rs) != 0 || !settled {
                continue;
            }
            match api.delete(&rs.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(self.api_error("deleting an old replica set")(error)),
            }
        }
        Ok(())
    }

    /// Writes the status computed from the ReplicaSets, when it changed.
    pub async fn sync_status(&self, d: &mut Deployment, sets: &Sets) -> Result<(), Error> {
        let status = calculate_status(d, sets);
        if same_status(d.status.as_ref(), &status) {
            return Ok(());
        }
        d.status = Some(status);
        self.update_status(d).await
    }
}

/// The ReplicaSet kube-controller-manager would create for the template hashed `hash`.
fn new_replica_set(d: &Deployment, hash: &str) -> ReplicaSet {
    let mut template = d.spec.template.clone();
    let template_meta = template.metadata.get_or_insert_with(Default::default);
    template_meta
        .labels
        .get_or_insert_with(Default::default)
        .insert(template::POD_TEMPLATE_HASH_LABEL.into(), hash.into());
    let labels = template_meta.labels.clone();
    let mut selector = d.spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(template::POD_TEMPLATE_HASH_LABEL.into(), hash.into());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(replica_set_name(&d.name_any(), hash)),
            namespace: d.namespace(),
            owner_references: Some(vec![controller_reference(d)]),
            labels,
            ..ObjectMeta::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: d.spec.min_ready_seconds,
            selector,
            template: Some(template),
        },
        status: None,
    }
}

/// `<deployment>-<hash>`, the Deployment's name shortened to keep within 253 characters.
fn replica_set_name(deployment: &str, hash: &str) -> String {
    let room = 253 - 1 - hash.len();
    let prefix = if deployment.len() > room {
        &deployment[..room]
    } else {
        deployment
    };
    format!("{prefix}-{hash}")
}

/// Copies the Deployment's annotations (but [`NOT_COPIED`]) onto the ReplicaSet;
/// returns whether any changed.
fn copy_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    let annotations = rs.annotations_mut();
    for (key, value) in d.annotations() {
        if is_copied(key) && annotations.get(key) != Some(value) {
            annotations.insert(key.clone(), value.clone());
            changed = true;
        }
    }
    changed
}

/// Sets the Deployment's revision annotation; returns whether it changed.
fn set_deployment_revision(d: &mut Deployment, revision: &str) -> bool {
    let annotations = d.annotations_mut();
    if annotations
        .get(revision::REVISION_ANNOTATION)
        .map(String::as_str)
        == Some(revision)
    {
        return false;
    }
    annotations.insert(revision::REVISION_ANNOTATION.into(), revision.into());
    true
}

/// The only active ReplicaSet, or the newest one when none is active; `None` when
/// several are active.
fn active_or_latest(sets: &Sets) -> Option<ReplicaSet> {
    if sets.new.is_none() && sets.old.is_empty() {
        return None;
    }
    let mut old: Vec<&ReplicaSet> = sets.old.iter().collect();
    old.sort_by(|a, b| sets::by_creation(b, a));
    let active: Vec<&ReplicaSet> = old
        .iter()
        .copied()
        .chain(&sets.new)
        .filter(|rs| size(rs) > 0)
        .collect();
    match active.as_slice() {
        [] => sets
            .new
            .clone()
            .or_else(|| old.first().map(|rs| (*rs).clone())),
        [only] => Some((*only).clone()),
        _ => None,
    }
}

/// Replaces the ReplicaSet with the same UID in `list`, or adds it.
pub(super) fn remember(list: &mut Vec<ReplicaSet>, updated: &ReplicaSet) {
    match list.iter_mut().find(|rs| rs.uid() == updated.uid()) {
        Some(slot) => *slot = updated.clone(),
        None => list.push(updated.clone()),
    }
}

/// Replaces the ReplicaSet with the same UID in `sets`.
pub(super) fn replace_in(sets: &mut Sets, updated: ReplicaSet) {
    if let Some(new) = sets.new.as_mut().filter(|n| n.uid() == updated.uid()) {
        *new = updated;
    } else if let Some(old) = sets.old.iter_mut().find(|rs| rs.uid() == updated.uid()) {
        *old = updated;
    }
}

/// The status the ReplicaSets imply: counts, observedGeneration, collisionCount, and
/// the Available condition (the others carried over).
pub(super) fn calculate_status(d: &Deployment, sets: &Sets) -> DeploymentStatus {
    let all = sets.all();
    let available = sets::total_status(all.iter().copied(), sets::available);
    let total = sets::total_size(all.iter().copied());
    let current = d.status.clone().unwrap_or_default();
    let nonzero = |n: i32| (n != 0).then_some(n);
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: nonzero(sets::total_status(all.iter().copied(), sets::actual)),
        updated_replicas: nonzero(sets.new.as_ref().map_or(0, sets::actual)),
        ready_replicas: nonzero(sets::total_status(all.iter().copied(), sets::ready)),
        available_replicas: nonzero(available),
        unavailable_replicas: nonzero((total - available).max(0)),
        terminating_replicas: sets::terminating(all.iter().copied()),
        collision_count: current.collision_count,
        conditions: current.conditions.clone(),
    };
    let list = status.conditions.get_or_insert_with(Vec::new);
    let minimum = desired(d) - sets::max_unavailable(d);
    let available_condition = if available >= minimum {
        condition(
            AVAILABLE,
            "True",
            MINIMUM_REPLICAS_AVAILABLE,
            "Deployment has minimum availability.".into(),
        )
    } else {
        condition(
            AVAILABLE,
            "False",
            MINIMUM_REPLICAS_UNAVAILABLE,
            "Deployment does not have minimum availability.".into(),
        )
    };
    conditions::set(list, available_condition);
    status
}

/// Whether two statuses say the same, reading an absent list or counter as empty or 0
/// (the API server drops zero counters).
pub(super) fn same_status(current: Option<&DeploymentStatus>, new: &DeploymentStatus) -> bool {
    let canonical = |s: &DeploymentStatus| {
        let zero = |n: Option<i32>| n.filter(|n| *n != 0);
        DeploymentStatus {
            observed_generation: s.observed_generation.filter(|g| *g != 0),
            replicas: zero(s.replicas),
            updated_replicas: zero(s.updated_replicas),
            ready_replicas: zero(s.ready_replicas),
            available_replicas: zero(s.available_replicas),
            unavailable_replicas: zero(s.unavailable_replicas),
            terminating_replicas: s.terminating_replicas,
            collision_count: s.collision_count,
            conditions: s.conditions.clone().filter(|c| !c.is_empty()),
        }
    };
    canonical(&current.cloned().unwrap_or_default()) == canonical(new)
}

/// The API server's words for a refusal, or the client error.
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}
