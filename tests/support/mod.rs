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

/// A client acting as ServiceAccount `namespace/name` (impersonated by the control
/// plane's admin), with no permissions until [`grant`] gives some.
pub async fn impersonating(cp: &ControlPlane, namespace: &str, name: &str) -> kube::Client {
    let mut config = cp.config().await.unwrap();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{name}"));
    kube::Client::try_from(config).unwrap()
}

/// Grants ServiceAccount `namespace/name` exactly `permissions` (a ClusterRole and a
/// ClusterRoleBinding named `<namespace>-<name>`, created with `admin`), and waits
/// until the API server's authorizer allows the first of them.
pub async fn grant(
    admin: &kube::Client,
    namespace: &str,
    name: &str,
    permissions: &kube_reconcile::rbac::Permissions,
) {
    use k8s_openapi::api::{
        authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
        rbac::v1::ClusterRoleBinding,
    };
    let role_name = format!("{namespace}-{name}");
    let role = permissions.cluster_role(&role_name);
    let post = kube::api::PostParams::default();
    Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(admin.clone())
        .create(&post, &role)
        .await
        .unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": role_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&post, &binding)
        .await
        .unwrap();
    let Some(rule) = role.rules.as_ref().and_then(|r| r.first()) else {
        return;
    };
    let first = rule.resources.as_ref().and_then(|r| r.first());
    let (resource, subresource) = match first.map(|r| r.split_once('/')) {
        Some(Some((resource, sub))) => (Some(resource), Some(sub)),
        _ => (first.map(String::as_str), None),
    };
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{namespace}:{name}")),
            groups: Some(vec![format!("system:serviceaccounts:{namespace}")]),
            resource_attributes: Some(ResourceAttributes {
                group: rule.api_groups.as_ref().and_then(|g| g.first().cloned()),
                resource: resource.map(str::to_string),
                subresource: subresource.map(str::to_string),
                verb: rule.verbs.first().cloned(),
                namespace: Some(namespace.to_string()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let reviews = Api::<SubjectAccessReview>::all(admin.clone());
    eventually_async("the granted role to take effect", async || {
        let answer = reviews.create(&post, &review).await.unwrap();
        answer.status.is_some_and(|s| s.allowed)
    })
    .await;
}

/// The debug build of the controller-manager example, which `cargo test` builds with
/// the tests (`cargo test --test <one>` does not: build it first).
pub fn controller_manager_binary() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let binary = target.join("debug/examples/controller-manager");
    assert!(
        binary.is_file(),
        "{} is missing: `cargo test` builds it; run `cargo build --example controller-manager`",
        binary.display()
    );
    binary
}
