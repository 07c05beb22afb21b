//! Helpers shared by the benchmarks.
#![allow(dead_code)] // each bench uses part of it

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use kube_reconcile::ObjectKey;

pub mod head_to_head;

/// `n` distinct keys spread over 50 namespaces, shaped like real object keys.
pub fn keys(n: usize) -> Vec<ObjectKey> {
    (0..n)
        .map(|i| {
            ObjectKey::new(
                Some(&format!("namespace-{}", i % 50)),
                &format!("object-{i}"),
            )
        })
        .collect()
}

/// The first number on the command line (after cargo's own arguments), or `default`.
pub fn count_arg(default: usize) -> usize {
    std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Builds the Go program `benches/go/<name>` (client-go's side of a comparison) into
/// `target/bench-go/` with the local Go toolchain and returns its path.
pub fn go_benchmark(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let binary = root.join("target/bench-go").join(name);
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(format!("./{name}"))
        .current_dir(root.join("benches/go"))
        .status()
        .expect("go must be installed to build the client-go side");
    assert!(built.success(), "building the Go benchmark {name} failed");
    binary
}
