//! Typed projections on the real control plane: an informer of a Pod projection lists
//! and watches `/api/v1/pods`, sees adds, updates (of status too) and deletes, indexes
//! them, and a controller reconciles them, all holding only the declared fields.

mod support;

use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::{
    api::core::v1::{Container, ContainerPort, ContainerStatus, Pod, PodSpec, PodStatus},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use kube_reconcile::{
    controller::Controller,
    informer::{Change, InformerFactory, Scope},
    projection::{Projection, check_names, create_as},
    reconcile::{Action, Reconcile, Request},
    testing::ControlPlane,
};
use serde_json::json;
use tokio::sync::OnceCell;

static CONTROL_PLANE: OnceCell<ControlPlane> = OnceCell::const_new();

/// What a node-level controller reads of a Pod, and nothing else.
#[derive(Projection, Clone, Debug)]
#[projection(of = Pod)]
struct PodView {
    metadata: ObjectMeta,
    spec: Option<SpecView>,
    status: Option<StatusView>,
}

#[derive(Projection, Clone, Debug)]
#[projection(of = PodSpec, nested)]
struct SpecView {
    node_name: Option<String>,
    containers: Vec<ContainerView>,
}

#[derive(Projection, Clone, Debug)]
#[projection(of = Container, nested)]
struct ContainerView {
    name: String,
    ports: Option<Vec<ContainerPort>>,
}

#[derive(Projection, Clone, Debug)]
#[projection(of = PodStatus, nested)]
struct StatusView {
    phase: Option<String>,
    pod_ip: Option<String>,
    container_statuses: Option<Vec<RestartsView>>,
}

#[derive(Projection, Clone, Debug)]
#[projection(of = ContainerStatus, nested)]
struct RestartsView {
    name: String,
    restart_count: i32,
}

impl PodView {
    fn node(&self) -> Option<&str> {
        self.spec.as_ref()?.node_name.as_deref()
    }

    fn restarts(&self) -> i32 {
        let statuses = self
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        statuses
            .into_iter()
            .flatten()
            .map(|c| c.restart_count)
            .sum()
    }

    fn describe(&self) -> String {
        let status = self.status.as_ref();
        format!(
            "{} node={} phase={} ip={} restarts={}",
            self.name_any(),
            self.node().unwrap_or("-"),
            status.and_then(|s| s.phase.as_deref()).unwrap_or("-"),
            status.and_then(|s| s.pod_ip.as_deref()).unwrap_or("-"),
            self.restarts()
        )
    }
}

/// A pod bound to `node` by hand (no scheduler, no kubelet: only the API server).
fn pod(name: &str, node: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "web"},
                     "annotations": {"note": "x".repeat(2000)}},
        "spec": {
            "nodeName": node,
            "containers": [{
                "name": "app", "image": "registry.example/app:1",
                "ports": [{"name": "http", "containerPort": 8080}],
                "env": (0..20).map(|i| json!({"name": format!("E{i}"), "value": "v"})).collect::<Vec<_>>(),
            }],
        },
    }))
    .unwrap()
}

