//! The ConfigMap mirror example end to end: a copy in another namespace that follows
//! its source through an owner tag, comes back when deleted, and goes (through the
//! source's finalizer) when the source goes.

#[path = "../examples/mirror/mod.rs"]
mod mirror;
mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use kube_reconcile::{
    informer::{InformerFactory, Scope},
    testing::ControlPlane,
};
use serde_json::json;

#[tokio::test]
async fn a_copy_in_another_namespace_follows_its_source_and_goes_with_it() {
    support::init_tracing();
    let cp = support::start(ControlPlane::builder()).await;
    let client = cp.client().await.unwrap();
    let (from, to) = (
        cp.create_namespace(&client, "mirror-from").await.unwrap(),
        cp.create_namespace(&client, "mirror-to").await.unwrap(),
    );
    // The operator runs as a ServiceAccount allowed only its generated role.
    let operator = support::impersonating(&cp, &from, "mirror").await;
    let factory = InformerFactory::new(operator);
    let controller = mirror::controller(&factory, &Scope::all());
    support::grant(&client, &from, "mirror", controller.permissions()).await;
    let controller = controller.start();
    let (sources, copies) = (
        Api::<ConfigMap>::namespaced(client.clone(), &from),
        Api::<ConfigMap>::namespaced(client.clone(), &to),
    );
    let source: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "settings", "annotations": {mirror::MIRROR_TO: to}},
        "data": {"mode": "fast"},
    }))
    .unwrap();
    let source = sources
        .create(&PostParams::default(), &source)
        .await
        .unwrap();
    let has_data = |value: &'static str| {
        move |cm: Option<&ConfigMap>| {
            cm.and_then(|cm| cm.data.as_ref())
                .and_then(|d| d.get("mode"))
                .is_some_and(|v| v == value)
        }
    };

    let copy = support::wait_for(&copies, "settings", "the copy", has_data("fast")).await;
    let tag = mirror::tag();
    assert!(
        tag.is_owned_by(&copy, &source),
        "the copy is tagged with its source"
    );
    assert_eq!(
        copy.managed_fields()
            .first()
            .and_then(|f| f.manager.as_deref()),
        Some(mirror::NAME),
        "written by server-side apply as the controller"
    );
    let fresh = sources.get("settings").await.unwrap();
    assert_eq!(fresh.finalizers(), [mirror::FINALIZER]);

    // The source changes: the copy follows.
    let patch = json!({"data": {"mode": "slow"}});
    sources
        .patch("settings", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    support::wait_for(&copies, "settings", "the copy to follow", has_data("slow")).await;

    // Someone deletes the copy: its tag maps the deletion to the source, which restores it.
    copies
        .delete("settings", &DeleteParams::default())
        .await
        .unwrap();
    support::eventually_async("the copy to come back", async || {
        copies
            .get_opt("settings")
            .await
            .unwrap()
            .is_some_and(|cm| cm.metadata.deletion_timestamp.is_none())
    })
    .await;

    // An event about the source tells what happened.
    let events = Api::<Event>::namespaced(client.clone(), &from)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some(mirror::REASON_MIRRORED)),
        "a {} event on the source",
        mirror::REASON_MIRRORED
    );

    // The source goes: its finalizer deletes the copy first, then lets it go.
    sources
        .delete("settings", &DeleteParams::default())
        .await
        .unwrap();
    support::eventually_async("the source and its copy to be gone", async || {
        sources.get_opt("settings").await.unwrap().is_none()
            && copies.get_opt("settings").await.unwrap().is_none()
    })
    .await;
    controller.shutdown().await;
}
