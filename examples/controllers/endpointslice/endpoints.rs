//! Pure functions from a Service and its pods to endpoints, as kube-controller-manager
//! computes them: which pods count, their addresses per family, conditions, ports
//! resolved per pod, and the labels a slice carries.

use std::collections::BTreeMap;

use super::super::pod_view::PodView;
use k8s_openapi::api::{
    core::v1::Service,
    discovery::v1::{Endpoint, EndpointConditions, EndpointPort},
};
use kube::ResourceExt;
use kube_reconcile::service_endpoints::{find_port, is_ready, pod_reference};

/// The label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming the controller that manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The label on slices of a Service without a cluster IP.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// The zone label of a Node.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The address types (`IPv4`, `IPv6`) the Service's families ask for.
pub fn address_types(service: &Service) -> Vec<&'static str> {
    let spec = service.spec.clone().unwrap_or_default();
    let mut types = Vec::new();
    for family in spec.ip_families.iter().flatten() {
        match family.as_str() {
            "IPv4" if !types.contains(&"IPv4") => types.push("IPv4"),
            "IPv6" if !types.contains(&"IPv6") => types.push("IPv6"),
            _ => {}
        }
    }
    if !types.is_empty() {
        return types;
    }
    match spec.cluster_ip.as_deref() {
        Some(ip) if !ip.is_empty() && ip != "None" => {
            vec![if ip.contains(':') { "IPv6" } else { "IPv4" }]
        }
        _ => vec!["IPv4", "IPv6"],
    }
}

/// The pod's addresses of one type, each in its canonical spelling; addresses that do
/// not parse are left out.
pub fn addresses(pod: &PodView, address_type: &str) -> Vec<String> {
    let pod_ips = pod.status.as_ref().and_then(|s| s.pod_ips.as_ref());
    let mut out = Vec::new();
    for ip in pod_ips.into_iter().flatten() {
        let Ok(parsed) = ip.ip.parse::<std::net::IpAddr>() else {
            continue;
        };
        let is_v6 = matches!(parsed, std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none());
        if is_v6 == (address_type == "IPv6") {
            out.push(match parsed {
                std::net::IpAddr::V6(v6) => v6
                    .to_ipv4_mapped()
                    .map_or(v6.to_string(), |v4| v4.to_string()),
                v4 => v4.to_string(),
            });
        }
    }
    out
}

/// The pod's endpoint for one address type.
pub fn pod_endpoint(
    pod: &PodView,
    zone: Option<String>,
    service: &Service,
    address_type: &str,
) -> Endpoint {
    let serving = is_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let publish = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        == Some(true);
    let ready = publish || (serving && !terminating);
    let spec = pod.spec.as_ref();
    let node = spec
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty());
    let hostname = spec.and_then(|s| s.hostname.clone()).filter(|h| {
        !h.is_empty()
            && spec.and_then(|s| s.subdomain.as_deref()) == service.metadata.name.as_deref()
            && pod.metadata.namespace == service.metadata.namespace
    });
    Endpoint {
        addresses: addresses(pod, address_type),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        target_ref: Some(pod_reference(pod)),
        node_name: node,
        zone: zone.filter(|z| !z.is_empty()),
        hostname,
        ..Default::default()
    }
}

