//! The example binaries' logging: one line per event on stderr, coloured only on a
//! terminal, and kube's own lines that repeat ours left out.

use std::io::IsTerminal;

/// kube's lines that kube-reconcile already logs with more context: kube-client's
/// per-request `failed with error ...` (its HTTP trace layer, at ERROR) and the
/// watcher's `watch list error with 403` both repeat the informer's retry line, which
/// also names the resource, the server and the next delay.
const KUBE_DIRECTIVES: &str = "kube_client=warn,kube_runtime=warn,kube_client::client::builder=off,kube_runtime::watcher=error";

/// Logs to stderr at `level` (e.g. `info`) with [`KUBE_DIRECTIVES`], unless `RUST_LOG`
/// says otherwise. Colours only when stderr is a terminal and `NO_COLOR` is unset or
/// empty (no-color.org), so files and pipes get plain text.
pub fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| format!("{level},{KUBE_DIRECTIVES}").into());
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .init();
}
