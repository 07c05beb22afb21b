//! Revision bookkeeping on the objects a Deployment-style controller keeps one per
//! template: each carries `deployment.kubernetes.io/revision`, the newest gets the
//! highest, and a revision that comes back (a rollback) moves the old number into
//! `deployment.kubernetes.io/revision-history`.
//!
//! ```
//! use std::collections::BTreeMap;
//! use k8s_openapi::api::apps::v1::ReplicaSet;
//! use kube_reconcile::workloads::revision::{self, REVISION_ANNOTATION};
//!
//! let with_revision = |r: &str| {
//!     let mut rs = ReplicaSet::default();
//!     rs.metadata.annotations = Some(BTreeMap::from([(REVISION_ANNOTATION.into(), r.into())]));
//!     rs
//! };
//! let sets = [with_revision("3"), with_revision("1"), with_revision("2")];
//! assert_eq!(revision::of(&sets[0]), Some(3));
//! assert_eq!(revision::max(&sets), 3);
//! assert_eq!(revision::last(&sets), 2); // the one before the newest: `rollout undo`
//!
//! // Revision 1 comes back as revision 4: 1 goes into the history.
//! let mut annotations = BTreeMap::from([(REVISION_ANNOTATION.to_string(), "1".to_string())]);
//! assert!(revision::advance(&mut annotations, 4));
//! assert_eq!(annotations[REVISION_ANNOTATION], "4");
//! assert_eq!(annotations[revision::REVISION_HISTORY_ANNOTATION], "1");
//! ```

use std::collections::BTreeMap;

use kube::Resource;

/// The revision of the template an object holds, as a decimal number.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The revisions the object held before, comma-separated, oldest first.
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// How long the history may grow, in characters (kube-controller-manager's limit).
pub const MAX_HISTORY_CHARS: usize = 2000;

/// The object's revision: `None` without the annotation or when it is no number
/// (such objects are skipped by [`max`] and [`last`], as Kubernetes does).
pub fn of<K: Resource>(object: &K) -> Option<i64> {
    object
        .meta()
        .annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)?
        .parse()
        .ok()
}

/// The highest revision among `objects` (0 when none has one).
pub fn max<'a, K: Resource + 'a>(objects: impl IntoIterator<Item = &'a K>) -> i64 {
    objects.into_iter().filter_map(of).max().unwrap_or(0).max(0)
}

/// The second highest revision among `objects`: what "roll back to the last revision"
/// means (0 when there is none).
pub fn last<'a, K: Resource + 'a>(objects: impl IntoIterator<Item = &'a K>) -> i64 {
    let (mut highest, mut second) = (0, 0);
    for revision in objects.into_iter().filter_map(of) {
        if revision >= highest {
            second = highest;
            highest = revision;
        } else if revision > second {
            second = revision;
        }
    }
    second
}

/// Raises the revision in `annotations` to `revision` if it is lower, recording the
/// previous one in the history (trimmed from the oldest end to [`MAX_HISTORY_CHARS`]).
/// Returns whether anything changed. A revision annotation that is no number is left
/// alone (and `false` returned), as Kubernetes does.
pub fn advance(annotations: &mut BTreeMap<String, String>, revision: i64) -> bool {
    let previous = annotations.get(REVISION_ANNOTATION).cloned();
    let previous_number = match previous.as_deref() {
        None => 0,
        Some(text) => match text.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if previous_number >= revision {
        return false;
    }
    annotations.insert(REVISION_ANNOTATION.into(), revision.to_string());
    if let Some(previous) = previous {
        let history = annotations
            .get(REVISION_HISTORY_ANNOTATION)
            .cloned()
            .unwrap_or_default();
        if let Some(history) = appended(&history, &previous) {
            annotations.insert(REVISION_HISTORY_ANNOTATION.into(), history);
        }
    }
    true
}

/// `history` with `revision` appended, dropping the oldest entries to fit the limit;
/// `None` when even that cannot fit it.
fn appended(history: &str, revision: &str) -> Option<String> {
    if history.is_empty() {
        return Some(revision.to_string());
    }
    let entries: Vec<&str> = history.split(',').collect();
    let mut length = history.len() + revision.len() + 1;
    let mut start = 0;
    while length > MAX_HISTORY_CHARS && start < entries.len() {
        length -= entries[start].len() + 1;
        start += 1;
    }
    (length <= MAX_HISTORY_CHARS).then(|| {
        let mut kept = entries[start..].to_vec();
        kept.push(revision);
        kept.join(",")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_grows_and_is_trimmed_from_the_oldest_end() {
        let mut annotations = BTreeMap::new();
        assert!(advance(&mut annotations, 1));
        assert!(!annotations.contains_key(REVISION_HISTORY_ANNOTATION));
        assert!(advance(&mut annotations, 5));
        assert!(advance(&mut annotations, 9));
        assert_eq!(annotations[REVISION_HISTORY_ANNOTATION], "1,5");
        assert!(!advance(&mut annotations, 9), "not lower: unchanged");

        let long = vec!["1234567"; 250].join(",");
        assert_eq!(long.len(), 1999);
        let trimmed = appended(&long, "42").unwrap();
        assert!(trimmed.len() <= MAX_HISTORY_CHARS && trimmed.ends_with(",42"));
    }

    #[test]
    fn a_revision_that_is_no_number_is_left_alone() {
        let mut annotations = BTreeMap::from([(REVISION_ANNOTATION.into(), "x".into())]);
        assert!(!advance(&mut annotations, 3));
        assert_eq!(annotations[REVISION_ANNOTATION], "x");
    }
}
