use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::{
    api::core::v1::{
        Container, ContainerPort, ContainerStatus, Pod, PodCondition, PodIP, PodSpec, PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{NameError, Projection, ProjectionOf, check_names};
use crate::store::Writer;

/// The fields the issue names: metadata, `spec.nodeName`, container ports,
/// `status.phase/conditions/podIP(s)/containerStatuses[].restartCount`.
#[derive(Projection, Clone, Debug)]
#[projection(of = Pod)]
struct PodView {
    metadata: ObjectMeta,
    spec: Option<SpecView>,
    status: Option<StatusView>,
}

#[derive(Projection, Clone, Debug)]
#[projection(of = PodSpec, nested)]
struct SpecView {
    node_name: Option<String>,
    containers: Vec<ContainerView>,
}

#[derive(Projection, Clone, Debug)]
#[projection(of = Container, nested)]
struct ContainerView {
    name: String,
    ports: Option<Vec<ContainerPort>>,
}

#[derive(Projection, Clone, Debug)]
#[projection(of = PodStatus, nested)]
struct StatusView {
    phase: Option<String>,
    conditions: Option<Vec<ConditionView>>,
    pod_ip: Option<String>,
    pod_ips: Option<Vec<PodIP>>,
    host_ip: Option<String>,
    start_time: Option<Time>,
    container_statuses: Option<Vec<RestartsView>>,
}

#[derive(Projection, Clone, Debug)]
#[projection(of = PodCondition, nested)]
struct ConditionView {
    type_: String,
    status: String,
}

#[derive(Projection, Clone, Debug)]
#[projection(of = ContainerStatus, nested)]
struct RestartsView {
    /// Another Rust name for the source's `restart_count`.
    #[projection(field = restart_count)]
    restarts: i32,
    container_id: Option<String>,
}

/// Renamed by hand, defaulted and skipped fields.
#[derive(Projection, Clone, Debug)]
#[projection(of = Pod)]
struct Renamed {
    metadata: ObjectMeta,
    #[projection(field = status)]
    state: Option<QosView>,
    #[serde(skip)]
    local: u8,
}

#[derive(Projection, Clone, Debug)]
#[projection(of = PodStatus, nested)]
struct QosView {
    /// Named by hand (here the same as the rule's name).
    #[serde(rename = "qosClass", default)]
    qos_class: Option<String>,
}

/// A map field, peeled like the other wrappers.
#[derive(Projection, Clone, Debug)]
#[projection(of = ObjectMeta, nested)]
struct Labels {
    labels: Option<BTreeMap<String, String>>,
}

fn full_pod() -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0", "namespace": "shop", "uid": "u-1", "resourceVersion": "42",
            "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                 "uid": "rs-1", "controller": true}],
            "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1"}],
        },
        "spec": {
            "nodeName": "node-3",
            "containers": [{
                "name": "app", "image": "app:1",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": "A", "value": "1"}],
                "livenessProbe": {"httpGet": {"path": "/", "port": 8080}},
                "unknownToKubernetes": {"deep": [1, 2, {"x": null}]},
            }],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "k", "operator": "Exists"}],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "podIP": "10.0.0.7",
            "podIPs": [{"ip": "10.0.0.7"}, {"ip": "fd00::7"}],
            "hostIP": "192.168.1.3",
            "startTime": "2026-01-01T00:00:00Z",
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 3,
                                   "image": "app:1", "imageID": "sha256:abc",
                                   "containerID": "containerd://c1"}],
            "qosClass": "Burstable",
        },
    })
}

