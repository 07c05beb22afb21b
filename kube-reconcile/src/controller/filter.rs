//! Change filters: small pure functions deciding whether a change should enqueue.
//!
//! A filter sees the informer [`Change`]; `Added` and `Deleted` always pass the
//! built-in change filters, which only judge updates (as controller-runtime's
//! predicates do).
//!
//! ```
//! use std::sync::Arc;
//! use k8s_openapi::api::apps::v1::Deployment;
//! use kube_reconcile::{controller::filter, informer::Change};
//!
//! let mut old = Deployment::default();
//! old.metadata.generation = Some(1);
//! let mut new = old.clone();
//! new.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
//! let update = Change::Updated { old: Arc::new(old), new: Arc::new(new) };
//! assert!(!filter::generation_changed(&update)); // only metadata changed
//! assert!(filter::labels_changed(&update));
//! ```

use kube::Resource;

use crate::informer::Change;

/// A filter: `true` lets the change enqueue.
pub type Filter<K> = std::sync::Arc<dyn Fn(&Change<K>) -> bool + Send + Sync>;

/// Updates pass only when `metadata.generation` changed (the spec changed, for types
/// with a status subresource). Ignores status-only and metadata-only updates.
pub fn generation_changed<K: Resource>(change: &Change<K>) -> bool {
    changed(change, |o| o.meta().generation)
}

/// Updates pass only when the labels changed.
pub fn labels_changed<K: Resource>(change: &Change<K>) -> bool {
    changed(change, |o| o.meta().labels.clone())
}

/// Updates pass only when the annotations changed.
pub fn annotations_changed<K: Resource>(change: &Change<K>) -> bool {
    changed(change, |o| o.meta().annotations.clone())
}

/// Updates pass only when the resourceVersion changed (drops no-op relist echoes).
pub fn resource_version_changed<K: Resource>(change: &Change<K>) -> bool {
    changed(change, |o| o.meta().resource_version.clone())
}

fn changed<K, T: PartialEq>(change: &Change<K>, field: impl Fn(&K) -> T) -> bool {
    match change {
        Change::Updated { old, new } => field(old) != field(new),
        Change::Added(_) | Change::Deleted(_) => true,
    }
}
