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

/// How an example binary's client talks to the API server.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientOptions<'a> {
    /// Sent as the `User-Agent` of every request (with `--kubeconfig`).
    pub user_agent: Option<&'a str>,
    /// Multiplex requests over HTTP/2 ([`kube_reconcile::client::http2`]) rather than
    /// HTTP/1.1 ([`kube_reconcile::client::http1`]).
    pub http2: bool,
}

/// The client `options` ask for, from `config`.
fn client(config: kube::Config, options: ClientOptions<'_>) -> anyhow::Result<Client> {
    Ok(if config.proxy_url.is_some() {
        // Only kube's own client goes through a proxy.
        Client::try_from(config)?
    } else if options.http2 {
        kube_reconcile::client::http2(config)?
    } else {
        kube_reconcile::client::http1(config)?
    })
}

/// A client for `kubeconfig`'s current context, as `options` say; without one, a local
/// control plane started from `local` (returned too, to stop at the end), with its
/// `KUBECONFIG` printed.
pub async fn connect(
    kubeconfig: Option<&Path>,
    options: ClientOptions<'_>,
    local: impl FnOnce() -> ControlPlaneBuilder,
) -> anyhow::Result<Connection> {
    if let Some(path) = kubeconfig {
        // The error names the file: "kubeconfig <path>: failed to parse ...".
        let mut config = kube_reconcile::kubeconfig::load(path, None).await?;
        if let Some(agent) = options.user_agent {
            let value = http::HeaderValue::from_str(agent).context("the user agent")?;
            config.headers.push((http::header::USER_AGENT, value));
        }
        let server_url = config.cluster_url.to_string();
        return Ok(Connection {
            client: client(config, options)?,
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
        client: client(control_plane.config().await?, options)?,
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
