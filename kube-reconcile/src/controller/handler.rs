//! Change handlers: small pure functions from an informer [`Change`] to the keys to
//! enqueue.

use std::sync::Arc;

use kube::Resource;

use crate::{ObjectKey, informer::Change, ownership, store::Store};

/// The keys a change maps to, for [`ControllerBuilder::watches`](super::ControllerBuilder::watches).
pub type Mapper<W> = Arc<dyn Fn(&Change<W>) -> Vec<ObjectKey> + Send + Sync>;

/// The key of the object itself: for the controller's primary type.
pub fn enqueue_self<K: Resource>(change: &Change<K>) -> Vec<ObjectKey> {
    vec![ObjectKey::of(&**change.object())]
}

/// The states a change is about: old and new for an update, else the one object.
pub fn states<W>(change: &Change<W>) -> impl Iterator<Item = &Arc<W>> {
    let (first, second) = match change {
        Change::Updated { old, new } => (old, Some(new)),
        Change::Added(o) | Change::Deleted(o) => (o, None),
    };
    std::iter::once(first).chain(second)
}

/// The controller owner of a child, if it is of type `K`, for both the old and the new
/// state of an update (so a changed controller reference enqueues both owners).
///
/// Only owners the primary store holds with the referenced UID are enqueued, as
/// kube-controller-manager resolves controller references: a reference to a deleted or
/// re-created owner maps to nothing, and an owner not cached yet is reconciled by its
/// own add event.
pub fn enqueue_controller_owner<K, C>(primary: &Store<K>, change: &Change<C>) -> Vec<ObjectKey>
where
    K: Resource<DynamicType = ()>,
    C: Resource,
{
    let mut keys = Vec::with_capacity(1);
    for child in states(change) {
        if let Some(key) = resolve_controller_owner(primary, &**child)
            && !keys.contains(&key)
        {
            keys.push(key);
        }
    }
    keys
}

/// The key of `child`'s controller owner if `primary` holds it with the referenced UID.
pub fn resolve_controller_owner<K, C>(primary: &Store<K>, child: &C) -> Option<ObjectKey>
where
    K: Resource<DynamicType = ()>,
    C: Resource,
{
    let owner = ownership::controller_of_kind::<K, C>(child)?;
    let key = ownership::controller_owner_key::<K, C>(child)?;
    let cached = primary.get(&key)?;
    (cached.meta().uid.as_deref() == Some(owner.uid.as_str())).then_some(key)
}
