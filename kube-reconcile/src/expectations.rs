//! Expectations: what a controller has asked the API server to do and not yet seen in
//! its cache, so it does not act twice on a stale cache.
//!
//! Before creating N children a controller records "expect N creations" for the
//! owner's key; each observed child creation lowers the count. While the owner's
//! expectations are unmet the controller skips managing its children (it still updates
//! status). A record older than five minutes counts as met, so a lost watch event
//! cannot wedge an owner forever. This is kube-controller-manager's mechanism.
//!
//! ```
//! use kube_reconcile::{ObjectKey, expectations::Expectations};
//!
//! let expectations = Expectations::new();
//! let owner = ObjectKey::new(Some("default"), "web");
//! assert!(expectations.satisfied(&owner)); // nothing recorded
//! expectations.expect_creations(&owner, 2);
//! expectations.creation_observed(&owner);
//! assert!(!expectations.satisfied(&owner));
//! expectations.creation_observed(&owner);
//! assert!(expectations.satisfied(&owner));
//! ```

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::Duration,
};

use tokio::time::Instant;

use crate::ObjectKey;

/// How long a record is trusted before it counts as met.
pub const EXPECTATIONS_TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy)]
struct Record {
    adds: i64,
    deletes: i64,
    recorded: Instant,
}

/// Counting expectations per owner key.
#[derive(Debug)]
pub struct Expectations {
    records: Mutex<HashMap<ObjectKey, Record>>,
    ttl: Duration,
}

impl Default for Expectations {
    fn default() -> Self {
        Self::new()
    }
}

impl Expectations {
    /// Expectations with the standard five-minute TTL.
    pub fn new() -> Self {
        Self::with_ttl(EXPECTATIONS_TTL)
    }

    /// Expectations whose records count as met after `ttl`.
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            records: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the controller may act on `owner`: no record, every expected creation
    /// and deletion observed, or the record is older than the TTL.
    pub fn satisfied(&self, owner: &ObjectKey) -> bool {
        match self.lock().get(owner) {
            None => true,
            Some(r) => (r.adds <= 0 && r.deletes <= 0) || r.recorded.elapsed() > self.ttl,
        }
    }

    /// Replaces `owner`'s record: expect `count` creations.
    pub fn expect_creations(&self, owner: &ObjectKey, count: usize) {
        self.set(owner, to_i64(count), 0);
    }

    /// Replaces `owner`'s record: expect `count` deletions.
    pub fn expect_deletions(&self, owner: &ObjectKey, count: usize) {
        self.set(owner, 0, to_i64(count));
    }

    fn set(&self, owner: &ObjectKey, adds: i64, deletes: i64) {
        let record = Record {
            adds,
            deletes,
            recorded: Instant::now(),
        };
        self.lock().insert(owner.clone(), record);
    }

    /// Lowers `owner`'s expected creations and deletions (no record: nothing happens).
    /// Use it for creations that were never attempted or failed.
    pub fn lower(&self, owner: &ObjectKey, adds: usize, deletes: usize) {
        if let Some(record) = self.lock().get_mut(owner) {
            record.adds -= to_i64(adds);
            record.deletes -= to_i64(deletes);
        }
    }

    /// Raises `owner`'s expectations (no record: nothing happens).
    pub fn raise(&self, owner: &ObjectKey, adds: usize, deletes: usize) {
        if let Some(record) = self.lock().get_mut(owner) {
            record.adds += to_i64(adds);
            record.deletes += to_i64(deletes);
        }
    }

    /// A creation for `owner` was seen in the cache.
    pub fn creation_observed(&self, owner: &ObjectKey) {
        self.lower(owner, 1, 0);
    }

    /// A deletion for `owner` was seen in the cache.
    pub fn deletion_observed(&self, owner: &ObjectKey) {
        self.lower(owner, 0, 1);
    }

    /// Forgets `owner` (call when the owner is deleted).
    pub fn delete(&self, owner: &ObjectKey) {
        self.lock().remove(owner);
    }

    /// `(adds, deletes)` still expected for `owner`, if recorded.
    pub fn pending(&self, owner: &ObjectKey) -> Option<(i64, i64)> {
        self.lock().get(owner).map(|r| (r.adds, r.deletes))
    }
}

