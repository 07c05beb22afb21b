//! How the example binaries reach a cluster: an explicit `--kubeconfig`, or else a
//! local control plane of their own; running their manager until a signal.

use std::path::Path;

use anyhow::Context;
use kube::Client;
use kube_reconcile::{
    controller::shutdown_signal,
    manager::Manager,
    testing::{ControlPlane, ControlPlaneBuilder},
};

/// Where an example binary runs: its client, the server that client talks to, and the
/// local control plane it started, if any.
pub struct Connection {
    pub client: Client,
    pub server_url: String,
    pub control_plane: Option<ControlPlane>,
}

/// A client for `kubeconfig`'s current context, sending `user_agent` if given;
/// without one, a local control plane started from `local` (returned too, to stop at
/// the end), with its `KUBECONFIG` printed.
pub async fn connect(
    kubeconfig: Option<&Path>,
    user_agent: Option<&str>,
    local: impl FnOnce() -> ControlPlaneBuilder,
) -> anyhow::Result<Connection> {
    if let Some(path) = kubeconfig {
        // The error names the file: "kubeconfig <path>: failed to parse ...".
        let mut config = kube_reconcile::kubeconfig::load(path, None).await?;
        if let Some(agent) = user_agent {
            let value = http::HeaderValue::from_str(agent).context("the user agent")?;
            config.headers.push((http::header::USER_AGENT, value));
        }
        let server_url = config.cluster_url.to_string();
        return Ok(Connection {
            client: Client::try_from(config)?,
            server_url,
            control_plane: None,
        });
    }
    println!("No --kubeconfig: starting a local control plane...");
    let control_plane = local().start().await?;
    println!(
        "Reach it with: export KUBECONFIG={}",
        control_plane.kubeconfig_path().display()
    );
    Ok(Connection {
        client: control_plane.client().await?,
        server_url: control_plane.server_url().to_string(),
        control_plane: Some(control_plane),
    })
}

/// Runs `manager` until SIGTERM or Ctrl-C, running `meanwhile` (e.g. a sample object
/// to show it working) beside it; then stops the local control plane, if one was
/// started. Fails if `meanwhile` fails or the manager lost its leader lease.
pub async fn run(
    manager: Manager,
    control_plane: Option<ControlPlane>,
    meanwhile: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let running = tokio::spawn(manager.run(shutdown_signal()));
    let shown = meanwhile.await;
    let outcome = running.await?;
    println!("Controllers stopped.");
    if let Some(control_plane) = control_plane {
        control_plane.stop().await;
    }
    shown?;
    Ok(outcome?)
}
