//! The ConfigMap mirror operator (see `examples/mirror/`): copies each ConfigMap
//! annotated `mirror.kube-reconcile.dev/to: <namespace>` into that namespace.
//!
//! `cargo run --example configmap-mirror` starts a local control plane, runs the
//! operator and mirrors a sample; `-- --kubeconfig PATH` runs it against a cluster.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/logging.rs"]
mod logging;
mod mirror;

use std::path::PathBuf;

use clap::Parser;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{Api, Client, api::PostParams};
use kube_reconcile::{manager::Manager, prelude::*, testing::ControlPlane};
use serde_json::json;

/// Mirrors annotated ConfigMaps into other namespaces.
#[derive(Parser)]
struct Args {
    /// A kubeconfig to run against; without it, a local control plane is started.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init_tracing("info");
    let cluster::Connection {
        client,
        server_url,
        control_plane,
    } = cluster::connect(
        args.kubeconfig.as_deref(),
        Default::default(),
        ControlPlane::builder,
    )
    .await?;
    let mut manager = Manager::builder(client.clone())
        .server_url(server_url)
        .build()
        .await?;
    manager.add(mirror::controller(manager.factory(), &Scope::all()));
    let local = control_plane.is_some();
    cluster::run(manager, control_plane, async move {
        if local {
            sample(client).await?;
        }
        println!("Ctrl-C stops.");
        Ok(())
    })
    .await
}

/// Mirrors default/settings into the `team-b` namespace and prints the copy.
async fn sample(client: Client) -> anyhow::Result<()> {
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": "team-b"}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    let source: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "settings", "annotations": {mirror::MIRROR_TO: "team-b"}},
        "data": {"mode": "fast"},
    }))?;
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &source)
        .await?;
    let copies = Api::<ConfigMap>::namespaced(client, "team-b");
    for _ in 0..100 {
        if let Some(copy) = copies.get_opt("settings").await? {
            println!("team-b/settings mirrors default/settings: {:?}", copy.data);
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("the copy did not appear within 10 s")
}