/// The Service's ports resolved for one pod: a named target port is looked up in the
/// pod's containers (and restartable init containers) by name and protocol; a port
/// that does not resolve is left out for this pod.
pub fn endpoint_ports(service: &Service, pod: &PodView) -> Vec<EndpointPort> {
    let Some(spec) = &service.spec else {
        return Vec::new();
    };
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ports.is_empty() && spec.cluster_ip.as_deref() == Some("None") {
        return Vec::new();
    }
    ports
        .iter()
        .filter_map(|port| {
            Some(EndpointPort {
                name: Some(port.name.clone().unwrap_or_default()),
                port: Some(find_port(pod, port)?),
                protocol: Some(port.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: port.app_protocol.clone(),
            })
        })
        .collect()
}

/// A port set as a key: the ports sorted, so the same set is one key however ordered.
pub fn port_key(ports: &[EndpointPort]) -> String {
    let mut sorted: Vec<String> = ports
        .iter()
        .map(|p| {
            format!(
                "{}/{}/{}/{}",
                p.name.as_deref().unwrap_or_default(),
                p.port.unwrap_or_default(),
                p.protocol.as_deref().unwrap_or_default(),
                p.app_protocol.as_deref().unwrap_or_default()
            )
        })
        .collect();
    sorted.sort();
    sorted.join(",")
}

/// What tells two endpoints apart: addresses (sorted), hostname and the pod named.
pub fn endpoint_key(endpoint: &Endpoint) -> String {
    let mut addresses = endpoint.addresses.clone();
    addresses.sort();
    let target = endpoint.target_ref.as_ref();
    format!(
        "{}|{}|{}/{}",
        addresses.join(","),
        endpoint.hostname.as_deref().unwrap_or(""),
        target.and_then(|t| t.namespace.as_deref()).unwrap_or(""),
        target.and_then(|t| t.name.as_deref()).unwrap_or(""),
    )
}

/// Whether two endpoints with the same key differ in what a consumer reads.
pub fn endpoint_changed(a: &Endpoint, b: &Endpoint) -> bool {
    let same_target = match (&a.target_ref, &b.target_ref) {
        (Some(a), Some(b)) => {
            // The resourceVersion of a reference says nothing a consumer reads.
            (
                &a.api_version,
                &a.kind,
                &a.namespace,
                &a.name,
                &a.uid,
                &a.field_path,
            ) == (
                &b.api_version,
                &b.kind,
                &b.namespace,
                &b.name,
                &b.uid,
                &b.field_path,
            )
        }
        (a, b) => a.is_none() && b.is_none(),
    };
    let conditions = |e: &Endpoint| {
        let c = e.conditions.as_ref();
        (
            c.and_then(|c| c.ready),
            c.and_then(|c| c.serving),
            c.and_then(|c| c.terminating),
        )
    };
    a.node_name != b.node_name || a.zone != b.zone || conditions(a) != conditions(b) || !same_target
}

/// The labels a slice of `service` carries: the Service's own (but the reserved ones),
/// the service-name and managed-by labels, and the headless label when it has no
/// cluster IP. Also says whether the copied Service labels differ from the slice's.
pub fn slice_labels(
    current: &BTreeMap<String, String>,
    service: &Service,
    managed_by: &str,
) -> (BTreeMap<String, String>, bool) {
    let reserved =
        |k: &str| k == SERVICE_NAME_LABEL || k == MANAGED_BY_LABEL || k == HEADLESS_LABEL;
    let existing: BTreeMap<&String, &String> =
        current.iter().filter(|(k, _)| !reserved(k)).collect();
    let mut labels: BTreeMap<String, String> = service
        .labels()
        .iter()
        .filter(|(k, _)| !reserved(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let changed = existing != labels.iter().collect::<BTreeMap<_, _>>();
    let cluster_ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
    if matches!(cluster_ip, None | Some("") | Some("None")) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(SERVICE_NAME_LABEL.into(), service.name_any());
    labels.insert(MANAGED_BY_LABEL.into(), managed_by.into());
    (labels, changed)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(value: serde_json::Value) -> PodView {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn named_ports_resolve_per_pod_and_by_protocol() {
        let service: Service = serde_json::from_value(json!({"spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": "web"},
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"},
        ]}}))
        .unwrap();
        let with_web = pod(json!({"spec": {"containers": [{"name": "a", "ports": [
            {"name": "web", "containerPort": 8080},
            {"name": "dns", "containerPort": 5353, "protocol": "TCP"},
        ]}]}}));
        let ports = endpoint_ports(&service, &with_web);
        assert_eq!(
            ports.len(),
            1,
            "dns is UDP on the service, TCP on the pod: {ports:?}"
        );
        assert_eq!(ports[0].port, Some(8080));
        let sidecar = pod(
            json!({"spec": {"containers": [{"name": "a"}], "initContainers": [
                {"name": "proxy", "restartPolicy": "Always", "ports": [{"name": "web", "containerPort": 15001}]},
            ]}}),
        );
        assert_eq!(endpoint_ports(&service, &sidecar)[0].port, Some(15001));
    }

    #[test]
    fn conditions_follow_readiness_termination_and_publishing() {
        let service: Service =
            serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {}})).unwrap();
        let terminating = pod(json!({
            "metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"podIPs": [{"ip": "10.0.0.1"}],
                       "conditions": [{"type": "Ready", "status": "True"}]},
        }));
        let endpoint = pod_endpoint(&terminating, None, &service, "IPv4");
        let c = endpoint.conditions.unwrap();
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(false), Some(true), Some(true))
        );
        assert_eq!(endpoint.addresses, ["10.0.0.1"]);
        assert!(addresses(&terminating, "IPv6").is_empty());
        let bad_ip = pod(json!({"status": {"podIPs": [{"ip": "not-an-ip"}]}}));
        assert!(addresses(&bad_ip, "IPv4").is_empty());
    }
}
