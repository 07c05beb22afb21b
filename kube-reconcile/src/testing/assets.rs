//! Finding (and, in a kube-reconcile checkout, building) the control-plane binaries.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use super::Error;

/// The Kubernetes version the harness builds and runs.
///
/// It is independent of the k8s-openapi version feature the application selects (this
/// workspace's tests select `v1_37`): with an older feature the harness still runs a
/// v1.37 API server, and k8s-openapi's types then lack the fields added since.
pub const KUBERNETES_VERSION: &str = "v1.37.2";

/// Where the control-plane binaries live.
///
/// Lookup order, first hit wins:
/// 1. `KUBE_RECONCILE_ASSETS` (a folder with `etcd`, `kube-apiserver`, ...);
/// 2. `KUBEBUILDER_ASSETS` (setup-envtest's folder; it has only etcd and kube-apiserver,
///    so options that need the scheduler, kwok or kube-controller-manager fail there);
/// 3. `<target dir>/control-plane/v1.37.2` of the enclosing kube-reconcile checkout,
///    built there by `tests/controlplane/build.sh` when missing or out of date.
#[derive(Debug, Clone)]
pub struct Assets {
    dir: PathBuf,
}

impl Assets {
    /// Finds the binaries, building them from the checkout's Go modules if needed.
    ///
    /// Building takes several minutes the first time (see the README); concurrent
    /// callers (several test binaries) wait on one file lock inside the build script.
    pub fn locate() -> Result<Self, Error> {
        for var in ["KUBE_RECONCILE_ASSETS", "KUBEBUILDER_ASSETS"] {
            if let Some(dir) = env::var_os(var).filter(|v| !v.is_empty()) {
                return Ok(Self { dir: dir.into() });
            }
        }
        let checkout = find_checkout().ok_or(Error::AssetsNotFound)?;
        let target = env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| checkout.join("target"));
        let dir = target.join("control-plane").join(KUBERNETES_VERSION);
        build(&checkout, &dir)?;
        Ok(Self { dir })
    }

    /// Uses binaries from an explicit folder.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder holding the binaries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of one binary, checked to exist.
    pub fn binary(&self, name: &str) -> Result<PathBuf, Error> {
        let path = self.dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(Error::MissingBinary { path })
        }
    }
}

/// The kube-reconcile checkout around the current directory (cargo runs tests from the
/// package root), recognised by `tests/controlplane/build.sh`.
fn find_checkout() -> Option<PathBuf> {
    if let Some(dir) = env::var_os("KUBE_RECONCILE_CHECKOUT") {
        return Some(dir.into());
    }
    let start = env::current_dir().ok()?;
    let manifest = env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    [Some(start), manifest]
        .into_iter()
        .flatten()
        .flat_map(|dir| dir.ancestors().map(Path::to_path_buf).collect::<Vec<_>>())
        .find(|dir| dir.join("tests/controlplane/build.sh").is_file())
}

/// Runs the build script; it returns at once when the binaries are up to date.
fn build(checkout: &Path, out: &Path) -> Result<(), Error> {
    if Command::new("go").arg("version").output().is_err() {
        return Err(Error::GoMissing);
    }
    let status = Command::new("bash")
        .arg(checkout.join("tests/controlplane/build.sh"))
        .arg(out)
        .status()
        .map_err(|source| Error::Spawn {
            what: "bash tests/controlplane/build.sh".into(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::BuildFailed { status })
    }
}
