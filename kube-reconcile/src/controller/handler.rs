//! Event handlers: small pure functions from an informer event to the keys to enqueue.

use kube::{Resource, ResourceExt};

use crate::{ObjectKey, informer::Event, store::Store};

/// The keys an event maps to, for [`ControllerBuilder::watches`](super::ControllerBuilder::watches).
pub type Mapper<W> = std::sync::Arc<dyn Fn(&Event<W>) -> Vec<ObjectKey> + Send + Sync>;

/// The key of the object itself: for the controller's primary type.
pub fn enqueue_self<K: Resource>(event: &Event<K>) -> Vec<ObjectKey> {
    vec![ObjectKey::of(&**event.object())]
}

/// The controller owner of a child, if it is of type `K`, for both the old and the new
/// state of an update (so a changed controller reference enqueues both owners).
///
/// Only owners the primary store holds with the referenced UID are enqueued, as
/// kube-controller-manager resolves controller references: a reference to a deleted or
/// re-created owner maps to nothing, and an owner not cached yet is reconciled by its
/// own add event.
pub fn enqueue_controller_owner<K, C>(primary: &Store<K>, event: &Event<C>) -> Vec<ObjectKey>
where
    K: Resource<DynamicType = ()>,
    C: Resource,
{
    let states: &[&std::sync::Arc<C>] = match event {
        Event::Updated { old, new } => &[old, new],
        Event::Added(o) | Event::Deleted(o) => &[o],
    };
    let mut keys = Vec::with_capacity(1);
    for child in states {
        let Some(owner) = controller_owner_of::<K, C>(child) else {
            continue;
        };
        let key = ObjectKey::new(child.namespace().as_deref(), &owner.name);
        let same_object = primary
            .get(&key)
            .is_some_and(|current| current.meta().uid.as_deref() == Some(owner.uid.as_str()));
        if same_object && !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// The child's controller owner reference, if it points at a `K`.
pub fn controller_owner_of<K, C>(
    child: &C,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>
where
    K: Resource<DynamicType = ()>,
    C: Resource,
{
    let owner = child
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))?;
    let group_of = |api_version: &str| {
        api_version
            .rsplit_once('/')
            .map_or("", |(g, _)| g)
            .to_string()
    };
    let matches = owner.kind == K::kind(&()) && group_of(&owner.api_version) == K::group(&());
    matches.then_some(owner)
}
