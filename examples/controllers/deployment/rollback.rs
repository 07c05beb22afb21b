//! The deprecated rollback API: the `deprecated.deployment.rollback.to` annotation
//! names a revision (0: the previous one); the Deployment takes that ReplicaSet's
//! template and annotations, and the annotation goes.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::ResourceExt;
use kube_reconcile::{
    events::EventType,
    workloads::{revision, template},
};

use super::{
    Error, ROLLBACK_DONE, ROLLBACK_REVISION_NOT_FOUND, ROLLBACK_TEMPLATE_UNCHANGED,
    ROLLBACK_TO_ANNOTATION, post_params,
    sync::{Sync, is_copied},
};

/// The revision the annotation asks for; `None` when absent or not a number.
pub fn rollback_to(d: &Deployment) -> Option<i64> {
    let value = d.annotations().get(ROLLBACK_TO_ANNOTATION)?;
    value.parse().ok()
}

impl Sync<'_> {
    /// Rolls back to the asked revision, reporting a revision that is not there or holds
    /// the current template; always removes the annotation.
    pub async fn rollback(
        &self,
        d: &mut Deployment,
        list: &mut Vec<ReplicaSet>,
    ) -> Result<Option<Duration>, Error> {
        let sets = self.sets_and_sync_revision(d, list, true).await?;
        let all: Vec<&ReplicaSet> = sets.all();
        let mut target = rollback_to(d).unwrap_or(0);
        if target == 0 {
            target = revision::last(all.iter().copied());
            if target == 0 {
                self.ctx.event(
                    EventType::Warning,
                    ROLLBACK_REVISION_NOT_FOUND,
                    "Unable to find last revision.",
                );
                return self.clear_rollback(d).await;
            }
        }
        let Some(rs) = all.into_iter().find(|rs| revision::of(*rs) == Some(target)) else {
            let note = "Unable to find the revision to rollback to.";
            self.ctx
                .event(EventType::Warning, ROLLBACK_REVISION_NOT_FOUND, note);
            return self.clear_rollback(d).await;
        };
        let rs_template = rs.spec.template.clone().unwrap_or_default();
        if template::equal_ignoring_hash(&d.spec.template, &rs_template) {
            let note = format!(
                "The rollback revision contains the same template as current deployment {:?}",
                d.name_any()
            );
            self.ctx
                .event(EventType::Warning, ROLLBACK_TEMPLATE_UNCHANGED, &note);
            return self.clear_rollback(d).await;
        }
        take_template_and_annotations(d, rs);
        self.clear_rollback(d).await?;
        let note = format!(
            "Rolled back deployment {:?} to revision {target}",
            d.name_any()
        );
        self.ctx.event(EventType::Normal, ROLLBACK_DONE, &note);
        Ok(None)
    }

    /// Removes the rollback annotation (writing the template a rollback set).
    async fn clear_rollback(&self, d: &mut Deployment) -> Result<Option<Duration>, Error> {
        d.annotations_mut().remove(ROLLBACK_TO_ANNOTATION);
        let updated = self
            .controller
            .api::<Deployment>(self.key.namespace().unwrap_or_default())
            .replace(&d.name_any(), &post_params(), d)
            .await
            .map_err(|source| Error::Api {
                key: self.key.clone(),
                what: "clearing the rollback annotation",
                source,
            })?;
        self.ctx.wrote(&updated);
        *d = updated;
        Ok(None)
    }
}

/// The ReplicaSet's template (without its hash label) and copied annotations become
/// the Deployment's; the Deployment keeps only its own, uncopied annotations.
fn take_template_and_annotations(d: &mut Deployment, rs: &ReplicaSet) {
    let mut rs_template = rs.spec.template.clone().unwrap_or_default();
    if let Some(labels) = rs_template
        .metadata
        .as_mut()
        .and_then(|m| m.labels.as_mut())
    {
        labels.remove(template::POD_TEMPLATE_HASH_LABEL);
    }
    d.spec.template = rs_template;
    let annotations = d.annotations_mut();
    annotations.retain(|key, _| !is_copied(key));
    for (key, value) in rs.annotations() {
        if is_copied(key) {
            annotations.insert(key.clone(), value.clone());
        }
    }
}