#[test]
fn decodes_the_declared_fields_of_a_full_pod() {
    let view: PodView = serde_json::from_value(full_pod()).unwrap();
    assert_eq!(view.name_any(), "web-0");
    assert_eq!(view.namespace().as_deref(), Some("shop"));
    assert_eq!(
        view.metadata.owner_references.as_ref().unwrap()[0].name,
        "web"
    );
    let spec = view.spec.unwrap();
    assert_eq!(spec.node_name.as_deref(), Some("node-3"));
    assert_eq!(spec.containers[0].name, "app");
    assert_eq!(
        spec.containers[0].ports.as_ref().unwrap()[0].container_port,
        8080
    );
    let status = view.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let conditions = status.conditions.unwrap();
    assert_eq!(
        (conditions[0].type_.as_str(), conditions[0].status.as_str()),
        ("Ready", "True")
    );
    // The acronym names: podIP, podIPs, hostIP, containerID.
    assert_eq!(status.pod_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(status.pod_ips.unwrap()[1].ip, "fd00::7");
    assert_eq!(status.host_ip.as_deref(), Some("192.168.1.3"));
    assert!(status.start_time.is_some());
    let restarts = &status.container_statuses.unwrap()[0];
    assert_eq!(restarts.restarts, 3);
    assert_eq!(restarts.container_id.as_deref(), Some("containerd://c1"));
}

#[test]
fn reads_what_the_full_type_reads() {
    // The full type's decoding of the same JSON agrees on every declared field.
    let pod: Pod = serde_json::from_value(full_pod()).unwrap();
    let view: PodView = serde_json::from_value(full_pod()).unwrap();
    let (status, view_status) = (pod.status.unwrap(), view.status.unwrap());
    assert_eq!(status.pod_ip, view_status.pod_ip);
    assert_eq!(status.host_ip, view_status.host_ip);
    assert_eq!(status.phase, view_status.phase);
    assert_eq!(
        status.container_statuses.unwrap()[0].restart_count,
        view_status.container_statuses.unwrap()[0].restarts
    );
    assert_eq!(pod.spec.unwrap().node_name, view.spec.unwrap().node_name);
}

#[test]
fn unknown_and_undeclared_fields_are_skipped() {
    let mut pod = full_pod();
    // Undeclared fields of any shape, even ones the full type would refuse.
    pod["spec"]["volumes"] = json!("not a list");
    pod["status"]["qosClass"] = json!({"an": ["object"]});
    pod["somethingNew"] = json!([1, 2, 3]);
    assert!(serde_json::from_value::<Pod>(pod.clone()).is_err());
    let view: PodView = serde_json::from_value(pod).unwrap();
    assert_eq!(view.name_any(), "web-0");
}

#[test]
fn absent_fields_are_empty_and_declared_ones_still_checked() {
    let view: PodView = serde_json::from_value(json!({"metadata": {"name": "bare"}})).unwrap();
    assert!(view.spec.is_none() && view.status.is_none());
    // A spec without containers: the list defaults to empty, as k8s-openapi does.
    let view: PodView = serde_json::from_value(json!({"metadata": {}, "spec": {}})).unwrap();
    assert!(view.spec.unwrap().containers.is_empty());
    // A declared field of the wrong JSON type is an error, naming the field.
    let err = serde_json::from_value::<PodView>(json!({"metadata": {}, "spec": {"nodeName": 3}}))
        .unwrap_err();
    assert!(err.to_string().contains("invalid type"), "{err}");
}

#[test]
fn serde_attributes_pass_through() {
    let view: Renamed = serde_json::from_value(full_pod()).unwrap();
    assert_eq!(view.state.unwrap().qos_class.as_deref(), Some("Burstable"));
    assert_eq!(view.local, 0);
    let labels: Labels = serde_json::from_value(full_pod()["metadata"].clone()).unwrap();
    assert_eq!(labels.labels.unwrap()["app"], "web");
}

#[test]
fn resource_is_the_source_kind() {
    assert_eq!(PodView::kind(&()), "Pod");
    assert_eq!(PodView::api_version(&()), "v1");
    assert_eq!(PodView::plural(&()), "pods");
    assert_eq!(
        PodView::url_path(&(), Some("shop")),
        Pod::url_path(&(), Some("shop"))
    );
    fn projects<P: ProjectionOf<S>, S>() {}
    projects::<PodView, Pod>();
    projects::<Pod, Pod>();
    projects::<SpecView, PodSpec>();
}

#[test]
fn stores_and_indexes_hold_projections() {
    let writer = Writer::<PodView>::new();
    let store = writer.store();
    store.add_index("node", |pod: &PodView| {
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .into_iter()
            .collect()
    });
    let view: PodView = serde_json::from_value(full_pod()).unwrap();
    writer.apply(Arc::new(view));
    assert_eq!(store.by_index("node", "node-3").unwrap().len(), 1);
    assert_eq!(
        store.get_named(Some("shop"), "web-0").unwrap().name_any(),
        "web-0"
    );
}

/// A custom resource as `#[derive(Crd)]` makes it.
#[derive(crate::crd::Crd, Clone, Debug, serde::Serialize, serde::Deserialize)]
#[crd(group = "example.com", version = "v1", kind = "Widget", namespaced)]
#[serde(rename_all = "camelCase")]
struct WidgetSpec {
    replicas: i32,
    service_ip: String,
    payload: Vec<String>,
}

#[derive(Projection, Clone, Debug)]
#[projection(of = Widget)]
struct WidgetView {
    metadata: ObjectMeta,
    spec: WidgetSpecView,
}

/// serde's camelCase, as the spec is written: `serviceIp`, not `serviceIP`.
#[derive(Projection, Clone, Debug)]
#[projection(of = WidgetSpec, nested, rename_all = "camelCase")]
struct WidgetSpecView {
    replicas: i32,
    service_ip: String,
}

#[test]
fn projects_a_derived_custom_resource() {
    let view: WidgetView = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "ns"},
        "spec": {"replicas": 3, "serviceIp": "10.1.2.3", "payload": vec!["big"; 100]},
    }))
    .unwrap();
    assert_eq!(
        (view.spec.replicas, view.spec.service_ip.as_str()),
        (3, "10.1.2.3")
    );
    assert_eq!(
        WidgetView::url_path(&(), Some("ns")),
        Widget::url_path(&(), Some("ns"))
    );
    assert_eq!(WidgetView::api_version(&()), "example.com/v1");
}

