//! The example ReplicaSet controller on the real control plane (scheduler + kwok):
//! scaling with status tracking, events, and adoption of orphans.

#[path = "../examples/controllers/mod.rs"]
mod controllers;
mod support;

use k8s_openapi::api::{
    apps::v1::ReplicaSet,
    core::v1::{Event, Pod},
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use kube_reconcile::{
    informer::{InformerFactory, Scope},
    ownership::controller_of,
    testing::ControlPlane,
};
use serde_json::json;
use tokio::sync::OnceCell;

static CONTROL_PLANE: OnceCell<ControlPlane> = OnceCell::const_new();

fn replica_set(name: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name, "tier": "web"}},
                         "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}},
        }
    }))
    .unwrap()
}

async fn wait_for_status(api: &Api<ReplicaSet>, name: &str, replicas: i32) -> ReplicaSet {
    let what = format!("{replicas} ready and available replicas");
    support::wait_for(api, name, &what, move |rs: Option<&ReplicaSet>| {
        rs.and_then(|rs| Some((rs.status.as_ref()?, rs.metadata.generation)))
            .is_some_and(|(s, generation)| {
                s.replicas == replicas
                    && s.ready_replicas.unwrap_or(0) == replicas
                    && s.available_replicas.unwrap_or(0) == replicas
                    && s.observed_generation == generation
            })
    })
    .await
}

#[tokio::test]
async fn scales_up_and_down_with_status_and_events_and_adopts_orphans() {
    let cp = support::shared(&CONTROL_PLANE, || ControlPlane::builder().fake_nodes(2)).await;
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace(&client, "replicaset").await.unwrap();
    let factory = InformerFactory::new(client.clone());
    let controller =
        controllers::replicaset::controller(client.clone(), &factory, &Scope::all(), 5);
    let controller = controller.start();

    let replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), &ns);
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    // An orphan that matches: it must be adopted, not duplicated.
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &orphan).await.unwrap();
    replica_sets
        .create(&PostParams::default(), &replica_set("web", 3))
        .await
        .unwrap();

    let rs = wait_for_status(&replica_sets, "web", 3).await;
    let status = rs.status.unwrap();
    assert_eq!(
        status.fully_labeled_replicas,
        Some(2),
        "the orphan lacks the tier label"
    );
    assert_eq!(status.terminating_replicas, Some(0));
    let owned = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(owned.len(), 3);
    assert!(
        owned
            .iter()
            .all(|p| controller_of(p).is_some_and(|r| r.name == "web"))
    );
    assert!(
        owned.iter().any(|p| p.name_any() == "orphan"),
        "the orphan was adopted"
    );

    for replicas in [1, 0, 2] {
        let patch = json!({"spec": {"replicas": replicas}});
        replica_sets
            .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        wait_for_status(&replica_sets, "web", replicas).await;
    }

    // Events are written in the background, one per pod (each message names its pod).
    // 2 creations reach 3 beside the adopted orphan and 2 more go 0 -> 2; 2 deletions
    // go 3 -> 1 and 1 goes 1 -> 0.
    let events = Api::<Event>::namespaced(client, &ns);
    let deadline = tokio::time::Instant::now() + support::WAIT;
    let counts = loop {
        let listed = events.list(&ListParams::default()).await.unwrap().items;
        let count = |reason: &str| -> i32 {
            let matching = listed
                .iter()
                .filter(|e| e.reason.as_deref() == Some(reason));
            matching.map(|e| e.count.unwrap_or(1)).sum()
        };
        let counts = (count("SuccessfulCreate"), count("SuccessfulDelete"));
        if counts == (4, 3) || tokio::time::Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        counts,
        (4, 3),
        "(SuccessfulCreate, SuccessfulDelete) occurrences"
    );
    controller.shutdown().await;
}
