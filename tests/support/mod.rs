//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different part

use std::time::Duration;

use kube::{
    Api, Resource,
    runtime::wait::{Condition, await_condition},
};
use kube_reconcile::testing::{ControlPlane, ControlPlaneBuilder};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

/// How long a test waits for the cluster to reach a state before failing.
pub const WAIT: Duration = Duration::from_secs(60);

/// Starts the test binary's control plane once; every test of the binary shares it and
/// isolates itself in its own namespace. Panics with the reason if it cannot start.
pub async fn shared(
    cell: &'static OnceCell<ControlPlane>,
    builder: impl FnOnce() -> ControlPlaneBuilder,
) -> &'static ControlPlane {
    cell.get_or_init(|| start(builder())).await
}

/// The binary's shared control plane (started once by `builder`), a client, and a new
/// namespace named after `prefix` for one test.
pub async fn namespace(
    cell: &'static OnceCell<ControlPlane>,
    builder: impl FnOnce() -> ControlPlaneBuilder,
    prefix: &str,
) -> (kube::Client, String) {
    let cp = shared(cell, builder).await;
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace(&client, prefix).await.unwrap();
    (client, ns)
}

/// Starts a control plane for one test; panics with the reason if it cannot start.
pub async fn start(builder: ControlPlaneBuilder) -> ControlPlane {
    init_tracing();
    builder
        .start()
        .await
        .unwrap_or_else(|e| panic!("the local control plane must start for this test: {e}"))
}

/// Logs at `warn` (or `RUST_LOG`) once per test binary.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Waits until object `name` satisfies `condition`, failing the test after [`WAIT`].
pub async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, condition: impl Condition<K>) -> K
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let waited = tokio::time::timeout(WAIT, await_condition(api.clone(), name, condition)).await;
    match waited {
        Ok(Ok(Some(object))) => object,
        Ok(Ok(None)) => panic!("{name} was deleted while waiting for {what}"),
        Ok(Err(e)) => panic!("watching {name} for {what} failed: {e}"),
        Err(_) => panic!("{name}: {what} did not happen within {WAIT:?}"),
    }
}

/// A ConfigMap named `name` with one data entry.
pub fn config_map(name: &str, value: &str) -> k8s_openapi::api::core::v1::ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "data": {"value": value},
    }))
    .unwrap()
}

/// Polls `check` every 100 ms until it holds, failing the test after [`WAIT`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`eventually`] for a check that must await (e.g. read the API server).
pub async fn eventually_async(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
