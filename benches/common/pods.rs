//! The realistic pod both memory benches cache (`pod_memory`, `initial_sync_rss`), and
//! the example controllers' projection of it.
#![allow(dead_code)] // each bench uses part of it

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

/// The example controllers' shared pod cache: the projection the controller-manager
/// binary holds each pod as (metadata, `spec.nodeName/hostname/subdomain`, container
/// names, ports and restart policies, `status.phase/conditions/podIP(s)` and restart
/// counts).
#[path = "../../examples/controllers/pod_view.rs"]
pub mod pod_view;

pub use pod_view::PodView;

pub fn pod(i: usize) -> Pod {
    let env: Vec<_> = (0..10)
        .map(|e| json!({"name": format!("SETTING_{e}"), "value": format!("value-{i}-{e}")}))
        .collect();
    let container = |name: &str, port: u16| {
        json!({
            "name": name, "image": format!("registry.example/{name}:1.{}", i % 7),
            "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
            "env": env,
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                          "limits": {"cpu": "500m", "memory": "256Mi"}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 10},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": port}, "periodSeconds": 5},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/config"},
                             {"name": "data", "mountPath": "/data"}],
        })
    };
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("web-{i:05}"),
            "labels": {"app": "web", "tier": "frontend", "pod-template-hash": "5d8f7c9b6",
                       "version": format!("v{}", i % 3), "team": "checkout"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080",
                            "kubernetes.io/change-cause": "rollout of release 42"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "web-5d8f7c9b6", "uid": "7b0f4a1e-4f0e-4c7e-9d3a-0e5a0c1b2d3e",
                "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "nodeName": format!("node-{}", i % 20),
            "containers": [container("app", 8080), container("proxy", 15001)],
            "volumes": [{"name": "config", "configMap": {"name": "web-config"}},
                        {"name": "data", "emptyDir": {}}],
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300}],
        }
    }))
    .unwrap()
}

pub fn status(i: usize) -> serde_json::Value {
    let now = "2026-11-29T12:00:00Z";
    let running = |name: &str| {
        json!({"name": name, "ready": true, "started": true, "restartCount": 0,
               "image": format!("registry.example/{name}:1.{}", i % 7),
               "imageID": format!("registry.example/{name}@sha256:{:064x}", i),
               "containerID": format!("containerd://{:064x}", i * 7 + 1),
               "state": {"running": {"startedAt": now}}})
    };
    let conditions: Vec<_> = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    .iter()
    .map(|t| json!({"type": t, "status": "True", "lastTransitionTime": now}))
    .collect();
    json!({"status": {
        "phase": "Running", "qosClass": "Burstable", "startTime": now,
        "hostIP": format!("192.0.2.{}", i % 20 + 1),
        "podIP": format!("10.244.{}.{}", i / 250, i % 250 + 1),
        "podIPs": [{"ip": format!("10.244.{}.{}", i / 250, i % 250 + 1)}],
        "conditions": conditions,
        "containerStatuses": [running("app"), running("proxy")],
    }})
}

pub async fn create_pods(api: &Api<Pod>, count: usize) -> anyhow::Result<()> {
    stream::iter(0..count)
        .map(|i| async move {
            let name = format!("web-{i:05}");
            api.create(&PostParams::default(), &pod(i)).await?;
            let params = PatchParams::default();
            api.patch_status(&name, &params, &Patch::Merge(status(i)))
                .await?;
            anyhow::Ok(())
        })
        .buffer_unordered(32)
        .try_collect::<()>()
        .await
}
