//! Controller references: claiming children for an owner, as kube-controller-manager's
//! controllers do.
//!
//! [`ControllerRefManager::claim`] sorts candidate children (usually every cached child
//! in the owner's namespace) into the owner's:
//! - a child controlled by this owner stays claimed while the selector matches it; when
//!   it stops matching it is **released** (its controller reference removed), unless
//!   the owner is being deleted;
//! - an orphan (no controller reference) that matches is **adopted** (a controller
//!   reference to the owner added), but only after an uncached GET shows the owner
//!   still exists with the same UID and is not being deleted; orphans that are being
//!   deleted are left alone;
//! - a child controlled by anything else is never touched.
//!
//! Writes are strategic-merge patches that carry the child's UID, so they never apply
//! to a re-created object of the same name; a child that vanished meanwhile is skipped.

use std::{fmt::Debug, sync::Arc};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::OnceCell;

use crate::{ObjectKey, selector::Selector};

mod tag;

pub use tag::OwnerTag;

/// Why claiming failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// The uncached owner check failed: the owner is gone, re-created or deleting.
    #[error("cannot adopt for {owner}: {reason}")]
    CannotAdopt {
        /// The owner's `namespace/name`.
        owner: String,
        /// What the uncached read showed.
        reason: String,
    },
    /// A patch or the owner GET failed.
    #[error("claiming {child} for {owner} failed")]
    Api {
        /// The owner's `namespace/name`.
        owner: String,
        /// The child.
        child: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// Claims children of type `C` for one owner of type `P`.
pub struct ControllerRefManager<'a, P, C> {
    owner: &'a P,
    owner_api: Api<P>,
    children: Api<C>,
    selector: &'a Selector,
    field_manager: String,
    adoptable: OnceCell<Result<(), String>>,
}

impl<P, C> Debug for ControllerRefManager<'_, P, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerRefManager")
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

impl<'a, P, C> ControllerRefManager<'a, P, C>
where
    P: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    C: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    /// A manager for `owner` (as cached), whose children live in `children`' namespace
    /// and match `selector`. `owner_api` serves the uncached check before adoption.
    pub fn new(owner: &'a P, owner_api: Api<P>, children: Api<C>, selector: &'a Selector) -> Self {
        Self {
            owner,
            owner_api,
            children,
            selector,
            field_manager: "kube-reconcile".to_string(),
            adoptable: OnceCell::new(),
        }
    }

    /// The field manager named on adoption and release patches.
    pub fn field_manager(mut self, name: impl Into<String>) -> Self {
        self.field_manager = name.into();
        self
    }

    /// Returns the children that belong to the owner after adopting and releasing as
    /// described in the module docs. On an error, children already handled keep their
    /// new state; call again on the next reconcile.
    pub async fn claim(&self, candidates: &[Arc<C>]) -> Result<Vec<Arc<C>>, ClaimError> {
        let owner_uid = self.owner.meta().uid.clone().unwrap_or_default();
        let owner_deleting = self.owner.meta().deletion_timestamp.is_some();
        let mut claimed = Vec::new();
        for child in candidates {
            let matches = self.selector.matches_object(&**child);
            match controller_of(&**child) {
                Some(owner) if owner.uid == owner_uid => {
                    if matches || owner_deleting {
                        // A deleting owner keeps its children for the garbage collector.
                        if matches {
                            claimed.push(child.clone());
                        }
                    } else {
                        self.release(child).await?;
                    }
                }
                Some(_) => {}
                None => {
                    let adoptable = matches
                        && !owner_deleting
                        && child.meta().deletion_timestamp.is_none()
                        && child.namespace() == self.owner.namespace();
                    if adoptable && self.adopt(child).await? {
                        claimed.push(child.clone());
                    }
                }
            }
        }
        Ok(claimed)
    }

    /// Checks, once per manager, with an uncached GET, that the owner may adopt.
    async fn can_adopt(&self) -> Result<(), ClaimError> {
        let verdict = self
            .adoptable
            .get_or_try_init(|| async {
                let name = self.owner.name_any();
                let fresh = self
                    .owner_api
                    .get_opt(&name)
                    .await
                    .map_err(|source| self.api_error(&name, source))?;
                Ok::<_, ClaimError>(match fresh {
                    None => Err("the owner no longer exists".to_string()),
                    Some(fresh) if fresh.meta().uid != self.owner.meta().uid => {
                        Err("the owner was deleted and re-created".to_string())
                    }
                    Some(fresh) if fresh.meta().deletion_timestamp.is_some() => {
                        Err("the owner is being deleted".to_string())
                    }
                    Some(_) => Ok(()),
                })
            })
            .await?;
        verdict.clone().map_err(|reason| ClaimError::CannotAdopt {
            owner: self.owner_key(),
            reason,
        })
    }

    /// Returns whether the child was adopted (false if it vanished meanwhile).
    async fn adopt(&self, child: &C) -> Result<bool, ClaimError> {
        self.can_adopt().await?;
        let reference = controller_reference(self.owner);
        let patch = json!({"metadata": {"ownerReferences": [reference], "uid": child.meta().uid}});
        self.patch(child, patch).await
    }

    async fn release(&self, child: &C) -> Result<bool, ClaimError> {
        let patch = json!({"metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": self.owner.meta().uid}],
            "uid": child.meta().uid,
        }});
        self.patch(child, patch).await
    }

    async fn patch(&self, child: &C, patch: serde_json::Value) -> Result<bool, ClaimError> {
        let name = child.name_any();
        let params = PatchParams {
            field_manager: Some(self.field_manager.clone()),
            ..PatchParams::default()
        };
        match self
            .children
            .patch(&name, &params, &Patch::Strategic(patch))
            .await
        {
            Ok(_) => Ok(true),
            // Gone, or re-created under the same name (the UID precondition failed).
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 422 => Ok(false),
            Err(source) => Err(self.api_error(&name, source)),
        }
    }

    fn owner_key(&self) -> String {
        let owner = self.owner;
        format!(
            "{}/{}",
            owner.namespace().unwrap_or_default(),
            owner.name_any()
        )
    }

    fn api_error(&self, child: &str, source: kube::Error) -> ClaimError {
        ClaimError::Api {
            owner: self.owner_key(),
            child: child.to_string(),
            source,
        }
    }
}

