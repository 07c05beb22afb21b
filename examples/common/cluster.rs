//! How the example binaries reach a cluster: an explicit `--kubeconfig`, or else a
//! local control plane of their own. Also their logging setup.

use std::path::Path;

use anyhow::Context;
use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};
use kube_reconcile::{
    controller::{ControllerHandle, shutdown_signal},
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

/// A client for `kubeconfig`'s current context; without one, a local control plane
/// started from `local` (returned too, to stop at the end), with its `KUBECONFIG`
/// printed.
pub async fn connect(
    kubeconfig: Option<&Path>,
    local: impl FnOnce() -> ControlPlaneBuilder,
) -> anyhow::Result<(Client, Option<ControlPlane>)> {
    if let Some(path) = kubeconfig {
        let kubeconfig = Kubeconfig::read_from(path).context("reading --kubeconfig")?;
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
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

/// Waits for SIGTERM or Ctrl-C, then stops the controllers (each drains its in-flight
/// reconciles) and the local control plane, if one was started.
pub async fn run_until_signal(
    controllers: Vec<ControllerHandle>,
    control_plane: Option<ControlPlane>,
) {
    shutdown_signal().await;
    println!("Stopping...");
    for controller in controllers {
        controller.shutdown().await;
    }
    println!("Controllers stopped.");
    if let Some(control_plane) = control_plane {
        control_plane.stop().await;
    }
}
