//! Bad input gives one clear error, never a panic or a busy loop: a malformed
//! kubeconfig, an unreachable server, a resource whose CRD is not installed, and a
//! missing RBAC permission. The last two heal once the cause is fixed.

mod support;

use std::{
    sync::{Mutex, Once},
    time::Duration,
};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::config::KubeconfigError;
use kube_reconcile::{
    crd::{Crd, CustomResourceExt},
    informer::{Informer, InformerFactory, Scope},
    kubeconfig,
    rbac::Permissions,
    testing::ControlPlane,
};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use tracing_subscriber::{Layer, layer::SubscriberExt, util::SubscriberInitExt};

static CONTROL_PLANE: OnceCell<ControlPlane> = OnceCell::const_new();

/// A resource whose CRD the cluster does not have until a test installs it.
#[derive(Crd, Clone, Debug, Serialize, Deserialize, garde::Validate)]
#[crd(
    group = "badinput.kube-reconcile.dev",
    version = "v1",
    kind = "Sprocket",
    namespaced
)]
pub struct SprocketSpec {
    /// Teeth.
    #[garde(skip)]
    pub teeth: i32,
}

/// Every WARN-or-worse line logged in this test binary, message and fields.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() > tracing::Level::WARN {
            return;
        }
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={value:?}", field.name()));
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        LINES.lock().unwrap().push(text.0);
    }
}

/// Captures log lines (and prints them as the other tests do); once per binary.
fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter =
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_test_writer()
                    .with_filter(filter),
            )
            .with(Capture)
            .init();
    });
}

/// The captured lines that mention every one of `words`.
fn logged(words: &[&str]) -> Vec<String> {
    let lines = LINES.lock().unwrap();
    lines
        .iter()
        .filter(|line| words.iter().all(|w| line.contains(w)))
        .cloned()
        .collect()
}

/// Waits until the informer has failed at least once, and checks it has not synced.
async fn wait_for_failure<K>(informer: &Informer<K>) {
    support::eventually("a failed list", || informer.watch_errors() > 0).await;
    assert!(!informer.has_synced());
    assert!(informer.is_running(), "a failing informer keeps retrying");
}

#[tokio::test]
async fn a_malformed_kubeconfig_is_one_clear_error_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let malformed = dir.join("malformed.yaml");
    std::fs::write(&malformed, "clusters: [ {name: x, cluster: {server: }\n").unwrap();
    let error = kubeconfig::load(&malformed, None).await.unwrap_err();
    assert!(
        matches!(error.source, KubeconfigError::Parse(_)),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "kubeconfig {}: failed to parse kubeconfig YAML",
            malformed.display()
        )),
        "{message}"
    );

    let missing = dir.join("missing.yaml");
    let error = kubeconfig::load(&missing, None).await.unwrap_err();
    assert!(
        matches!(error.source, KubeconfigError::ReadConfig(..)),
        "{error:?}"
    );
    assert!(error.to_string().contains("missing.yaml"), "{error}");

    // YAML, but no context to use.
    let empty = dir.join("empty.yaml");
    std::fs::write(&empty, "apiVersion: v1\nkind: Config\n").unwrap();
    let error = kubeconfig::load(&empty, None).await.unwrap_err();
    assert!(error.to_string().contains("empty.yaml"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_retried_with_backoff_and_named() {
    capture_logs();
    // A port nothing listens on, held (bound, not listening) so that no process the
    // other tests start can take it: connecting is refused.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = held.local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/");
    let config = kube::Config::new(url.parse().unwrap());
    let factory = InformerFactory::from_config(config).unwrap();
    assert_eq!(factory.server_url(), Some(url.as_str()));
    let informer = factory.informer::<ConfigMap>(&Scope::all().namespace("unreachable"));
    informer.start();
    wait_for_failure(&informer).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let errors = informer.watch_errors();
    // 800 ms doubling, jittered: 2 to 4 attempts in ~6 s; a busy loop makes thousands.
    assert!(
        (2..=5).contains(&errors),
        "{errors} failures in ~6 s: {:#?}",
        logged(&["unreachable"])
    );
    assert!(!informer.has_synced());
    assert!(informer.is_running());

    let lines = logged(&["configmaps in namespace unreachable", &url]);
    assert_eq!(
        lines.len() as u64,
        errors,
        "one line per attempt: {lines:#?}"
    );
    for line in &lines {
        assert!(line.contains("Connection refused"), "{line}");
        assert!(line.contains("os error"), "{line}");
        assert!(line.contains("retrying in"), "{line}");
    }
    println!("logged: {}", lines[0]);
    informer.stop();
    drop(held);
}

#[tokio::test]
async fn a_missing_crd_is_reported_and_synced_once_installed() {
    capture_logs();
    let cp = support::shared(&CONTROL_PLANE, ControlPlane::builder).await;
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace(&client, "no-crd").await.unwrap();
    let factory = InformerFactory::new(client.clone()).with_server_url(cp.server_url());
    let informer = factory.informer::<Sprocket>(&Scope::all().namespace(&ns));
    informer.start();
    wait_for_failure(&informer).await;
    let lines = logged(&["sprockets.badinput.kube-reconcile.dev", cp.server_url()]);
    assert!(
        lines.iter().any(|line| line.contains("404 NotFound")),
        "{lines:#?}"
    );
    println!("logged: {}", lines[0]);

    cp.install_crds(&client, &[Sprocket::crd()]).await.unwrap();
    tokio::time::timeout(support::WAIT, informer.wait_for_sync())
        .await
        .expect("the informer must sync once the CRD is installed");
}

#[tokio::test]
async fn a_missing_permission_is_reported_and_synced_once_granted() {
    capture_logs();
    let cp = support::shared(&CONTROL_PLANE, ControlPlane::builder).await;
    let admin = cp.client().await.unwrap();
    let ns = cp.create_namespace(&admin, "no-rbac").await.unwrap();
    let reader = support::impersonating(cp, &ns, "reader").await;
    let factory = InformerFactory::new(reader).with_server_url(cp.server_url());
    let informer = factory.informer::<ConfigMap>(&Scope::all().namespace(&ns));
    informer.start();
    wait_for_failure(&informer).await;
    let lines = logged(&[&format!("configmaps in namespace {ns}"), "403 Forbidden"]);
    assert!(
        lines.iter().any(|line| line.contains("forbidden")
            && line.contains(&format!("system:serviceaccount:{ns}:reader"))),
        "{lines:#?}"
    );
    println!("logged: {}", lines[0]);

    let mut permissions = Permissions::new();
    permissions.allow::<ConfigMap>(&["list", "watch"]);
    support::grant(&admin, &ns, "reader", &permissions).await;
    tokio::time::timeout(support::WAIT, informer.wait_for_sync())
        .await
        .expect("the informer must sync once the permission is granted");
}
