//! The manager on the real API server: its controllers reconcile once it leads, its
//! endpoints report caches, leadership and every metric family, and a graceful stop
//! releases the lease.

mod support;

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::{coordination::v1::Lease, core::v1::ConfigMap};
use kube::{Api, api::PostParams};
use kube_reconcile::{
    controller::Controller,
    informer::Scope,
    leader::LeaderElection,
    manager::Manager,
    reconcile::{Action, Reconcile, Request},
    testing::ControlPlane,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::OnceCell,
};

static CONTROL_PLANE: OnceCell<ControlPlane> = OnceCell::const_new();

#[derive(Clone, Default)]
struct Counting(Arc<AtomicUsize>);

impl Reconcile<ConfigMap> for Counting {
    type Error = Infallible;

    async fn reconcile(&self, _: Request<ConfigMap>) -> Result<Action, Infallible> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Action::Done)
    }
}

/// `GET path` on `address`: the status code and the body.
async fn get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn a_leading_manager_reconciles_reports_and_releases_its_lease() {
    let (client, ns) = support::namespace(&CONTROL_PLANE, ControlPlane::builder, "manager").await;
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &support::config_map("one", "v"))
        .await
        .unwrap();
    let election = LeaderElection::new(&ns, "manager-test").identity("only");
    let mut manager = Manager::builder(client.clone())
        .leader_election(election)
        .health_address("127.0.0.1:0".parse().unwrap())
        .build()
        .await
        .unwrap();
    let address = manager.health_address().expect("serving");
    let counting = Counting::default();
    let scope = Scope::all().namespace(&ns);
    manager.add(
        Controller::<ConfigMap>::builder("counting", manager.factory(), &scope)
            .build(counting.clone()),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(manager.run(async move {
        let _ = stopped.await;
    }));

    support::eventually("a reconcile once leading", || {
        counting.0.load(Ordering::SeqCst) > 0
    })
    .await;
    let (status, body) = get(address, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("caches synced: 1 of 1") && body.contains("Leading"),
        "{body}"
    );
    assert_eq!(get(address, "/healthz").await.0, 200);
    let (status, metrics) = get(address, "/metrics").await;
    assert_eq!(status, 200);
    for series in [
        r#"leader_election_master_status{name="manager-test"} 1"#,
        r#"workqueue_adds_total{name="counting"}"#,
        r#"controller_runtime_reconcile_total{controller="counting",result="success"}"#,
        r#"controller_runtime_max_concurrent_reconciles{controller="counting"} 1"#,
    ] {
        assert!(metrics.contains(series), "missing {series} in\n{metrics}");
    }
    assert_eq!(get(address, "/nothing").await.0, 404);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("a graceful stop ends the manager")
        .unwrap()
        .expect("a graceful stop is not an error");
    let lease = Api::<Lease>::namespaced(client, &ns)
        .get("manager-test")
        .await
        .unwrap();
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    assert_eq!(holder, "", "the lease is released on a graceful stop");
}
