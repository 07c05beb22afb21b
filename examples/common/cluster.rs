//! How the example binaries reach a cluster: an explicit `--kubeconfig`, or else a
//! local control plane of their own; running their manager until a signal. Also their
//! logging setup.

use std::path::Path;

use anyhow::Context;
use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};
use kube_reconcile::{
    controller::shutdown_signal,
    manager::Manager,
    testing::{ControlPlane, ControlPlaneBuilder},
};

/// Logs to stderr at `default` (e.g. `info,kube=warn`) unless `RUST_LOG` says otherwise.
pub fn init_tracing(default: &str) {
    let default = default.to_string();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default.into()),
        )
        .init();
}

/// A client for `kubeconfig`'s current context, sending `user_agent` if given;
/// without one, a local control plane started from `local` (returned too, to stop at
/// the end), with its `KUBECONFIG` printed.
pub async fn connect(
    kubeconfig: Option<&Path>,
    user_agent: Option<&str>,
    local: impl FnOnce() -> ControlPlaneBuilder,
) -> anyhow::Result<(Client, Option<ControlPlane>)> {
    if let Some(path) = kubeconfig {
        let kubeconfig = Kubeconfig::read_from(path).context("reading --kubeconfig")?;
        let mut config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        if let Some(agent) = user_agent {
            let value = http::HeaderValue::from_str(agent).context("the user agent")?;
            config.headers.push((http::header::USER_AGENT, value));
        }
        return Ok((Client::try_from(config)?, None));
    }
    println!("No --kubeconfig: starting a local control plane...");
    let control_plane = local().start().await?;
    println!(
        "Reach it with: export KUBECONFIG={}",
        control_plane.kubeconfig_path().display()
    );
    Ok((control_plane.client().await?, Some(control_plane)))
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
