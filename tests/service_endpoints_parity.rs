//! Service endpoints parity: every scenario runs against kube-controller-manager's
//! endpointslice-controller and endpoints-controller and against kube-reconcile's two
//! example controllers, and the EndpointSlices and Endpoints a consumer reads must be
//! equal (see tests/differential/endpoints.rs for what is compared). Pods live on the hand-driven Node, which gives them IPs and
//! readiness when a step says so.

#[path = "../examples/controllers/mod.rs"]
mod controllers;
mod differential;
mod support;

use differential::{Env, OTHER_MANUAL_NODE, merge, run_service_endpoints};
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube_reconcile::testing::{MANUAL_NODE_NAME, PodState};
use serde_json::{Value, json};

fn service(name: &str, extra: Value) -> Value {
    let mut manifest = json!({
        "metadata": {"name": name, "labels": {"team": "web"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    });
    merge(&mut manifest, extra);
    manifest
}

fn manual_pod(name: &str, extra: Value) -> Value {
    let mut manifest = json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {
            "nodeName": MANUAL_NODE_NAME,
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                            "ports": [{"name": "web", "containerPort": 8080}]}],
            "terminationGracePeriodSeconds": 0,
        },
    });
    merge(&mut manifest, extra);
    manifest
}

impl Env {
    async fn create_service(&self, manifest: Value) {
        let service: Service = serde_json::from_value(manifest).unwrap();
        kube::Api::<Service>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &service)
            .await
            .unwrap();
    }

    /// Creates a pod on the manual Node and gives it an IP, ready or not.
    async fn running_pod(&self, name: &str, ready: bool, extra: Value) {
        self.create_pod(manual_pod(name, extra)).await;
        let state = if ready {
            PodState::ready(self.ip())
        } else {
            PodState::not_ready(self.ip())
        };
        self.drive(name, state).await;
    }
}

#[tokio::test]
async fn ready_and_not_ready_pods_and_pods_without_ip() {
    run_service_endpoints("basic", |env: Env| async move {
        env.running_pod("ready", true, json!({})).await;
        env.running_pod("not-ready", false, json!({})).await;
        env.create_pod(manual_pod("no-ip", json!({}))).await;
        env.let_caches_catch_up().await;
        env.create_service(service("web", json!({}))).await;
        env.wait_quiet().await;
        env.drive("not-ready", PodState::ready("10.250.9.9")).await;
        env
    })
    .await;
}

#[tokio::test]
async fn a_terminating_pod_is_serving_but_not_ready() {
    run_service_endpoints("terminating", |env: Env| async move {
        let slow = json!({"spec": {"terminationGracePeriodSeconds": 30}});
        env.running_pod("stopping", true, slow).await;
        env.running_pod("staying", true, json!({})).await;
        env.create_service(service("web", json!({}))).await;
        env.wait_quiet().await;
        env.pods()
            .delete("stopping", &DeleteParams::default())
            .await
            .unwrap();
        env
    })
    .await;
}

#[tokio::test]
async fn labels_and_the_headless_label_propagate() {
    run_service_endpoints("labels", |env: Env| async move {
        env.running_pod(
            "a",
            true,
            json!({"spec": {"hostname": "a", "subdomain": "web"}}),
        )
        .await;
        env.create_service(service("web", json!({"spec": {"clusterIP": "None"}})))
            .await;
        env.wait_quiet().await;
        let relabel = json!({"metadata": {"labels": {"team": "api", "tier": "front"}}});
        kube::Api::<Service>::namespaced(env.client.clone(), &env.ns)
            .patch("web", &PatchParams::default(), &Patch::Merge(&relabel))
            .await
            .unwrap();
        env
    })
    .await;
}

#[tokio::test]
async fn named_ports_resolve_per_pod() {
    run_service_endpoints("named-ports", |env: Env| async move {
        let other_port = json!({"spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
            "ports": [{"name": "web", "containerPort": 9090}]}]}});
        let no_port = json!({"spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}});
        env.running_pod("on-8080", true, json!({})).await;
        env.running_pod("on-9090", true, other_port).await;
        env.running_pod("without", true, no_port).await;
        let named = json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": "web"}]}});
        env.create_service(service("web", named)).await;
        env
    })
    .await;
}

