//! The kube-reconcile demo: a real local control plane with fake Nodes, ready for
//! `kubectl`, running until Ctrl-C.
//!
//! ```text
//! cargo run --example demo                 # the embedded control plane
//! cargo run --example demo -- --nodes 5    # with five fake Nodes
//! ```

use std::time::Instant;

use k8s_openapi::api::core::v1::Node;
use kube::{Api, api::ListParams};
use kube_reconcile::testing::{ControlPlane, KUBERNETES_VERSION};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    let nodes = parse_nodes(std::env::args().skip(1))?;

    println!("Starting a local control plane ({KUBERNETES_VERSION}) with {nodes} fake Nodes...");
    let started = Instant::now();
    let control_plane = ControlPlane::builder().fake_nodes(nodes).start().await?;
    let client = control_plane.client().await?;
    let version = client.apiserver_version().await?;
    let ready = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .len();
    println!(
        "Control plane up in {:.1?}: kube-apiserver {} at {}, {ready} Nodes",
        started.elapsed(),
        version.git_version,
        control_plane.server_url()
    );
    println!("Reach it with:");
    println!(
        "  export KUBECONFIG={}",
        control_plane.kubeconfig_path().display()
    );
    println!("  kubectl get nodes   (or any client that reads a kubeconfig)");
    println!("Example controllers running: none yet (they arrive with the next issues).");
    println!("Press Ctrl-C to stop.");

    tokio::signal::ctrl_c().await?;
    println!("Stopping the control plane...");
    control_plane.stop().await;
    println!("Stopped.");
    Ok(())
}

fn parse_nodes(mut args: impl Iterator<Item = String>) -> anyhow::Result<usize> {
    let mut nodes = 3;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--nodes" => {
                let value = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--nodes needs a number"))?;
                nodes = value.parse()?;
            }
            other => anyhow::bail!("unknown argument {other:?}; usage: demo [--nodes N]"),
        }
    }
    Ok(nodes)
}
