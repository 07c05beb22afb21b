use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::*;

fn pod(namespace: &str, name: &str, node: &str, owner_uid: Option<&str>) -> Arc<Pod> {
    let owners = owner_uid.map(|uid| {
        vec![
            serde_json::json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                "name": "rs", "uid": uid, "controller": true}),
        ]
    });
    Arc::new(
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": namespace, "name": name, "ownerReferences": owners},
            "spec": {"nodeName": node, "containers": []},
        }))
        .unwrap(),
    )
}

fn names(pods: Vec<Arc<Pod>>) -> Vec<String> {
    let mut names: Vec<_> = pods
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    names
}

fn node_index(store: &Store<Pod>) {
    store.add_index("node", |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .into_iter()
            .collect()
    });
}

#[test]
fn get_list_and_remove() {
    let writer = Writer::new();
    let store = writer.store();
    assert!(writer.apply(pod("a", "p1", "n1", None)).is_none());
    assert!(
        writer.apply(pod("a", "p1", "n2", None)).is_some(),
        "replaced"
    );
    writer.apply(pod("b", "p2", "n1", None));
    assert_eq!(store.len(), 2);
    assert!(store.get_named(Some("a"), "p1").is_some());
    assert!(store.get_named(Some("b"), "p1").is_none());
    let removed = writer.remove(&ObjectKey::new(Some("a"), "p1")).unwrap();
    assert_eq!(removed.metadata.name.as_deref(), Some("p1"));
    assert_eq!(names(store.list()), ["p2"]);
}

#[test]
fn indexes_follow_updates_and_removals() {
    let writer = Writer::new();
    let store = writer.store();
    node_index(&store);
    writer.apply(pod("a", "p1", "n1", None));
    writer.apply(pod("a", "p2", "n1", None));
    assert_eq!(names(store.by_index("node", "n1").unwrap()), ["p1", "p2"]);

    writer.apply(pod("a", "p1", "n2", None)); // moved
    assert_eq!(names(store.by_index("node", "n1").unwrap()), ["p2"]);
    assert_eq!(names(store.by_index("node", "n2").unwrap()), ["p1"]);

    writer.remove(&ObjectKey::new(Some("a"), "p2"));
    assert!(store.by_index("node", "n1").unwrap().is_empty());
    assert_eq!(store.index_keys("node", "n2").unwrap().len(), 1);
}

#[test]
fn an_index_added_late_covers_existing_objects_and_names_are_unique() {
    let writer = Writer::new();
    let store = writer.store();
    writer.apply(pod("a", "p1", "n1", None));
    node_index(&store);
    assert_eq!(names(store.by_index("node", "n1").unwrap()), ["p1"]);
    assert!(
        !store.add_index("node", |_: &Pod| vec!["other".into()]),
        "kept the first"
    );
    assert!(store.by_index("node", "other").unwrap().is_empty());
}

#[test]
fn built_in_namespace_and_controller_indexes() {
    let writer = Writer::new();
    let store = writer.store();
    writer.apply(pod("a", "p1", "n1", Some("uid-1")));
    writer.apply(pod("a", "p2", "n1", Some("uid-2")));
    writer.apply(pod("b", "p3", "n1", Some("uid-1")));
    assert_eq!(names(store.list_namespace("a")), ["p1", "p2"]);
    assert_eq!(names(store.controlled_by("uid-1")), ["p1", "p3"]);
    writer.apply(pod("a", "p1", "n1", None)); // released by its owner
    assert_eq!(names(store.controlled_by("uid-1")), ["p3"]);
}

#[test]
fn an_unknown_index_is_an_error() {
    let writer = Writer::<Pod>::new();
    let store = writer.store();
    let err = store.by_index("missing", "x").unwrap_err();
    assert!(err.to_string().contains("missing"));
}

#[tokio::test(start_paused = true)]
async fn wait_for_sync_returns_once_marked() {
    let writer = Writer::<Pod>::new();
    let store = writer.store();
    let waiter = tokio::spawn({
        let store = store.clone();
        async move { store.wait_for_sync().await }
    });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    writer.mark_synced();
    waiter.await.unwrap();
    assert!(store.has_synced());
}
