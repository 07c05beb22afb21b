//! Helpers shared by the benchmarks.

use kube_reconcile::ObjectKey;

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