/// What kubelet would report: Running with an IP and a restart count.
async fn report_running(api: &Api<Pod>, name: &str, ip: &str, restarts: i32) {
    let status = json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "containerStatuses": [{"name": "app", "ready": true, "restartCount": restarts,
                               "image": "registry.example/app:1", "imageID": "",
                               "state": {"running": {}}}],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// Polls `check` until it holds, failing the test after [`support::WAIT`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {:?}",
            support::WAIT
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn every_name_read_is_a_pod_field() {
    check_names::<PodView>().unwrap();
    check_names::<SpecView>().unwrap();
    check_names::<ContainerView>().unwrap();
    check_names::<StatusView>().unwrap();
    check_names::<RestartsView>().unwrap();
}

#[tokio::test]
async fn informer_of_a_pod_projection_sees_adds_updates_deletes_and_indexes() {
    let (client, ns) = support::namespace(&CONTROL_PLANE, ControlPlane::builder, "proj").await;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    pods.create(&PostParams::default(), &pod("web-a", "node-1"))
        .await
        .unwrap();

    let factory = InformerFactory::new(client.clone());
    let informer = factory.informer::<PodView>(&Scope::all().namespace(&ns));
    informer.store().add_index("node", |pod: &PodView| {
        pod.node().map(str::to_owned).into_iter().collect()
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    informer.add_handler(move |change| {
        sink.lock().unwrap().push(match change {
            Change::Added(p) => format!("added {}", p.describe()),
            Change::Updated { new, .. } => format!("updated {}", new.describe()),
            Change::Deleted(p) => format!("deleted {}", p.name_any()),
        });
    });
    informer.start();
    tokio::time::timeout(support::WAIT, informer.wait_for_sync())
        .await
        .expect("the projection's informer must sync");
    let store = informer.store();
    assert_eq!(store.len(), 1);
    let listed = store.get_named(Some(&ns), "web-a").unwrap();
    assert_eq!(listed.node(), Some("node-1"));
    let container = &listed.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.name, "app");
    assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 8080);
    assert!(
        listed.metadata.managed_fields.is_none(),
        "the default transform still drops managedFields"
    );
    assert!(listed.metadata.uid.is_some() && listed.metadata.resource_version.is_some());

    // A watched add, a status update (the status subresource) and a label update.
    pods.create(&PostParams::default(), &pod("web-b", "node-2"))
        .await
        .unwrap();
    report_running(&pods, "web-a", "10.0.0.7", 0).await;
    report_running(&pods, "web-a", "10.0.0.7", 3).await;
    eventually("web-a's restarts reaching the cache", || {
        store
            .get_named(Some(&ns), "web-a")
            .is_some_and(|p| p.restarts() == 3)
    })
    .await;
    eventually("web-b in the cache", || store.len() == 2).await;
    assert_eq!(store.by_index("node", "node-2").unwrap().len(), 1);
    assert_eq!(
        store.by_index("node", "node-1").unwrap()[0].name_any(),
        "web-a"
    );
    let a = store.get_named(Some(&ns), "web-a").unwrap();
    let status = a.status.as_ref().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.pod_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(status.container_statuses.as_ref().unwrap()[0].name, "app");

    // What the full type holds of the same pod agrees on the declared fields.
    let full = pods.get("web-a").await.unwrap();
    let full_status = full.status.unwrap();
    assert_eq!(full_status.pod_ip, status.pod_ip);
    assert_eq!(
        full_status.container_statuses.unwrap()[0].restart_count,
        a.restarts()
    );

    // Bound pods with no kubelet go at once only with a zero grace period.
    pods.delete("web-b", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually("web-b gone from the cache", || store.len() == 1).await;
    assert!(store.by_index("node", "node-2").unwrap().is_empty());

    // The API server sets `Pending` on create.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[0],
        "added web-a node=node-1 phase=Pending ip=- restarts=0"
    );
    let expected = [
        "added web-b node=node-2 phase=Pending ip=- restarts=0",
        "updated web-a node=node-1 phase=Running ip=10.0.0.7 restarts=0",
        "updated web-a node=node-1 phase=Running ip=10.0.0.7 restarts=3",
        "deleted web-b",
    ];
    for line in expected {
        assert!(seen.iter().any(|s| s == line), "{line:?} not in {seen:#?}");
    }
    informer.stop();
}

/// Records the restart count of every reconciled pod.
#[derive(Clone, Default)]
struct Restarts(Arc<Mutex<BTreeMap<String, i32>>>);

impl Reconcile<PodView> for Restarts {
    type Error = Infallible;

    async fn reconcile(&self, request: Request<PodView>) -> Result<Action, Infallible> {
        if let Some(pod) = &request.object {
            self.0
                .lock()
                .unwrap()
                .insert(pod.name_any(), pod.restarts());
        }
        Ok(Action::Done)
    }
}

#[tokio::test]
async fn controller_reconciles_a_pod_projection() {
    let (client, ns) = support::namespace(&CONTROL_PLANE, ControlPlane::builder, "projctl").await;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    pods.create(&PostParams::default(), &pod("web-c", "node-1"))
        .await
        .unwrap();
    let factory = InformerFactory::new(client.clone());
    let reconciler = Restarts::default();
    let controller =
        Controller::<PodView>::builder("restarts", &factory, Scope::all().namespace(&ns))
            .build(reconciler.clone())
            .start();
    let recorded = |n: i32| reconciler.0.lock().unwrap().get("web-c") == Some(&n);
    eventually("the first reconcile of web-c", || recorded(0)).await;
    report_running(&pods, "web-c", "10.0.0.9", 2).await;
    eventually("a reconcile seeing two restarts", || recorded(2)).await;
    controller.shutdown().await;
}

#[tokio::test]
async fn create_as_decodes_the_created_object_as_the_projection() {
    let (client, ns) = support::namespace(&CONTROL_PLANE, ControlPlane::builder, "create").await;
    let pods = Api::<Pod>::namespaced(client, &ns);
    let params = PostParams::default();
    let created = create_as::<PodView>(&pods, &params, &pod("made", "node-3"))
        .await
        .unwrap();
    assert_eq!(created.name_any(), "made");
    assert_eq!(created.node(), Some("node-3"));
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    let stored = pods.get("made").await.unwrap();
    assert_eq!(created.metadata.uid, stored.metadata.uid);

    // The API server's refusal comes back as create's does.
    let again = create_as::<PodView>(&pods, &params, &pod("made", "node-3")).await;
    match again {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 409, "{status:?}"),
        other => panic!("a second create of one name must be refused: {other:?}"),
    }
}
