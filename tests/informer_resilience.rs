//! Informers stay consistent with the server through what breaks watches in real
//! clusters: a kube-apiserver restart, and etcd compaction that makes the resumed watch
//! fail with 410 Gone so the informer must relist.

mod support;

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use kube_reconcile::{
    informer::{Informer, InformerFactory, Scope},
    testing::ControlPlane,
};

/// name -> value of every ConfigMap, as the informer's store holds them.
fn cached(informer: &Informer<ConfigMap>) -> BTreeMap<String, String> {
    informer
        .store()
        .list()
        .iter()
        .map(|cm| (cm.name_any(), cm.data.as_ref().unwrap()["value"].clone()))
        .collect()
}

/// The same, from an uncached list.
async fn listed(api: &Api<ConfigMap>) -> BTreeMap<String, String> {
    let items = api
        .list(&ListParams::default().labels("test=resilience"))
        .await
        .unwrap()
        .items;
    items
        .iter()
        .map(|cm| (cm.name_any(), cm.data.as_ref().unwrap()["value"].clone()))
        .collect()
}

fn labelled(name: &str, value: &str) -> ConfigMap {
    let mut cm = support::config_map(name, value);
    cm.metadata.labels = Some([("test".to_string(), "resilience".to_string())].into());
    cm
}

/// Creates, updates and deletes a few ConfigMaps so the informer has something to miss.
async fn churn(api: &Api<ConfigMap>, round: usize) {
    let pp = PostParams::default();
    api.create(&pp, &labelled(&format!("new-{round}"), "created"))
        .await
        .unwrap();
    let patch = serde_json::json!({"data": {"value": format!("round-{round}")}});
    api.patch("stable", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    if round > 0 {
        api.delete(&format!("new-{}", round - 1), &DeleteParams::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn informer_recovers_from_apiserver_restart_and_compaction() {
    let cp = support::start(ControlPlane::builder()).await;
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace(&client, "resilience").await.unwrap();
    let api = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &labelled("stable", "initial"))
        .await
        .unwrap();

    let factory = InformerFactory::new(client.clone());
    let informer =
        factory.informer::<ConfigMap>(&Scope::all().namespace(&ns).labels("test=resilience"));
    informer.start();
    informer.wait_for_sync().await;
    assert_eq!(informer.lists(), 1);
    churn(&api, 0).await;
    let expected = listed(&api).await;
    support::eventually("the informer to follow the watch", || {
        cached(&informer) == expected
    })
    .await;

    // 1. Restart kube-apiserver: the watch breaks and must resume.
    cp.restart_apiserver().await.unwrap();
    let client = cp.client().await.unwrap();
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    churn(&api, 1).await;
    let expected = listed(&api).await;
    support::eventually("consistency after an apiserver restart", || {
        cached(&informer) == expected
    })
    .await;

    // 2. Take kube-apiserver down long enough for the informer to back off, then change
    //    objects and compact etcd before it comes back: its resourceVersion is gone, so
    //    the resumed watch gets 410 Gone and the informer must relist.
    let lists_before = informer.lists();
    cp.restart_apiserver_after(Duration::from_secs(4))
        .await
        .unwrap();
    let client = cp.client().await.unwrap();
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    for round in 2..5 {
        churn(&api, round).await;
    }
    cp.compact_etcd().await.unwrap();
    let expected = listed(&api).await;
    support::eventually("consistency after a compaction", || {
        cached(&informer) == expected
    })
    .await;
    assert!(
        informer.lists() > lists_before,
        "the informer did not relist after its resourceVersion was compacted away"
    );
    assert!(
        informer.watch_errors() > 0,
        "the broken watches were not reported"
    );
    assert_eq!(
        expected.len(),
        2,
        "stable and the last created ConfigMap: {expected:?}"
    );
}
