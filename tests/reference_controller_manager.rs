//! The reference side works: kube-controller-manager's own replicaset-controller, on
//! the local control plane, turns a 3-replica ReplicaSet into 3 running pods.

mod support;

use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use kube_reconcile::testing::ControlPlane;
use serde_json::json;

#[tokio::test]
async fn replicaset_controller_creates_the_replicas() {
    let cp = support::start(
        ControlPlane::builder()
            .fake_nodes(1)
            .kube_controller_manager(["replicaset-controller"]),
    )
    .await;
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace(&client, "reference").await.unwrap();
    let replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), &ns);
    let replica_set: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
            },
        }
    }))
    .unwrap();
    replica_sets
        .create(&PostParams::default(), &replica_set)
        .await
        .unwrap();

    let status = support::wait_for(
        &replica_sets,
        "web",
        "3 ready replicas",
        |rs: Option<&ReplicaSet>| {
            rs.and_then(|rs| rs.status.as_ref())
                .is_some_and(|s| s.replicas == 3 && s.ready_replicas == Some(3))
        },
    )
    .await
    .status
    .unwrap();
    assert_eq!(status.available_replicas, Some(3));

    let pods = Api::<Pod>::namespaced(client, &ns)
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(pods.items.len(), 3);
    for pod in &pods.items {
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("ReplicaSet", "web")
        );
        assert_eq!(owner.controller, Some(true));
    }
    cp.stop().await;
}
