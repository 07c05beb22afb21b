//! The harness's error type.

use std::{io, path::PathBuf, process::ExitStatus, time::Duration};

/// Why a control plane could not be found, built, started or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No binaries were configured and no kube-reconcile checkout was found to build them.
    #[error(
        "control-plane binaries not found: set KUBE_RECONCILE_ASSETS (or KUBEBUILDER_ASSETS) \
         to a folder with etcd and kube-apiserver, or run inside a kube-reconcile checkout \
         (or set KUBE_RECONCILE_CHECKOUT) so that tests/controlplane/build.sh can build them"
    )]
    AssetsNotFound,
    /// The binaries must be built and `go` is not on the PATH.
    #[error(
        "the control plane must be built from Go modules but `go` is not installed: install \
         Go >= 1.26, or set KUBE_RECONCILE_ASSETS to a folder with prebuilt binaries"
    )]
    GoMissing,
    /// `tests/controlplane/build.sh` failed; its output went to stderr.
    #[error("building the control plane failed ({status}); its output is above")]
    BuildFailed {
        /// The build script's exit status.
        status: ExitStatus,
    },
    /// The assets folder lacks a binary that the requested setup needs.
    #[error("{} is missing (envtest folders hold only etcd and kube-apiserver)", path.display())]
    MissingBinary {
        /// Where the binary was expected.
        path: PathBuf,
    },
    /// A process could not be started.
    #[error("could not start {what}")]
    Spawn {
        /// The program.
        what: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A component exited while it was expected to run.
    #[error("{name} exited ({status}); last lines of its log:\n{log_tail}")]
    Exited {
        /// The component.
        name: String,
        /// How it exited.
        status: String,
        /// The end of its log.
        log_tail: String,
    },
    /// A component did not become ready in time.
    #[error("{what} was not ready after {timeout:?}; last lines of the log:\n{log_tail}")]
    NotReady {
        /// What was waited for.
        what: String,
        /// How long.
        timeout: Duration,
        /// The end of the component's log.
        log_tail: String,
    },
    /// A cluster-side condition (Nodes Ready, CRD established) did not hold in time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        timeout: Duration,
    },
    /// A file-system operation failed.
    #[error("could not {what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Generating the test PKI failed.
    #[error("generating test certificates failed: {0}")]
    Pki(String),
    /// The generated kubeconfig could not be read back.
    #[error("reading the generated kubeconfig failed")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// A client could not be built from the kubeconfig.
    #[error("building a client failed")]
    Client(#[source] kube::Error),
    /// A call to the API server failed.
    #[error("an API call failed: {0}")]
    Api(#[source] kube::Error),
    /// A blocking helper task panicked or was cancelled.
    #[error("a background task of the harness failed: {0}")]
    Task(String),
}

impl Error {
    /// Wraps an I/O error with what was being done (for `map_err`).
    pub(crate) fn io(what: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Io { what, source }
    }
}
