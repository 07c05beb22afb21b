//! Least-privilege RBAC from code: a controller knows what it watches (its informers
//! need `list` and `watch`), it declares what else it does
//! ([`ControllerBuilder::needs`](crate::controller::ControllerBuilder::needs)), and
//! it records events; a [`Manager`](crate::manager::Manager) adds its leader Lease.
//! [`Permissions::cluster_role`] turns that into the ClusterRole to run with.
//!
//! ```
//! use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
//! use kube_reconcile::rbac::{Permissions, READ};
//!
//! let mut permissions = Permissions::new();
//! permissions
//!     .allow::<ReplicaSet>(READ)
//!     .allow::<Pod>(&["list", "watch", "create", "delete"])
//!     .allow_subresource::<ReplicaSet>("status", &["update"]);
//! assert!(permissions.allows("apps", "replicasets/status", "update"));
//! assert!(!permissions.allows("", "pods", "patch"));
//! let role = permissions.cluster_role("replicaset-controller");
//! assert_eq!(role.rules.unwrap().len(), 3);
//! ```
//!
//! A request the role does not allow fails with kube-apiserver's 403, whose message
//! names the user, verb, resource and namespace; the controller logs it as such.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::{
    api::rbac::v1::{ClusterRole, PolicyRule},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::Resource;

/// What an informer needs: `list` and `watch` (a cache never `get`s).
pub const WATCH: &[&str] = &["list", "watch"];
/// Reading one object by name as well as watching.
pub const READ: &[&str] = &["get", "list", "watch"];

/// Verbs per API group and resource (`pods`, or a subresource such as
/// `replicasets/status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    verbs: BTreeMap<(String, String), BTreeSet<String>>,
}

impl Permissions {
    /// Nothing allowed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows `verbs` on `K`'s resource.
    pub fn allow<K: Resource<DynamicType = ()>>(&mut self, verbs: &[&str]) -> &mut Self {
        self.allow_resource(&K::group(&()), &K::plural(&()), verbs)
    }

    /// Allows `verbs` on a subresource of `K` (`status`, `scale`, ...).
    pub fn allow_subresource<K: Resource<DynamicType = ()>>(
        &mut self,
        subresource: &str,
        verbs: &[&str],
    ) -> &mut Self {
        let resource = format!("{}/{subresource}", K::plural(&()));
        self.allow_resource(&K::group(&()), &resource, verbs)
    }

    /// Allows `verbs` on `resource` of API `group` (`""` for the core group).
    pub fn allow_resource(&mut self, group: &str, resource: &str, verbs: &[&str]) -> &mut Self {
        let entry = self
            .verbs
            .entry((group.to_string(), resource.to_string()))
            .or_default();
        entry.extend(verbs.iter().map(|v| v.to_string()));
        self
    }

    /// Adds everything `other` allows.
    pub fn merge(&mut self, other: &Permissions) -> &mut Self {
        for ((group, resource), verbs) in &other.verbs {
            let entry = self
                .verbs
                .entry((group.clone(), resource.clone()))
                .or_default();
            entry.extend(verbs.iter().cloned());
        }
        self
    }

    /// Whether `verb` on `resource` of `group` is allowed.
    pub fn allows(&self, group: &str, resource: &str, verb: &str) -> bool {
        self.verbs
            .get(&(group.to_string(), resource.to_string()))
            .is_some_and(|verbs| verbs.contains(verb))
    }

    /// The rules, one per API group and set of verbs (resources sharing both share a
    /// rule), in a stable order.
    pub fn rules(&self) -> Vec<PolicyRule> {
        let mut grouped: BTreeMap<(String, Vec<String>), Vec<String>> = BTreeMap::new();
        for ((group, resource), verbs) in &self.verbs {
            let verbs: Vec<String> = verbs.iter().cloned().collect();
            grouped
                .entry((group.clone(), verbs))
                .or_default()
                .push(resource.clone());
        }
        grouped
            .into_iter()
            .map(|((group, verbs), resources)| PolicyRule {
                api_groups: Some(vec![group]),
                resources: Some(resources),
                verbs,
                ..PolicyRule::default()
            })
            .collect()
    }

    /// The ClusterRole `name` granting exactly these permissions (bind it with a
    /// RoleBinding to confine it to namespaces).
    pub fn cluster_role(&self, name: &str) -> ClusterRole {
        ClusterRole {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            rules: Some(self.rules()),
            ..ClusterRole::default()
        }
    }
}