/// A controller reference to `owner`, to put in a child's `ownerReferences`: the
/// owner's `apiVersion`, kind, name and UID, with `controller` and
/// `blockOwnerDeletion` set (so foreground deletion of the owner waits for the child).
///
/// The owner should come from the API server (a cache or a read): an object that was
/// never stored has no UID, and the API server refuses a reference without one.
///
/// ```
/// use k8s_openapi::api::apps::v1::ReplicaSet;
/// use kube_reconcile::ownership::controller_reference;
///
/// let mut rs = ReplicaSet::default();
/// rs.metadata.name = Some("web".into());
/// rs.metadata.uid = Some("0c6c6a4e-3b5f-4f5e-9d43-0a9ab7b2c1d2".into());
///
/// let reference = controller_reference(&rs);
/// assert_eq!(reference.api_version, "apps/v1");
/// assert_eq!(reference.kind, "ReplicaSet");
/// assert_eq!(reference.name, "web");
/// assert_eq!(reference.uid, "0c6c6a4e-3b5f-4f5e-9d43-0a9ab7b2c1d2");
/// assert_eq!(reference.controller, Some(true));
/// assert_eq!(reference.block_owner_deletion, Some(true));
/// ```
pub fn controller_reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The object's controller owner reference, if any.
pub fn controller_of<K: Resource>(object: &K) -> Option<&OwnerReference> {
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// The child's controller owner reference if it points at an `O` (same kind and API
/// group; the version may differ).
pub fn controller_of_kind<O, C>(child: &C) -> Option<&OwnerReference>
where
    O: Resource<DynamicType = ()>,
    C: Resource,
{
    let owner = controller_of(child)?;
    let group = owner.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    (owner.kind == O::kind(&()) && group == O::group(&())).then_some(owner)
}

/// The key of the child's controller owner if it is an `O`: the owner's name in the
/// child's namespace (an owner reference never crosses namespaces). Says nothing of
/// whether that owner still exists with the referenced UID; see
/// [`handler::enqueue_controller_owner`](crate::controller::handler::enqueue_controller_owner)
/// for the check against a cache.
///
/// ```
/// use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
/// use kube_reconcile::{ObjectKey, ownership::controller_owner_key};
///
/// let pod: Pod = serde_json::from_value(serde_json::json!({
///     "metadata": {"namespace": "default", "name": "web-x7k2p", "ownerReferences": [
///         {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
///          "uid": "9d1c", "controller": true}]},
/// })).unwrap();
/// assert_eq!(controller_owner_key::<ReplicaSet, _>(&pod), Some(ObjectKey::new(Some("default"), "web")));
/// assert_eq!(controller_owner_key::<Pod, _>(&pod), None);
/// ```
pub fn controller_owner_key<O, C>(child: &C) -> Option<ObjectKey>
where
    O: Resource<DynamicType = ()>,
    C: Resource,
{
    let owner = controller_of_kind::<O, C>(child)?;
    Some(ObjectKey::new(child.namespace().as_deref(), &owner.name))
}

/// Whether `child`'s controller owner reference names `owner`'s UID.
pub fn is_controlled_by<C: Resource, O: Resource>(child: &C, owner: &O) -> bool {
    controller_of(child).is_some_and(|r| Some(&r.uid) == owner.meta().uid.as_ref())
}
