//! The condition lists of the `apps/v1` kinds. `DeploymentCondition`,
//! `ReplicaSetCondition`, `StatefulSetCondition` and `DaemonSetCondition` predate
//! `metav1.Condition` (see [`crate::conditions`] for that one) and follow
//! kube-controller-manager's rules instead:
//!
//! - setting a condition whose status *and* reason are unchanged does nothing (its
//!   message and times stay as they were);
//! - otherwise the entry is replaced and moved to the end of the list, keeping its
//!   `lastTransitionTime` when only the reason changed.
//!
//! ```
//! use k8s_openapi::api::apps::v1::DeploymentCondition;
//! use kube_reconcile::workloads::conditions;
//!
//! let available = |status: &str, reason: &str| DeploymentCondition {
//!     type_: Some("Available".into()),
//!     status: Some(status.into()),
//!     reason: Some(reason.into()),
//!     ..Default::default()
//! };
//! let mut list = Vec::new();
//! assert!(conditions::set(&mut list, available("False", "MinimumReplicasUnavailable")));
//! assert!(!conditions::set(&mut list, available("False", "MinimumReplicasUnavailable")));
//! assert!(conditions::set(&mut list, available("True", "MinimumReplicasAvailable")));
//! assert_eq!(list.len(), 1);
//! assert_eq!(conditions::find(&list, "Available").unwrap().status.as_deref(), Some("True"));
//! assert!(conditions::remove(&mut list, "Available"));
//! assert!(list.is_empty());
//! ```

use k8s_openapi::{
    api::apps::v1::{
        DaemonSetCondition, DeploymentCondition, ReplicaSetCondition, StatefulSetCondition,
    },
    apimachinery::pkg::apis::meta::v1::Time,
};

/// A condition of an `apps/v1` kind: what [`set`], [`find`] and [`remove`] read.
pub trait AppsCondition: Clone {
    /// The condition type, e.g. `Available`.
    fn type_(&self) -> &str;
    /// `True`, `False` or `Unknown`.
    fn status(&self) -> &str;
    /// The machine-readable reason.
    fn reason(&self) -> Option<&str>;
    /// When the status last changed.
    fn last_transition_time(&self) -> Option<&Time>;
    /// Sets when the status last changed.
    fn set_last_transition_time(&mut self, time: Option<Time>);
}

macro_rules! apps_condition {
    ($($condition:ty),*) => {$(
        impl AppsCondition for $condition {
            fn type_(&self) -> &str {
                self.type_.as_deref().unwrap_or_default()
            }
            fn status(&self) -> &str {
                self.status.as_deref().unwrap_or_default()
            }
            fn reason(&self) -> Option<&str> {
                self.reason.as_deref()
            }
            fn last_transition_time(&self) -> Option<&Time> {
                self.last_transition_time.as_ref()
            }
            fn set_last_transition_time(&mut self, time: Option<Time>) {
                self.last_transition_time = time;
            }
        }
    )*};
}

apps_condition!(
    DeploymentCondition,
    ReplicaSetCondition,
    StatefulSetCondition,
    DaemonSetCondition
);

/// Sets `condition` by the rules in the module docs; returns whether the list changed.
pub fn set<C: AppsCondition>(conditions: &mut Vec<C>, mut condition: C) -> bool {
    if let Some(current) = find(conditions, condition.type_())
        && current.status() == condition.status()
    {
        if current.reason() == condition.reason() {
            return false;
        }
        condition.set_last_transition_time(current.last_transition_time().cloned());
    }
    remove(conditions, condition.type_());
    conditions.push(condition);
    true
}

/// The entry of type `type_`, if any.
pub fn find<'a, C: AppsCondition>(conditions: &'a [C], type_: &str) -> Option<&'a C> {
    conditions.iter().find(|c| c.type_() == type_)
}

/// Removes every entry of type `type_`; returns whether there was one.
pub fn remove<C: AppsCondition>(conditions: &mut Vec<C>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_() != type_);
    conditions.len() != before
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    #[test]
    fn a_new_reason_keeps_the_transition_time_and_moves_the_entry_last() {
        let at = |seconds: i64| Some(Time(Timestamp::from_second(seconds).unwrap()));
        let condition = |type_: &str, reason: &str, time: i64| ReplicaSetCondition {
            type_: Some(type_.into()),
            status: Some("True".into()),
            reason: Some(reason.into()),
            last_transition_time: at(time),
            ..Default::default()
        };
        let mut list = vec![condition("A", "First", 10), condition("B", "Other", 20)];
        assert!(set(&mut list, condition("A", "Second", 30)));
        assert_eq!(list[1].reason.as_deref(), Some("Second"));
        assert_eq!(list[1].last_transition_time, at(10));
    }
}
