//! Objects the Rust type cannot decode never stop an informer: a CRD's served schema
//! changed under the controller (here: it accepts anything), some stored objects no
//! longer fit the Rust type, and the informer still syncs with the rest, names the bad
//! ones, and keeps following the watch.

mod support;

use std::sync::{Arc, Mutex};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
};
use kube_reconcile::{
    crd::{Crd, CustomResourceExt},
    informer::{Change, Informer, InformerFactory, Scope},
    metrics::Metrics,
    testing::ControlPlane,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::OnceCell;

static CONTROL_PLANE: OnceCell<ControlPlane> = OnceCell::const_new();

/// What the controller was built for: `size` is a number.
#[derive(Crd, Clone, Debug, Serialize, Deserialize, garde::Validate)]
#[crd(
    group = "decode.kube-reconcile.dev",
    version = "v1",
    kind = "Gadget",
    namespaced
)]
pub struct GadgetSpec {
    /// How big.
    #[garde(skip)]
    pub size: i32,
}

/// The CRD as served now: the same resource, but any spec is accepted.
fn permissive_crd() -> CustomResourceDefinition {
    let mut crd = Gadget::crd();
    for version in &mut crd.spec.versions {
        version.schema = Some(
            serde_json::from_value(json!({"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            }}))
            .unwrap(),
        );
        version.subresources = None;
    }
    crd
}

/// Gadgets as the API server serves them, whatever their shape.
fn gadgets(client: kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client, ns, &Gadget::api_resource())
}

async fn create(api: &Api<DynamicObject>, name: &str, size: serde_json::Value) {
    let object =
        DynamicObject::new(name, &Gadget::api_resource()).data(json!({"spec": {"size": size}}));
    api.create(&PostParams::default(), &object).await.unwrap();
}

async fn set_size(api: &Api<DynamicObject>, name: &str, size: serde_json::Value) {
    let patch = json!({"spec": {"size": size}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// name -> size, as the informer's cache holds them.
fn cached(informer: &Informer<Gadget>) -> Vec<(String, i32)> {
    let mut cached: Vec<_> = informer
        .store()
        .list()
        .iter()
        .map(|g| (g.name_any(), g.spec.size))
        .collect();
    cached.sort();
    cached
}

fn sizes(pairs: &[(&str, i32)]) -> Vec<(String, i32)> {
    pairs.iter().map(|(n, s)| (n.to_string(), *s)).collect()
}

#[tokio::test]
async fn undecodable_objects_are_skipped_counted_and_named() {
    let cp = support::shared(&CONTROL_PLANE, ControlPlane::builder).await;
    let client = cp.client().await.unwrap();
    cp.install_crds(&client, &[permissive_crd()]).await.unwrap();
    let ns = cp.create_namespace(&client, "decode").await.unwrap();
    let api = gadgets(client.clone(), &ns);
    create(&api, "good-1", json!(1)).await;
    create(&api, "good-2", json!(2)).await;
    create(&api, "bad-1", json!("three")).await;
    create(&api, "bad-2", json!({"big": true})).await;

    let metrics = Metrics::new();
    let factory = InformerFactory::new(client.clone())
        .with_metrics(&metrics)
        .with_server_url(cp.server_url());
    let informer = factory.informer::<Gadget>(&Scope::all().namespace(&ns));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    informer.add_handler(move |change| {
        let describe = |g: &Gadget| format!("{}={}", g.name_any(), g.spec.size);
        sink.lock().unwrap().push(match change {
            Change::Added(g) => format!("added {}", describe(g)),
            Change::Updated { old, new } => {
                format!("updated {} -> {}", describe(old), describe(new))
            }
            Change::Deleted(g) => format!("deleted {}", describe(g)),
        });
    });
    informer.start();
    tokio::time::timeout(support::WAIT, informer.wait_for_sync())
        .await
        .expect("the informer must sync despite undecodable objects");

    assert_eq!(cached(&informer), sizes(&[("good-1", 1), ("good-2", 2)]));
    assert_eq!(informer.decode_failures(), 2);
    assert_eq!(
        informer.watch_errors(),
        0,
        "a bad object is not a failed list"
    );
    let bad: Vec<_> = informer
        .undecodable()
        .iter()
        .map(|u| u.key.to_string())
        .collect();
    assert_eq!(bad, [format!("{ns}/bad-1"), format!("{ns}/bad-2")]);
    assert!(
        informer.undecodable()[0]
            .error
            .contains("invalid type: string \"three\""),
        "{:?}",
        informer.undecodable()
    );
    let text = metrics.encode();
    for name in ["bad-1", "bad-2"] {
        let series = format!(
            r#"informer_decode_failures_total{{resource="gadgets.decode.kube-reconcile.dev",object="{ns}/{name}"}} 1"#
        );
        assert!(text.contains(&series), "{series} missing from:\n{text}");
    }

    // The watch still delivers good objects.
    create(&api, "good-3", json!(3)).await;
    support::eventually("good-3 to arrive by the watch", || {
        informer.store().get_named(Some(&ns), "good-3").is_some()
    })
    .await;

    // A good object updated into a bad shape keeps its last good state, uncounted
    // before, counted now, and no deletion is reported.
    set_size(&api, "good-1", json!("one")).await;
    support::eventually("good-1's bad update to be counted", || {
        informer.decode_failures() == 3
    })
    .await;
    assert_eq!(
        cached(&informer),
        sizes(&[("good-1", 1), ("good-2", 2), ("good-3", 3)])
    );

    // A relist (the informer stopped and started) neither drops it nor counts it again.
    let lists = informer.lists();
    informer.stop();
    informer.start();
    support::eventually("the relist", || informer.lists() > lists).await;
    assert_eq!(
        cached(&informer),
        sizes(&[("good-1", 1), ("good-2", 2), ("good-3", 3)])
    );
    assert_eq!(informer.decode_failures(), 3);

    // Decodable again: an update from the last good state. Deleting an object that
    // never decoded tells handlers nothing, and it leaves the undecodable list.
    set_size(&api, "good-1", json!(5)).await;
    api.delete("bad-1", &DeleteParams::default()).await.unwrap();
    support::eventually("good-1 to decode again and bad-1 to go", || {
        informer.undecodable().len() == 1 && cached(&informer)[0] == ("good-1".to_string(), 5)
    })
    .await;
    // The first list's order is the cache's; only what was said matters.
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            "added good-1=1",
            "added good-2=2",
            "added good-3=3",
            "updated good-1=1 -> good-1=5"
        ]
    );
}
