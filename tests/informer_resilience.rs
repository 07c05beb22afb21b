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

/// Changes objects (round `round` of [`churn`]) and waits until the informer's cache
/// matches an uncached list, failing as `what` did not happen.
async fn churn_and_follow(
    api: &Api<ConfigMap>,
    informer: &Informer<ConfigMap>,
    round: usize,
    what: &str,
) {
    churn(api, round).await;
    let expected = listed(api).await;
    support::eventually(what, || cached(informer) == expected).await;
}

/// A fresh namespace holding ConfigMap "stable", and a synced informer (of `client`'s
/// own factory, returned to keep it alive) of the test's ConfigMaps there.
async fn watched_namespace(
    cp: &ControlPlane,
    client: &kube::Client,
    prefix: &str,
) -> (String, InformerFactory, Informer<ConfigMap>) {
    let ns = cp.create_namespace(client, prefix).await.unwrap();
    let api = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &labelled("stable", "initial"))
        .await
        .unwrap();
    let factory = InformerFactory::new(client.clone());
    let informer =
        factory.informer::<ConfigMap>(&Scope::all().namespace(&ns).labels("test=resilience"));
    informer.start();
    informer.wait_for_sync().await;
    (ns, factory, informer)
}

#[tokio::test]
async fn informer_recovers_from_apiserver_restart_and_compaction() {
    let cp = support::start(ControlPlane::builder()).await;
    let client = cp.client().await.unwrap();
    let (ns, _factory, informer) = watched_namespace(&cp, &client, "resilience").await;
    let api = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    assert_eq!(informer.lists(), 1);
    // Decoded with managedFields cut out of the text: the object otherwise whole.
    let mut fetched = api.get("stable").await.unwrap();
    assert!(fetched.metadata.managed_fields.take().is_some());
    let stored = informer.store().get_named(Some(&ns), "stable").unwrap();
    assert_eq!(*stored, fetched);
    churn_and_follow(&api, &informer, 0, "the informer to follow the watch").await;

    // 1. Restart kube-apiserver: the watch breaks and must resume.
    cp.restart_apiserver().await.unwrap();
    let client = cp.client().await.unwrap();
    let api = Api::<ConfigMap>::namespaced(client, &ns);
    churn_and_follow(&api, &informer, 1, "consistency after an apiserver restart").await;

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

#[tokio::test]
async fn an_http2_client_multiplexes_and_follows_an_apiserver_restart() {
    let cp = support::start(ControlPlane::builder()).await;
    let client = kube_reconcile::client::http2(cp.config().await.unwrap()).unwrap();
    let version = |client: kube::Client| async move {
        let request = http::Request::get("/version")
            .body(kube::client::Body::empty())
            .unwrap();
        client.send(request).await.unwrap().version()
    };
    assert_eq!(version(client.clone()).await, http::Version::HTTP_2);

    let (ns, _factory, informer) = watched_namespace(&cp, &client, "http2").await;
    let api = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    // Requests while the watch streams on the same connection.
    churn_and_follow(&api, &informer, 0, "the informer to follow the watch").await;

    // The connection dies with kube-apiserver: the client reconnects, still on HTTP/2,
    // and the informer resumes its watch.
    cp.restart_apiserver().await.unwrap();
    churn_and_follow(&api, &informer, 1, "consistency after an apiserver restart").await;
    assert_eq!(version(client).await, http::Version::HTTP_2);
}

/// Requests the API server answered.
const TOTAL: &str = "apiserver_request_total";
/// Long-running requests (watches) open now.
const OPEN: &str = "apiserver_longrunning_requests";

/// The API server's `metric` summed over every series of `verb` on `resource`.
async fn requests(client: &kube::Client, metric: &str, verb: &str, resource: &str) -> u64 {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap();
    let (verb, resource) = (
        format!("verb=\"{verb}\""),
        format!("resource=\"{resource}\""),
    );
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter(|l| l.contains(&verb) && l.contains(&resource))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The request URIs of the streaming lists of ConfigMaps in `namespace`, from the
/// control plane's audit log.
fn streaming_list_uris(cp: &ControlPlane, namespace: &str) -> Vec<String> {
    let log = std::fs::read_to_string(cp.audit_log_path().expect("audit log on")).unwrap();
    let mut uris: Vec<String> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| {
            event["verb"] == "watch"
                && event["objectRef"]["resource"] == "configmaps"
                && event["objectRef"]["namespace"] == namespace
        })
        .filter_map(|event| event["requestURI"].as_str().map(str::to_owned))
        .filter(|uri| uri.contains("sendInitialEvents=true"))
        .collect();
    // A long-running request is logged when its response starts and when it ends.
    uris.dedup();
    uris
}

/// Three ConfigMaps in a fresh namespace, and an informer of them from `factory`,
/// synced.
async fn synced_informer(
    cp: &ControlPlane,
    client: &kube::Client,
    factory: &InformerFactory,
) -> Informer<ConfigMap> {
    let ns = cp.create_namespace(client, "lists").await.unwrap();
    let api = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    for name in ["a", "b", "c"] {
        api.create(&PostParams::default(), &labelled(name, name))
            .await
            .unwrap();
    }
    let informer = factory.informer::<ConfigMap>(&Scope::all().namespace(&ns));
    informer.start();
    tokio::time::timeout(Duration::from_secs(30), informer.wait_for_sync())
        .await
        .expect("the informer syncs within 30 s");
    assert_eq!(informer.store().list().len(), 3);
    informer
}

#[tokio::test]
async fn lists_stream_where_the_server_allows_and_page_where_it_refuses() {
    // A v1.37 server streams: the informer syncs without a single LIST request.
    let cp = support::start(ControlPlane::builder().audit_log()).await;
    let client = cp.client().await.unwrap();
    let lists_before = requests(&client, TOTAL, "LIST", "configmaps").await;
    let open_before = requests(&client, OPEN, "WATCH", "configmaps").await;
    let factory = InformerFactory::new(client.clone());
    let informer = synced_informer(&cp, &client, &factory).await;
    assert!(factory.lists_by_streaming());
    // From the most recent state, as client-go's streaming lists: no resource version
    // (resourceVersion=0 would let the server answer from a watch cache that has not
    // seen the ConfigMaps just created).
    let ns = informer.store().list()[0]
        .metadata
        .namespace
        .clone()
        .unwrap();
    let watches = streaming_list_uris(&cp, &ns);
    assert_eq!(watches.len(), 1, "one streaming list: {watches:?}");
    assert!(!watches[0].contains("resourceVersion="), "{}", watches[0]);
    assert_eq!(
        requests(&client, TOTAL, "LIST", "configmaps").await,
        lists_before
    );
    // A watch is counted in the total when it ends; open, it is long-running.
    let open = requests(&client, OPEN, "WATCH", "configmaps").await;
    assert_eq!(open, open_before + 1, "the informer's own watch");
    informer.stop();

    // Asked not to, the factory lists in pages.
    let paged = InformerFactory::new(client.clone()).streaming_lists(false);
    let informer = synced_informer(&cp, &client, &paged).await;
    assert!(requests(&client, TOTAL, "LIST", "configmaps").await > lists_before);
    informer.stop();
    drop(cp);

    // A server with WatchList off refuses the first streaming list: the informer
    // syncs by pages all the same, and the factory stops asking.
    let cp = support::start(
        ControlPlane::builder().kube_apiserver_args(["--feature-gates=WatchList=false"]),
    )
    .await;
    let client = cp.client().await.unwrap();
    let factory = InformerFactory::new(client.clone());
    assert!(factory.lists_by_streaming());
    let informer = synced_informer(&cp, &client, &factory).await;
    assert!(!factory.lists_by_streaming());
    assert_eq!(
        informer.watch_errors(),
        0,
        "the refusal is not a watch error"
    );
}
