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
//!
//! The helpers read a pod through [`PodFields`], which `Pod` implements: implement it
//! for a [projection](crate::projection) of Pod and they work on a lean pod cache too.

mod trigger;

pub use trigger::TriggerTimes;

use k8s_openapi::{
    api::core::v1::{
        ContainerPort, ObjectReference, Pod, PodCondition, PodIP, Service, ServicePort,
    },
    apimachinery::pkg::util::intstr::IntOrString,
};
use kube::{Resource, ResourceExt};

use crate::{ObjectKey, controller::handler, informer::Change, store::Store};

/// What the helpers of this module read of a pod, besides its metadata.
///
/// Implemented for `Pod`. A controller caching a [projection](crate::projection) of
/// Pod implements it for the projection by returning the same fields, so the helpers
/// (and [`TriggerTimes`]) serve both; each method names the field it stands for.
///
/// ```
/// use k8s_openapi::api::core::v1::{ContainerPort, Pod, PodCondition, PodIP, PodSpec, PodStatus};
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
/// use kube_reconcile::{projection::Projection, service_endpoints::{PodFields, is_ready}};
///
/// #[derive(Projection, Clone, Debug)]
/// #[projection(of = Pod)]
/// struct ServedPod {
///     metadata: ObjectMeta,
///     status: Option<ServedStatus>,
/// }
///
/// #[derive(Projection, Clone, Debug)]
/// #[projection(of = PodStatus, nested)]
/// struct ServedStatus {
///     phase: Option<String>,
///     conditions: Option<Vec<PodCondition>>,
///     pod_ips: Option<Vec<PodIP>>,
/// }
///
/// impl PodFields for ServedPod {
///     fn phase(&self) -> Option<&str> {
///         self.status.as_ref()?.phase.as_deref()
///     }
///     fn conditions(&self) -> &[PodCondition] {
///         self.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default()
///     }
///     fn pod_ip(&self) -> Option<&str> {
///         None // not declared: podIPs[0] is the same address
///     }
///     fn pod_ips(&self) -> &[PodIP] {
///         self.status.as_ref().and_then(|s| s.pod_ips.as_deref()).unwrap_or_default()
///     }
///     fn serving_ports(&self) -> impl Iterator<Item = &ContainerPort> {
///         std::iter::empty() // no named target ports in this cluster
///     }
/// }
///
/// let pod: ServedPod = serde_json::from_value(serde_json::json!({
///     "metadata": {"name": "web-0"},
///     "status": {"conditions": [{"type": "Ready", "status": "True"}]}})).unwrap();
/// assert!(is_ready(&pod));
/// ```
pub trait PodFields: Resource<DynamicType = ()> {
    /// `status.phase`.
    fn phase(&self) -> Option<&str>;
    /// `status.conditions`, empty when absent.
    fn conditions(&self) -> &[PodCondition];
    /// `status.podIP`.
    fn pod_ip(&self) -> Option<&str>;
    /// `status.podIPs`, empty when absent.
    fn pod_ips(&self) -> &[PodIP];
    /// The ports a Service may target by name: those of `spec.containers`, then those
    /// of the restartable (`restartPolicy: Always`, sidecar) `spec.initContainers`.
    fn serving_ports(&self) -> impl Iterator<Item = &ContainerPort>;
}

