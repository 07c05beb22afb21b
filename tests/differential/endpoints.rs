//! The Service endpoints part of a snapshot: EndpointSlices compared as what a consumer
//! reads from them, not as how they are packed.
//!
//! Per Service: for each (address type, port set), the endpoints with their addresses,
//! conditions, node, zone, hostname and pod; how many slices carry them; and the
//! slices' labels with the managed-by value masked (each controller writes its own).
//! Which slice an endpoint lands in is not compared: the reference pops endpoints from
//! a Go map, so its choice is random; the number of slices is, since it follows from
//! the packing rules alone. The trigger-time annotation is compared by presence.
//!
//! Endpoints objects are compared whole but for the managed-by value (masked) and the
//! order of subsets and of ports within one (the reference sorts both by a hash of Go's
//! memory dump): subsets and ports are sorted before comparing.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    core::v1::{Endpoints, Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{Api, ResourceExt, api::ListParams};
use serde_json::{Value, json};

use super::Env;

const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

impl Env {
    /// The namespace's EndpointSlices, normalised per Service (empty when none).
    pub async fn endpoint_slices(&self) -> Value {
        let slices = Api::<EndpointSlice>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        let mut by_service: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        for slice in &slices {
            let service = slice
                .labels()
                .get("kubernetes.io/service-name")
                .cloned()
                .unwrap_or_default();
            let mut ports: Vec<Value> = slice
                .ports
                .iter()
                .flatten()
                .map(|p| json!({"name": p.name, "port": p.port, "protocol": p.protocol}))
                .collect();
            ports.sort_by_key(|p| p.to_string());
            let group_key = format!("{} {}", slice.address_type, Value::from(ports.clone()));
            let group = by_service
                .entry(service)
                .or_default()
                .entry(group_key)
                .or_insert_with(
                    || json!({"slices": 0, "endpoints": [], "labels": [], "triggerTime": []}),
                );
            group["slices"] = json!(group["slices"].as_i64().unwrap_or(0) + 1);
            let mut labels = slice.labels().clone();
            if labels.contains_key(MANAGED_BY) {
                labels.insert(MANAGED_BY.into(), "<managed-by>".into());
            }
            push_sorted(&mut group["labels"], json!(labels));
            push_sorted(
                &mut group["triggerTime"],
                json!(slice.annotations().contains_key(TRIGGER_TIME)),
            );
            for endpoint in slice.endpoints.iter().flatten() {
                let conditions = endpoint.conditions.clone().unwrap_or_default();
                push_sorted(
                    &mut group["endpoints"],
                    json!({
                        "addresses": endpoint.addresses,
                        "ready": conditions.ready,
                        "serving": conditions.serving,
                        "terminating": conditions.terminating,
                        "node": endpoint.node_name,
                        "zone": endpoint.zone,
                        "hostname": endpoint.hostname,
                        "pod": endpoint.target_ref.as_ref().and_then(|t| t.name.clone()),
                    }),
                );
            }
        }
        json!(by_service)
    }
}

