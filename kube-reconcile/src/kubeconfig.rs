//! Loading a kubeconfig file into a `kube::Config`, with errors that name the file.
//!
//! kube's own loader says `failed to parse kubeconfig YAML: ...` without saying which
//! file; an operator given a wrong `--kubeconfig` should learn which file to fix.
//!
//! The configuration also gets a read timeout ([`DEAD_CONNECTION_TIMEOUT`]) unless it
//! has one: kube's default has none, so a connection that goes silent for good (a
//! network partition, a NAT entry dropped) would hang its requests and watches forever.
//! kube's client keeps that timeout by moving a timer on every read;
//! [`crate::client::http1`] keeps it without touching a timer while data flows.
//!
//! And it turns off kube's built-in retry layer (`default_retry`, on in kube's own
//! loaders): it retries 429, 503 and 504 answers inside the client with a per-request
//! backoff from 5 ms doubling towards 1000 s, 15 times, using the server's
//! `Retry-After` only while that is longer. Under sustained load shedding one request
//! then sleeps for minutes (82 s at its 14th try) inside the client, where neither the
//! caller nor a controller can see it: a reconcile measured here sat 124 s on one
//! sync with nothing sent for 34 s at a stretch. Retry shed load with
//! [`crate::client::honouring_retry_after`] (client-go's rule: the server's delay, 10
//! times; the [`Manager`](crate::manager::Manager)'s clients do) and let controllers wait
//! out a longer overload together (see
//! [`OverloadBackoff`](crate::controller::OverloadBackoff)).

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

/// How long a read on a connection may wait for a byte before the request fails:
/// 295 s, just over the 290 s after which kube's watcher asks the API server to end a
/// watch, so a healthy idle watch always hears from the server first (its close, or a
/// bookmark about every minute), while a dead connection fails within five minutes
/// instead of never. (client-go notices sooner with HTTP/2 pings, which kube's HTTP/1.1
/// client cannot send.)
pub const DEAD_CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(295);

/// The client configuration of `path`'s current context (or of `context`, if given),
/// with [`DEAD_CONNECTION_TIMEOUT`] as the read timeout when the file sets none, and
/// kube's built-in retry layer off (see the [module docs](self)).
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
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(named)?;
    config.read_timeout = config.read_timeout.or(Some(DEAD_CONNECTION_TIMEOUT));
    config.default_retry = false;
    Ok(config)
}
