//! `endpoints.kubernetes.io/last-change-trigger-time`: when the oldest change not yet
//! reflected in a Service's endpoints happened, as kube-controller-manager tracks it.

use std::{collections::HashMap, sync::Mutex};

use super::PodFields;
use crate::ObjectKey;
use k8s_openapi::{
    api::core::v1::Service, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp,
};
use kube::ResourceExt;

/// What the last sync of one Service saw.
#[derive(Default)]
struct Seen {
    service: Option<Timestamp>,
    pods: HashMap<String, Timestamp>,
}

/// Per-Service change times seen by the last sync, for the
/// [`LAST_CHANGE_TRIGGER_TIME`](super::LAST_CHANGE_TRIGGER_TIME) annotation.
///
/// A pod's change time is its Ready condition's last transition; the Service's is its
/// creation. The first sync of a Service reports its creation; a later sync reports the
/// earliest change seen since the previous sync, or `None` (then the annotation is
/// removed, as kube-controller-manager does). Call [`forget`](Self::forget) when the
/// Service is gone.
///
/// ```
/// use k8s_openapi::api::core::v1::{Pod, Service};
/// use kube_reconcile::{ObjectKey, service_endpoints::TriggerTimes};
///
/// let service: Service = serde_json::from_value(serde_json::json!({
///     "metadata": {"name": "web", "creationTimestamp": "2026-11-30T08:00:00Z"}})).unwrap();
/// let ready_at = |t: &str| -> Pod { serde_json::from_value(serde_json::json!({
///     "metadata": {"name": "p"},
///     "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": t}]}})).unwrap() };
/// let (times, key) = (TriggerTimes::default(), ObjectKey::new(Some("default"), "web"));
/// let first = times.compute(&key, &service, [&ready_at("2026-11-30T08:01:00Z")]);
/// assert_eq!(first.unwrap().0.to_string(), "2026-11-30T08:00:00Z"); // first sync: creation
/// assert!(times.compute(&key, &service, [&ready_at("2026-11-30T08:01:00Z")]).is_none());
/// let flipped = times.compute(&key, &service, [&ready_at("2026-11-30T08:02:00Z")]);
/// assert_eq!(flipped.unwrap().0.to_string(), "2026-11-30T08:02:00Z");
/// ```
#[derive(Default)]
pub struct TriggerTimes {
    seen: Mutex<HashMap<ObjectKey, Seen>>,
}

impl TriggerTimes {
    /// The trigger time for this sync of `service` over its selected `pods`, and
    /// remembers what it saw.
    pub fn compute<'a, P: PodFields + 'a>(
        &self,
        key: &ObjectKey,
        service: &Service,
        pods: impl IntoIterator<Item = &'a P>,
    ) -> Option<Time> {
        let mut all = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let known = all.contains_key(key);
        let previous = all.remove(key).unwrap_or_default();
        let mut earliest: Option<Timestamp> = None;
        let mut now = Seen::default();
        for pod in pods {
            let Some(changed) = ready_transition(pod) else {
                continue;
            };
            let name = pod.name_any();
            if previous
                .pods
                .get(&name)
                .is_none_or(|before| changed > *before)
            {
                earliest = Some(earliest.map_or(changed, |e| e.min(changed)));
            }
            now.pods.insert(name, changed);
        }
        let created = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(created) = created
            && previous.service.is_none_or(|before| created > before)
        {
            earliest = Some(earliest.map_or(created, |e| e.min(created)));
        }
        now.service = created;
        all.insert(key.clone(), now);
        if !known {
            return created.map(Time);
        }
        earliest.map(Time)
    }

    /// Forgets a Service that is gone.
    pub fn forget(&self, key: &ObjectKey) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

fn ready_transition(pod: &impl PodFields) -> Option<Timestamp> {
    let ready = pod.conditions().iter().find(|c| c.type_ == "Ready")?;
    Some(ready.last_transition_time.as_ref()?.0)
}
