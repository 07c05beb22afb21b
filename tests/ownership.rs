//! Claiming children on the real API server: adopt matching orphans, release owned
//! objects that stopped matching, never touch objects owned by another controller, and
//! refuse to adopt when an uncached read shows the owner is being deleted.

mod support;

use std::sync::Arc;

use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use kube_reconcile::{
    ownership::{ClaimError, ControllerRefManager, controller_of},
    selector::Selector,
    testing::ControlPlane,
};
use serde_json::json;

fn pod(name: &str, app: &str, controller: Option<(&str, &str)>) -> Pod {
    let owners = controller.map(|(name, uid)| {
        vec![
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name,
                    "uid": uid, "controller": true}),
        ]
    });
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}, "ownerReferences": owners},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
    }))
    .unwrap()
}

#[tokio::test]
async fn claim_adopts_releases_and_leaves_others_alone() {
    let cp = support::start(ControlPlane::builder()).await;
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace(&client, "claim").await.unwrap();
    let replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), &ns);
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let owner: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web", "finalizers": ["kube-reconcile.io/test"]},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "pause"}]}}},
    }))
    .unwrap();
    let owner = replica_sets
        .create(&PostParams::default(), &owner)
        .await
        .unwrap();
    let uid = owner.uid().unwrap();
    let pp = PostParams::default();
    for pod in [
        pod("orphan", "web", None),
        pod("mine", "web", Some(("web", &uid))),
        pod("mine-relabelled", "api", Some(("web", &uid))),
        pod("someone-elses", "web", Some(("other", "other-uid"))),
        pod("unrelated", "api", None),
    ] {
        pods.create(&pp, &pod).await.unwrap();
    }
    let candidates: Vec<Arc<Pod>> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(Arc::new)
        .collect();

    let selector = Selector::from_label_selector(Some(&owner.spec.selector)).unwrap();
    let manager = ControllerRefManager::new(&owner, replica_sets.clone(), pods.clone(), &selector);
    let mut claimed: Vec<String> = manager
        .claim(&candidates)
        .await
        .unwrap()
        .iter()
        .map(|p| p.name_any())
        .collect();
    claimed.sort();
    assert_eq!(claimed, ["mine", "orphan"]);

    let controller_uid = |pod: &Pod| controller_of(pod).map(|r| r.uid.clone());
    let adopted = pods.get("orphan").await.unwrap();
    assert_eq!(
        controller_uid(&adopted),
        Some(uid.clone()),
        "orphan adopted"
    );
    assert_eq!(controller_of(&adopted).unwrap().kind, "ReplicaSet");
    let released = pods.get("mine-relabelled").await.unwrap();
    assert_eq!(
        controller_uid(&released),
        None,
        "released when it stopped matching"
    );
    let foreign = pods.get("someone-elses").await.unwrap();
    assert_eq!(
        controller_uid(&foreign).as_deref(),
        Some("other-uid"),
        "never touched"
    );
    assert_eq!(controller_uid(&pods.get("unrelated").await.unwrap()), None);

    // The owner is being deleted (held by its finalizer), but the cached copy does not
    // show it yet: the uncached check must refuse to adopt.
    replica_sets
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    pods.create(&pp, &pod("late-orphan", "web", None))
        .await
        .unwrap();
    let late = Arc::new(pods.get("late-orphan").await.unwrap());
    let manager = ControllerRefManager::new(&owner, replica_sets.clone(), pods.clone(), &selector);
    let refused = manager.claim(&[late]).await.unwrap_err();
    assert!(
        matches!(refused, ClaimError::CannotAdopt { .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("being deleted"), "{refused}");
    assert_eq!(
        controller_uid(&pods.get("late-orphan").await.unwrap()),
        None
    );

    let unblock = json!({"metadata": {"finalizers": null}});
    replica_sets
        .patch("web", &PatchParams::default(), &Patch::Merge(&unblock))
        .await
        .unwrap();
}
