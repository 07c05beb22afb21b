//! The local control plane is real and complete enough for every later test: version,
//! core API round-trips and watches, CRDs, scheduling with kwok, and hand-driven pods.

mod support;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::{
    api::core::v1::{ConfigMap, Pod},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api,
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
        WatchEvent, WatchParams,
    },
};
use kube_reconcile::testing::{
    ControlPlane, KUBERNETES_VERSION, MANUAL_NODE_NAME, PodState, set_pod_state,
};
use serde_json::json;
use tokio::sync::OnceCell;

static CONTROL_PLANE: OnceCell<ControlPlane> = OnceCell::const_new();

async fn control_plane() -> &'static ControlPlane {
    support::shared(&CONTROL_PLANE, || {
        ControlPlane::builder().fake_nodes(2).manual_node()
    })
    .await
}

#[tokio::test]
async fn apiserver_reports_the_pinned_version() {
    let client = control_plane().await.client().await.unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, KUBERNETES_VERSION);
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "37")
    );
}

#[tokio::test]
async fn config_map_create_get_list_watch_delete() {
    let cp = control_plane().await;
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace(&client, "configmaps").await.unwrap();
    let api = Api::<ConfigMap>::namespaced(client, &ns);

    let listed = api.list(&ListParams::default()).await.unwrap();
    assert!(listed.items.is_empty());
    let since = listed.metadata.resource_version.unwrap();
    let mut events = api
        .watch(&WatchParams::default(), &since)
        .await
        .unwrap()
        .boxed();

    let config_map: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "settings"}, "data": {"a": "1"}}))
            .unwrap();
    api.create(&PostParams::default(), &config_map)
        .await
        .unwrap();
    let fetched = api.get("settings").await.unwrap();
    assert_eq!(fetched.data.unwrap()["a"], "1");
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    api.delete("settings", &DeleteParams::default())
        .await
        .unwrap();

    let mut seen = Vec::new();
    while seen.len() < 2 {
        match events
            .try_next()
            .await
            .unwrap()
            .expect("the watch ended early")
        {
            WatchEvent::Added(cm) => seen.push(("added", cm.metadata.name.unwrap())),
            WatchEvent::Deleted(cm) => seen.push(("deleted", cm.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected watch event {other:?}"),
        }
    }
    let settings = || "settings".to_string();
    assert_eq!(seen, [("added", settings()), ("deleted", settings())]);
}

#[tokio::test]
async fn custom_resources_round_trip_and_unknown_fields_are_pruned() {
    let cp = control_plane().await;
    let client = cp.client().await.unwrap();
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "widgets.smoke.kube-reconcile.io"},
        "spec": {
            "group": "smoke.kube-reconcile.io",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {
                "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                    "type": "object",
                    "properties": {"size": {"type": "integer", "minimum": 1}},
                }}}
            }}],
        }
    }))
    .unwrap();
    cp.install_crds(&client, &[crd]).await.unwrap();

    let ns = cp.create_namespace(&client, "widgets").await.unwrap();
    let gvk = GroupVersionKind::gvk("smoke.kube-reconcile.io", "v1", "Widget");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let api = Api::<DynamicObject>::namespaced_with(client, &ns, &resource);
    let widget = DynamicObject::new("w1", &resource)
        .data(json!({"spec": {"size": 3, "colour": "not in the schema"}}));
    api.create(&PostParams::default(), &widget).await.unwrap();
    let fetched = api.get("w1").await.unwrap();
    assert_eq!(fetched.data["spec"], json!({"size": 3}));

    let invalid = DynamicObject::new("w2", &resource).data(json!({"spec": {"size": 0}}));
    let err = api
        .create(&PostParams::default(), &invalid)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("spec.size"),
        "unexpected error: {err}"
    );
}

#[tokio::test]
async fn a_bare_pod_is_scheduled_and_becomes_running_and_ready() {
    let cp = control_plane().await;
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace(&client, "pods").await.unwrap();
    let api = Api::<Pod>::namespaced(client, &ns);
    api.create(&PostParams::default(), &pod("web", None))
        .await
        .unwrap();

    let pod = support::wait_for(&api, "web", "Running and Ready", |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()).is_some_and(|s| {
            s.phase.as_deref() == Some("Running")
                && s.conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    })
    .await;
    let node = pod.spec.unwrap().node_name.unwrap();
    assert!(cp.fake_node_names().contains(&node), "scheduled to {node}");
    let ip = pod.status.unwrap().pod_ip.expect("kwok assigns a pod IP");
    assert!(
        ip.starts_with("10.244."),
        "pod IP {ip} is outside the pod CIDR"
    );
}

#[tokio::test]
async fn a_pod_on_the_manual_node_is_driven_ready_and_not_ready_by_the_test() {
    let cp = control_plane().await;
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace(&client, "manual").await.unwrap();
    let api = Api::<Pod>::namespaced(client, &ns);
    api.create(
        &PostParams::default(),
        &pod("driven", Some(MANUAL_NODE_NAME)),
    )
    .await
    .unwrap();

    let ready_condition = |p: &Pod| {
        let conditions = p.status.as_ref().and_then(|s| s.conditions.clone());
        conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status)
    };
    let ready = set_pod_state(&api, "driven", &PodState::ready("10.250.0.7"))
        .await
        .unwrap();
    assert_eq!(ready_condition(&ready).as_deref(), Some("True"));
    assert_eq!(
        ready.status.as_ref().unwrap().pod_ip.as_deref(),
        Some("10.250.0.7")
    );

    let state = PodState::not_ready("10.250.0.7").with_restarts(2);
    set_pod_state(&api, "driven", &state).await.unwrap();
    let fetched = api.get("driven").await.unwrap();
    assert_eq!(ready_condition(&fetched).as_deref(), Some("False"));
    let statuses = fetched.status.unwrap().container_statuses.unwrap();
    assert_eq!(statuses[0].restart_count, 2);
    // Nothing else writes to pods there: the state stays as the test left it.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let later = api.get("driven").await.unwrap();
    assert_eq!(ready_condition(&later).as_deref(), Some("False"));
}

fn pod(name: &str, node: Option<&str>) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
        }
    }))
    .unwrap()
}
