//! Loading a kubeconfig file into a `kube::Config`, with errors that name the file.
//!
//! kube's own loader says `failed to parse kubeconfig YAML: ...` without saying which
//! file; an operator given a wrong `--kubeconfig` should learn which file to fix.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

/// Why a kubeconfig file could not be used. The message names the file and kube's
/// reason, e.g. `kubeconfig /tmp/x.yaml: failed to parse kubeconfig YAML: ...`.
#[derive(Debug, thiserror::Error)]
#[error("kubeconfig {}: {source}", path.display())]
pub struct Error {
    /// The file.
    pub path: PathBuf,
    /// kube's reason: unreadable ([`KubeconfigError::ReadConfig`]), not YAML or not a
    /// kubeconfig ([`KubeconfigError::Parse`]), or no usable context, cluster or user.
    #[source]
    pub source: KubeconfigError,
}

/// The client configuration of `path`'s current context (or of `context`, if given).
///
/// # Errors
/// An [`Error`] naming `path` when the file cannot be read or parsed, or its context,
/// cluster or user cannot be loaded. Nothing is contacted: an unreachable server shows
/// up only when the client is used.
pub async fn load(path: &Path, context: Option<&str>) -> Result<kube::Config, Error> {
    let named = |source| Error {
        path: path.to_path_buf(),
        source,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(named)?;
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(named)
}