#[test]
fn every_name_read_is_in_the_source_schema() {
    check_names::<PodView>().unwrap();
    check_names::<SpecView>().unwrap();
    check_names::<ContainerView>().unwrap();
    check_names::<StatusView>().unwrap();
    check_names::<ConditionView>().unwrap();
    check_names::<RestartsView>().unwrap();
    check_names::<Renamed>().unwrap();
    check_names::<QosView>().unwrap();
    check_names::<Labels>().unwrap();
    check_names::<WidgetSpecView>().unwrap();
    assert_eq!(StatusView::FIELDS[2..4], ["podIP", "podIPs"]);
    assert_eq!(RestartsView::FIELDS, ["restartCount", "containerID"]);
    assert_eq!(Renamed::FIELDS, ["metadata", "status"]);
}

/// Names the rule cannot guess, spelt wrong on purpose.
#[derive(Projection)]
#[projection(of = PodStatus, nested)]
#[allow(dead_code)] // only its names are checked
struct Misnamed {
    #[serde(rename(deserialize = "podIp"))]
    pod_ip: Option<String>,
    #[serde(rename = "hostIPs")]
    host_ips: Option<Vec<k8s_openapi::api::core::v1::HostIP>>,
}

#[derive(Projection)]
#[projection(of = WidgetSpec, nested)]
#[allow(dead_code)] // only its names are checked
struct WidgetAcronyms {
    service_ip: String,
}

#[test]
fn wrong_names_are_found() {
    let error = check_names::<Misnamed>().unwrap_err();
    assert_eq!(
        error,
        NameError::Unknown {
            projection: std::any::type_name::<Misnamed>(),
            source_type: std::any::type_name::<PodStatus>(),
            names: vec!["podIp"],
        }
    );
    assert!(error.to_string().contains("#[serde(rename"), "{error}");
    // Kubernetes' acronyms are wrong for a spec written with serde's camelCase.
    assert!(matches!(
        check_names::<WidgetAcronyms>(),
        Err(NameError::Unknown { names, .. }) if names == ["serviceIP"]
    ));
}

/// A nested type's own metadata, itself projected.
#[derive(Projection, Clone, Debug)]
#[projection(of = k8s_openapi::api::core::v1::PodTemplateSpec, nested)]
struct TemplateView {
    metadata: Option<Labels>,
}

#[test]
fn nested_metadata_is_a_field_like_any_other() {
    let view: TemplateView =
        serde_json::from_value(json!({"metadata": {"labels": {"a": "b"}}, "spec": {}})).unwrap();
    assert_eq!(view.metadata.unwrap().labels.unwrap()["a"], "b");
    let view: TemplateView = serde_json::from_value(json!({})).unwrap();
    assert!(view.metadata.is_none());
    check_names::<TemplateView>().unwrap();
}
