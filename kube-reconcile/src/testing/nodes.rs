//! Nodes of the local control plane: fake ones that kwok runs, and one hand-driven Node.

use std::{path::Path, time::Duration};

use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client, api::PostParams};

use super::{Assets, Error};

/// Label on every fake Node (value `kwok`); pods scheduled there come alive.
pub const FAKE_NODE_LABEL: &str = "kube-reconcile.io/fake-node";
/// The Node that nothing manages; tests set the status of its pods themselves.
pub const MANUAL_NODE_NAME: &str = "manual-node";
/// kwok manages exactly the Nodes carrying this annotation.
const KWOK_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");

/// Creates `count` Nodes for kwok with room for many pods; returns their names.
pub(crate) async fn create_fake_nodes(client: &Client, count: usize) -> Result<Vec<String>, Error> {
    let api = Api::<Node>::all(client.clone());
    let mut names = Vec::with_capacity(count);
    for index in 0..count {
        let name = format!("fake-node-{index}");
        let node = node_manifest(
            &name,
            serde_json::json!({
                "labels": {FAKE_NODE_LABEL: "kwok", "kubernetes.io/hostname": &name,
                           "topology.kubernetes.io/zone": format!("zone-{}", index % 3)},
                "annotations": {KWOK_ANNOTATION.0: KWOK_ANNOTATION.1},
            }),
            serde_json::json!({}),
        );
        api.create(&PostParams::default(), &node)
            .await
            .map_err(Error::Api)?;
        names.push(name);
    }
    Ok(names)
}

/// Creates [`super::MANUAL_NODE_NAME`]: Ready (so readers that filter on it accept it),
/// unschedulable and tainted (so the scheduler never places pods there).
pub(crate) async fn create_manual_node(client: &Client) -> Result<(), Error> {
    let node = node_manifest(
        MANUAL_NODE_NAME,
        serde_json::json!({
            "labels": {"kubernetes.io/hostname": MANUAL_NODE_NAME,
                       "topology.kubernetes.io/zone": "zone-manual"},
        }),
        serde_json::json!({
            "unschedulable": true,
            "taints": [{"key": "kube-reconcile.io/manual-node", "effect": "NoSchedule"}],
        }),
    );
    let api = Api::<Node>::all(client.clone());
    let created = api
        .create(&PostParams::default(), &node)
        .await
        .map_err(Error::Api)?;
    // The API server ignores status on create; set it through the subresource.
    let mut with_status = created;
    with_status.status = node.status;
    let name = MANUAL_NODE_NAME;
    api.replace_status(name, &PostParams::default(), &with_status)
        .await
        .map_err(Error::Api)?;
    Ok(())
}

fn node_manifest(name: &str, metadata: serde_json::Value, spec: serde_json::Value) -> Node {
    let mut value = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": metadata,
        "spec": spec,
        "status": {
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
        },
    });
    value["metadata"]["name"] = name.into();
    // kwok initialises only Nodes that are not Ready yet; the manual Node is Ready by fiat.
    if name == MANUAL_NODE_NAME {
        value["status"]["conditions"] = serde_json::json!([{"type": "Ready", "status": "True",
            "reason": "KubeletReady", "message": "hand-driven kube-reconcile test node"}]);
    }
    serde_json::from_value(value).expect("a static Node manifest is valid")
}

/// Waits until kwok has marked every named Node Ready.
pub(crate) async fn wait_for_ready_nodes(
    client: &Client,
    names: &[String],
    timeout: Duration,
) -> Result<(), Error> {
    let api = Api::<Node>::all(client.clone());
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let nodes = api
            .list(&kube::api::ListParams::default().labels(&format!("{FAKE_NODE_LABEL}=kwok")))
            .await
            .map_err(Error::Api)?;
        let ready = nodes.items.iter().filter(|n| is_ready_by_kwok(n)).count();
        if ready >= names.len() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Timeout {
                what: format!(
                    "kwok to mark {} fake Nodes Ready ({ready} are)",
                    names.len()
                ),
                timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// kwok writes node addresses when it initialises a Node; the Ready condition alone could
/// be the one the manifest asked for.
fn is_ready_by_kwok(node: &Node) -> bool {
    let status = node.status.as_ref();
    let addressed = status
        .and_then(|s| s.addresses.as_ref())
        .is_some_and(|a| !a.is_empty());
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    addressed && ready
}

/// kwok's flags: manage only annotated Nodes, run the "fast" stages, no kubelet server.
pub(crate) fn kwok_args(assets: &Assets, kubeconfig: &Path, pod_cidr: &str) -> Vec<String> {
    let mut args = vec![
        format!("--kubeconfig={}", kubeconfig.display()),
        "--manage-all-nodes=false".to_string(),
        format!(
            "--manage-nodes-with-annotation-selector={}={}",
            KWOK_ANNOTATION.0, KWOK_ANNOTATION.1
        ),
        format!("--cidr={pod_cidr}"),
        "--node-ip=192.0.2.1".to_string(),
    ];
    let stages = assets.dir().join("kwok-stages");
    for stage in [
        "node-initialize",
        "node-heartbeat",
        "pod-ready",
        "pod-complete",
        "pod-delete",
    ] {
        args.push(format!(
            "--config={}",
            stages.join(format!("{stage}.yaml")).display()
        ));
    }
    args
}