impl Env {
    /// Whether every Service's EndpointSlices already say what its pods say: each
    /// selected pod with an IP that has not finished is an endpoint, ready exactly when
    /// the Service publishes not-ready addresses or the pod is Ready and not being
    /// deleted, and no other address is there; and each slice carries the Service's
    /// labels. A side is not quiet before this holds: a controller may first sync a
    /// Service from a cache that has not seen a pod's last change, and catch up only
    /// after a retry (kube-controller-manager's slice tracker retries a stale sync after
    /// a second or two), which a fixed quiet period can miss.
    pub async fn endpoint_slices_match_pods(&self) -> bool {
        let services = Api::<Service>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        if services.is_empty() {
            return true;
        }
        let pods = Api::<Pod>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        let slices = Api::<EndpointSlice>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        services.iter().all(|service| {
            let spec = service.spec.clone().unwrap_or_default();
            let Some(selector) = spec.selector.filter(|s| !s.is_empty()) else {
                return true;
            };
            let publish = spec.publish_not_ready_addresses.unwrap_or(false);
            let expected: BTreeMap<String, bool> = pods
                .iter()
                .filter(|pod| selector.iter().all(|(k, v)| pod.labels().get(k) == Some(v)))
                .filter_map(|pod| {
                    let status = pod.status.as_ref()?;
                    let ip = status.pod_ip.clone()?;
                    let phase = status.phase.as_deref().unwrap_or_default();
                    if phase == "Succeeded" || phase == "Failed" {
                        return None;
                    }
                    let pod_ready = status
                        .conditions
                        .iter()
                        .flatten()
                        .any(|c| c.type_ == "Ready" && c.status == "True");
                    let deleting = pod.metadata.deletion_timestamp.is_some();
                    Some((ip, publish || (pod_ready && !deleting)))
                })
                .collect();
            let own: Vec<&EndpointSlice> = slices
                .iter()
                .filter(|slice| {
                    slice.labels().get("kubernetes.io/service-name") == Some(&service.name_any())
                })
                .collect();
            let actual: BTreeMap<String, bool> = own
                .iter()
                .flat_map(|slice| slice.endpoints.iter().flatten())
                .flat_map(|endpoint| {
                    let ready = endpoint
                        .conditions
                        .as_ref()
                        .and_then(|c| c.ready)
                        .unwrap_or(false);
                    endpoint.addresses.iter().map(move |ip| (ip.clone(), ready))
                })
                .collect();
            let labelled = own.iter().all(|slice| {
                service
                    .labels()
                    .iter()
                    .all(|(k, v)| slice.labels().get(k) == Some(v))
            });
            actual == expected && labelled
        })
    }
}

impl Env {
    /// The namespace's Endpoints objects, normalised, by name.
    pub async fn endpoints(&self) -> Value {
        let all = Api::<Endpoints>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        let mut by_name = BTreeMap::new();
        for endpoints in all {
            let mut labels = endpoints.labels().clone();
            if labels.contains_key("endpoints.kubernetes.io/managed-by") {
                labels.insert(
                    "endpoints.kubernetes.io/managed-by".into(),
                    "<managed-by>".into(),
                );
            }
            let mut subsets: Vec<Value> = endpoints
                .subsets
                .iter()
                .flatten()
                .map(|s| {
                    let address = |a: &k8s_openapi::api::core::v1::EndpointAddress| {
                        json!({"ip": a.ip, "hostname": a.hostname, "node": a.node_name,
                               "pod": a.target_ref.as_ref().and_then(|t| t.name.clone())})
                    };
                    let mut ports: Vec<Value> = s.ports.iter().flatten().map(|p| json!(p)).collect();
                    ports.sort_by_key(|p| p.to_string());
                    json!({
                        "addresses": s.addresses.iter().flatten().map(address).collect::<Vec<_>>(),
                        "notReadyAddresses": s.not_ready_addresses.iter().flatten().map(address).collect::<Vec<_>>(),
                        "ports": ports,
                    })
                })
                .collect();
            subsets.sort_by_key(|s| s.to_string());
            let annotations = endpoints.annotations();
            by_name.insert(
                endpoints.name_any(),
                json!({
                    "labels": labels,
                    "overCapacity": annotations.get("endpoints.kubernetes.io/over-capacity"),
                    "triggerTime": annotations.contains_key(TRIGGER_TIME),
                    "subsets": subsets,
                }),
            );
        }
        json!(by_name)
    }
}

/// Adds `value` to the array, keeping it sorted and without duplicates (labels and
/// trigger-time presence are per slice; one entry per distinct value).
fn push_sorted(list: &mut Value, value: Value) {
    let items = list.as_array_mut().expect("an array");
    if value.is_object() && value.get("addresses").is_some() || !items.contains(&value) {
        items.push(value);
    }
    items.sort_by_key(|v| v.to_string());
}