/// Implements [`PodFields`] for a type whose fields mirror `Pod`'s where the helpers
/// read, under the same names and wrappers: `status: Option<_>` holding `phase` and
/// `pod_ip` (`Option<String>`), `conditions` (`Option<Vec<PodCondition>>`) and
/// `pod_ips` (`Option<Vec<PodIP>>`); `spec: Option<_>` holding `containers: Vec<_>`
/// and `init_containers: Option<Vec<_>>`, whose items hold `ports:
/// Option<Vec<ContainerPort>>` and `restart_policy: Option<String>`. `Pod` is one (this
/// crate implements it so); a [projection](crate::projection) that declares those
/// fields is another. A type shaped otherwise implements the trait by hand.
///
/// ```
/// use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodCondition, PodIP, PodSpec, PodStatus};
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
/// use kube_reconcile::{projection::Projection, service_endpoints::{find_port, has_endpoint}};
///
/// #[derive(Projection, Clone, Debug)]
/// #[projection(of = Pod)]
/// struct ServedPod { metadata: ObjectMeta, spec: Option<Spec>, status: Option<Status> }
/// #[derive(Projection, Clone, Debug)]
/// #[projection(of = PodSpec, nested)]
/// struct Spec { containers: Vec<Ports>, init_containers: Option<Vec<Ports>> }
/// #[derive(Projection, Clone, Debug)]
/// #[projection(of = Container, nested)]
/// struct Ports { ports: Option<Vec<ContainerPort>>, restart_policy: Option<String> }
/// #[derive(Projection, Clone, Debug)]
/// #[projection(of = PodStatus, nested)]
/// struct Status {
///     phase: Option<String>,
///     conditions: Option<Vec<PodCondition>>,
///     pod_ip: Option<String>,
///     pod_ips: Option<Vec<PodIP>>,
/// }
/// kube_reconcile::impl_pod_fields!(ServedPod);
///
/// let pod: ServedPod = serde_json::from_value(serde_json::json!({
///     "metadata": {"name": "web-0"},
///     "spec": {"containers": [{"name": "app", "ports": [{"name": "web", "containerPort": 8080}]}]},
///     "status": {"podIP": "10.0.0.7"}})).unwrap();
/// assert!(has_endpoint(&pod, false));
/// let port = serde_json::from_value(serde_json::json!({"port": 80, "targetPort": "web"})).unwrap();
/// assert_eq!(find_port(&pod, &port), Some(8080));
/// ```
#[macro_export]
macro_rules! impl_pod_fields {
    ($type:ty) => {
        impl $crate::service_endpoints::PodFields for $type {
            fn phase(&self) -> ::core::option::Option<&str> {
                self.status.as_ref()?.phase.as_deref()
            }

            fn conditions(&self) -> &[::k8s_openapi::api::core::v1::PodCondition] {
                let status = self.status.as_ref();
                status
                    .and_then(|s| s.conditions.as_deref())
                    .unwrap_or_default()
            }

            fn pod_ip(&self) -> ::core::option::Option<&str> {
                self.status.as_ref()?.pod_ip.as_deref()
            }

            fn pod_ips(&self) -> &[::k8s_openapi::api::core::v1::PodIP] {
                let status = self.status.as_ref();
                status
                    .and_then(|s| s.pod_ips.as_deref())
                    .unwrap_or_default()
            }

            fn serving_ports(
                &self,
            ) -> impl ::core::iter::Iterator<Item = &::k8s_openapi::api::core::v1::ContainerPort>
            {
                let spec = self.spec.as_ref();
                let containers = spec.into_iter().flat_map(|s| &s.containers);
                let sidecars = spec
                    .into_iter()
                    .flat_map(|s| s.init_containers.iter().flatten())
                    .filter(|c| c.restart_policy.as_deref() == Some("Always"));
                containers
                    .chain(sidecars)
                    .flat_map(|c| c.ports.iter().flatten())
            }
        }
    };
}

crate::impl_pod_fields!(Pod);

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
pub fn selects(service: &Service, pod: &impl Resource) -> bool {
    let selector = service.spec.as_ref().and_then(|s| s.selector.as_ref());
    match selector {
        Some(terms) if !terms.is_empty() => {
            terms.iter().all(|(k, v)| pod.labels().get(k) == Some(v))
        }
        _ => false,
    }
}

/// Indexes `services` by selector and returns the pod mapper over them, for a
/// controller keyed by Service: `builder.watches::<Pod>(scope, pod_mapper(&services))`
/// (or a projection of Pod in place of `Pod`).
pub fn pod_mapper<P: Resource>(
    services: &Store<Service>,
) -> impl Fn(&Change<P>) -> Vec<ObjectKey> + Send + Sync + 'static {
    index_by_selector(services);
    let services = services.clone();
    move |change| services_for_pod(&services, change)
}

/// A pod mapper: the Services whose selector selects the pod before or after the
/// change (old and new labels both count, so a Service the pod leaves resyncs too).
/// Needs [`index_by_selector`] on `services`.
pub fn services_for_pod<P: Resource>(
    services: &Store<Service>,
    change: &Change<P>,
) -> Vec<ObjectKey> {
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
                    .filter(|s| selects(s, &**pod))
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
pub fn pod_reference(pod: &impl Resource) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.namespace(),
        name: Some(pod.name_any()),
        uid: pod.uid(),
        ..ObjectReference::default()
    }
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &impl PodFields) -> bool {
    pod.conditions()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Whether a pod has endpoints at all: not Failed or Succeeded, with an IP, and (unless
/// `include_terminating`) not being deleted.
pub fn has_endpoint(pod: &impl PodFields, include_terminating: bool) -> bool {
    let terminal = matches!(pod.phase(), Some("Failed" | "Succeeded"));
    let has_ip = pod.pod_ip().is_some_and(|ip| !ip.is_empty()) || !pod.pod_ips().is_empty();
    let deleting = pod.meta().deletion_timestamp.is_some();
    !terminal && has_ip && (include_terminating || !deleting)
}

/// The container port a Service port targets on this pod: a number as is; a name looked
/// up by name and protocol in the containers, then in the restartable (sidecar) init
/// containers. `None` when the name is not there: that pod has no endpoint for the port.
pub fn find_port(pod: &impl PodFields, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match port
        .target_port
        .clone()
        .unwrap_or(IntOrString::Int(port.port))
    {
        IntOrString::Int(n) => Some(n),
        IntOrString::String(name) => pod
            .serving_ports()
            .find(|p| {
                p.name.as_deref() == Some(name.as_str())
                    && p.protocol.as_deref().unwrap_or("TCP") == protocol
            })
            .map(|p| p.container_port),
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
