//! What controllers that turn a Service's pods into endpoints share (kube-controller-
//! manager's EndpointSlice and Endpoints controllers, and any operator that publishes
//! backends elsewhere): which pods count, which port a Service port targets on a pod,
//! and the `last-change-trigger-time` bookkeeping.
//!
//! ```
//! use k8s_openapi::api::core::v1::{Pod, ServicePort};
//! use kube_reconcile::service_endpoints::{find_port, has_endpoint, is_ready};
//!
//! let pod: Pod = serde_json::from_value(serde_json::json!({
//!     "spec": {"containers": [{"name": "app", "ports": [{"name": "web", "containerPort": 8080}]}]},
//!     "status": {"podIPs": [{"ip": "10.0.0.7"}], "conditions": [{"type": "Ready", "status": "True"}]},
//! })).unwrap();
//! assert!(has_endpoint(&pod, true) && is_ready(&pod));
//! let port: ServicePort = serde_json::from_value(serde_json::json!(
//!     {"port": 80, "targetPort": "web"})).unwrap();
//! assert_eq!(find_port(&pod, &port), Some(8080));
//! ```

mod trigger;

pub use trigger::TriggerTimes;

use k8s_openapi::{
    api::core::v1::{ObjectReference, Pod, Service, ServicePort},
    apimachinery::pkg::util::intstr::IntOrString,
};
use kube::ResourceExt;

use crate::{ObjectKey, controller::handler, informer::Change, store::Store};

/// The index [`index_by_selector`] adds to a Service store: `namespace/key=value` for
/// each term of the Service's selector.
pub const SELECTOR_TERM_INDEX: &str = "service-selector-term";

/// Indexes Services by their selector terms, so [`services_for_pod`] finds the Services
/// that may select a pod without scanning every Service of the namespace.
pub fn index_by_selector(services: &Store<Service>) {
    services.add_index(SELECTOR_TERM_INDEX, |service: &Service| {
        let namespace = service.namespace().unwrap_or_default();
        let selector = service.spec.as_ref().and_then(|s| s.selector.as_ref());
        selector
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{namespace}/{k}={v}"))
            .collect()
    });
}

/// Whether the Service's (non-empty) selector selects the pod.
pub fn selects(service: &Service, pod: &Pod) -> bool {
    let selector = service.spec.as_ref().and_then(|s| s.selector.as_ref());
    match selector {
        Some(terms) if !terms.is_empty() => {
            terms.iter().all(|(k, v)| pod.labels().get(k) == Some(v))
        }
        _ => false,
    }
}

/// Indexes `services` by selector and returns the pod mapper over them, for a
/// controller keyed by Service: `builder.watches::<Pod>(scope, pod_mapper(&services))`.
pub fn pod_mapper(
    services: &Store<Service>,
) -> impl Fn(&Change<Pod>) -> Vec<ObjectKey> + Send + Sync + 'static {
    index_by_selector(services);
    let services = services.clone();
    move |change| services_for_pod(&services, change)
}

/// A pod mapper: the Services whose selector selects the pod before or after the
/// change (old and new labels both count, so a Service the pod leaves resyncs too).
/// Needs [`index_by_selector`] on `services`.
pub fn services_for_pod(services: &Store<Service>, change: &Change<Pod>) -> Vec<ObjectKey> {
    let mut keys = Vec::new();
    for pod in handler::states(change) {
        let namespace = pod.namespace().unwrap_or_default();
        for (k, v) in pod.labels() {
            let term = format!("{namespace}/{k}={v}");
            let candidates = services
                .by_index(SELECTOR_TERM_INDEX, &term)
                .unwrap_or_default();
            keys.extend(
                candidates
                    .iter()
                    .filter(|s| selects(s, pod))
                    .map(|s| ObjectKey::of(&**s)),
            );
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The annotation on endpoints objects: when the oldest change not yet reflected in
/// them happened.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// The `targetRef` an endpoint carries for its pod: kind, namespace, name and UID.
pub fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.namespace(),
        name: Some(pod.name_any()),
        uid: pod.uid(),
        ..ObjectReference::default()
    }
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Whether a pod has endpoints at all: not Failed or Succeeded, with an IP, and (unless
/// `include_terminating`) not being deleted.
pub fn has_endpoint(pod: &Pod, include_terminating: bool) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    let terminal = matches!(status.phase.as_deref(), Some("Failed" | "Succeeded"));
    let has_ip = status.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty())
        || status.pod_ips.as_ref().is_some_and(|ips| !ips.is_empty());
    let deleting = pod.metadata.deletion_timestamp.is_some();
    !terminal && has_ip && (include_terminating || !deleting)
}

/// The container port a Service port targets on this pod: a number as is; a name looked
/// up by name and protocol in the containers, then in the restartable (sidecar) init
/// containers. `None` when the name is not there: that pod has no endpoint for the port.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match port
        .target_port
        .clone()
        .unwrap_or(IntOrString::Int(port.port))
    {
        IntOrString::Int(n) => Some(n),
        IntOrString::String(name) => {
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn named_ports_resolve_by_name_and_protocol_sidecars_included() {
        let port = |name: &str, protocol: &str| -> ServicePort {
            serde_json::from_value(json!({"port": 1, "targetPort": name, "protocol": protocol}))
                .unwrap()
        };
        let p = pod(json!({"spec": {"containers": [{"name": "a", "ports": [
        {"name": "dns", "containerPort": 5353, "protocol": "TCP"}]}],
        "initContainers": [
            {"name": "once", "ports": [{"name": "web", "containerPort": 1}]},
            {"name": "proxy", "restartPolicy": "Always", "ports": [{"name": "web", "containerPort": 15001}]},
        ]}}));
        assert_eq!(find_port(&p, &port("dns", "UDP")), None);
        assert_eq!(find_port(&p, &port("dns", "TCP")), Some(5353));
        assert_eq!(find_port(&p, &port("web", "TCP")), Some(15001));
    }

    #[test]
    fn terminal_pods_and_pods_without_ip_have_no_endpoint() {
        let with_ip = json!({"podIPs": [{"ip": "10.0.0.1"}]});
        assert!(has_endpoint(&pod(json!({"status": with_ip})), false));
        assert!(!has_endpoint(&pod(json!({"status": {}})), true));
        let done = json!({"podIPs": [{"ip": "10.0.0.1"}], "phase": "Succeeded"});
        assert!(!has_endpoint(&pod(json!({"status": done})), true));
        let deleting = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"},
                              "status": {"podIPs": [{"ip": "10.0.0.1"}]}});
        assert!(has_endpoint(&pod(deleting.clone()), true));
        assert!(!has_endpoint(&pod(deleting), false));
    }
}