#[tokio::test]
async fn publish_not_ready_addresses_makes_every_pod_ready() {
    run_service_endpoints("publish", |env: Env| async move {
        env.running_pod("ready", true, json!({})).await;
        env.running_pod("not-ready", false, json!({})).await;
        env.create_service(service(
            "web",
            json!({"spec": {"publishNotReadyAddresses": true}}),
        ))
        .await;
        env
    })
    .await;
}

#[tokio::test]
async fn many_pods_split_across_slices_and_repack_when_scaled_down() {
    run_service_endpoints("many", |env: Env| async move {
        for i in 0..250 {
            env.running_pod(&format!("pod-{i:03}"), true, json!({}))
                .await;
        }
        env.create_service(service("web", json!({}))).await;
        env.wait_quiet().await;
        for i in (0..250).step_by(2) {
            let now = DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            };
            env.pods()
                .delete(&format!("pod-{i:03}"), &now)
                .await
                .unwrap();
        }
        env
    })
    .await;
}

#[tokio::test]
async fn a_changed_selector_and_a_deleted_service() {
    run_service_endpoints("selector", |env: Env| async move {
        env.running_pod("web", true, json!({})).await;
        env.running_pod("api", true, json!({"metadata": {"labels": {"app": "api"}}}))
            .await;
        env.create_service(service("web", json!({}))).await;
        env.create_service(service("gone", json!({}))).await;
        env.wait_quiet().await;
        let services = kube::Api::<Service>::namespaced(env.client.clone(), &env.ns);
        let select_api = json!({"spec": {"selector": {"app": "api"}}});
        services
            .patch("web", &PatchParams::default(), &Patch::Merge(&select_api))
            .await
            .unwrap();
        services
            .delete("gone", &DeleteParams::default())
            .await
            .unwrap();
        env
    })
    .await;
}

#[tokio::test]
async fn more_than_a_thousand_addresses_are_truncated_in_endpoints() {
    let snapshot = run_service_endpoints("over-capacity", |env: Env| async move {
        use futures::{StreamExt, stream};
        let pods = 1005;
        stream::iter(0..pods)
            .for_each_concurrent(8, |i| {
                let env = &env;
                async move {
                    let name = format!("pod-{i:04}");
                    env.create_pod(manual_pod(&name, json!({}))).await;
                    // Addresses follow the pod's index, so both sides pair them alike.
                    let ip = format!("10.251.{}.{}", i / 250, i % 250 + 1);
                    env.drive(&name, PodState::ready(ip)).await;
                }
            })
            .await;
        env.create_service(service("web", json!({}))).await;
        env
    })
    .await;
    let endpoints = &snapshot["endpoints"]["web"];
    assert_eq!(endpoints["overCapacity"], "truncated", "{endpoints}");
    let kept: usize = endpoints["subsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["addresses"].as_array().unwrap().len())
        .sum();
    assert_eq!(kept, 1000);
}

#[tokio::test]
async fn the_zone_comes_from_the_node() {
    let snapshot = run_service_endpoints("zone", |env: Env| async move {
        env.create_other_manual_node().await;
        let zone = json!({"metadata": {"labels": {"topology.kubernetes.io/zone": "zone-b"}}});
        kube::Api::<k8s_openapi::api::core::v1::Node>::all(env.client.clone())
            .patch(
                OTHER_MANUAL_NODE,
                &PatchParams::default(),
                &Patch::Merge(&zone),
            )
            .await
            .unwrap();
        let elsewhere = json!({"spec": {"nodeName": OTHER_MANUAL_NODE}});
        env.running_pod("in-zone-b", true, elsewhere).await;
        env.running_pod("no-zone", true, json!({})).await;
        env.let_caches_catch_up().await;
        env.create_service(service("web", json!({}))).await;
        env
    })
    .await;
    let text = snapshot["endpointSlices"].to_string();
    assert!(text.contains("\"zone\":\"zone-b\""), "{text}");
}