fn to_i64(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Expectations that also remember *which* children are expected to go, so a deletion
/// is counted once even if it is observed twice (an update with a deletionTimestamp,
/// then the delete), and unrelated deletions are not counted at all.
#[derive(Debug, Default)]
pub struct UidTrackingExpectations {
    counts: Expectations,
    deleting: Mutex<HashMap<ObjectKey, HashSet<String>>>,
}

impl UidTrackingExpectations {
    /// Tracking expectations with the standard TTL.
    pub fn new() -> Self {
        Self::default()
    }

    fn deleting(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, HashSet<String>>> {
        self.deleting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// See [`Expectations::satisfied`].
    pub fn satisfied(&self, owner: &ObjectKey) -> bool {
        self.counts.satisfied(owner)
    }

    /// See [`Expectations::expect_creations`].
    pub fn expect_creations(&self, owner: &ObjectKey, count: usize) {
        self.counts.expect_creations(owner, count);
    }

    /// See [`Expectations::creation_observed`].
    pub fn creation_observed(&self, owner: &ObjectKey) {
        self.counts.creation_observed(owner);
    }

    /// See [`Expectations::lower`] (for creations that failed or were skipped).
    pub fn lower_creations(&self, owner: &ObjectKey, count: usize) {
        self.counts.lower(owner, count, 0);
    }

    /// Expects the deletion of these children (keys such as `namespace/name`).
    pub fn expect_deletions(&self, owner: &ObjectKey, children: impl IntoIterator<Item = String>) {
        let children: HashSet<String> = children.into_iter().collect();
        self.counts.expect_deletions(owner, children.len());
        self.deleting().insert(owner.clone(), children);
    }

    /// A child's deletion was seen (or its delete call failed): counted once, and only
    /// if it was expected.
    pub fn deletion_observed(&self, owner: &ObjectKey, child: &str) {
        let removed = self
            .deleting()
            .get_mut(owner)
            .is_some_and(|children| children.remove(child));
        if removed {
            self.counts.deletion_observed(owner);
        }
    }

    /// The children still expected to be deleted.
    pub fn expected_deletions(&self, owner: &ObjectKey) -> Vec<String> {
        let deleting = self.deleting();
        deleting
            .get(owner)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets `owner`.
    pub fn delete(&self, owner: &ObjectKey) {
        self.counts.delete(owner);
        self.deleting().remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> ObjectKey {
        ObjectKey::new(Some("ns"), "rs")
    }

    #[tokio::test(start_paused = true)]
    async fn unmet_until_observed_or_expired() {
        let e = Expectations::new();
        e.expect_creations(&owner(), 3);
        e.creation_observed(&owner());
        e.lower(&owner(), 1, 0); // one creation failed
        assert!(!e.satisfied(&owner()));
        assert_eq!(e.pending(&owner()), Some((1, 0)));
        tokio::time::sleep(EXPECTATIONS_TTL + Duration::from_secs(1)).await;
        assert!(e.satisfied(&owner()), "a stale record counts as met");
    }

    #[tokio::test(start_paused = true)]
    async fn deletions_raise_and_delete() {
        let e = Expectations::new();
        e.expect_deletions(&owner(), 1);
        e.raise(&owner(), 0, 1);
        e.deletion_observed(&owner());
        assert!(!e.satisfied(&owner()));
        e.deletion_observed(&owner());
        assert!(e.satisfied(&owner()));
        e.delete(&owner());
        assert_eq!(e.pending(&owner()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn uid_tracking_counts_each_expected_child_once() {
        let e = UidTrackingExpectations::new();
        e.expect_deletions(&owner(), ["ns/a".to_string(), "ns/b".to_string()]);
        e.deletion_observed(&owner(), "ns/a");
        e.deletion_observed(&owner(), "ns/a"); // seen again: not counted twice
        e.deletion_observed(&owner(), "ns/unrelated");
        assert!(!e.satisfied(&owner()));
        assert_eq!(e.expected_deletions(&owner()), ["ns/b"]);
        e.deletion_observed(&owner(), "ns/b");
        assert!(e.satisfied(&owner()));
    }
}
