//! Owners of children that cannot carry an ownerReference.

use std::collections::BTreeMap;

use kube::{Resource, ResourceExt};

use crate::{ObjectKey, controller::handler::states, informer::Change};

/// Links a child to an owner that an ownerReference cannot name: an owner in another
/// namespace, or a namespaced owner of a cluster-scoped child. The child carries the
/// owner's `namespace/name` in an annotation and its UID in a label (so children can be
/// listed, or an informer scoped, by owner); [`mapper`](Self::mapper) maps the child's
/// changes back to the owner's key, for both states of an update.
///
/// Caveat: nothing deletes such children for you (the garbage collector follows only
/// ownerReferences): remove them in a [finalizer](crate::finalizer) of the owner.
///
/// ```
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kube_reconcile::{ObjectKey, ownership::OwnerTag};
///
/// let tag = OwnerTag::new("mirror.example.com");
/// let mut owner = ConfigMap::default();
/// owner.metadata.namespace = Some("team-a".into());
/// owner.metadata.name = Some("settings".into());
/// owner.metadata.uid = Some("4f1e".into());
///
/// let mut copy = ConfigMap::default();
/// copy.metadata.namespace = Some("team-b".into());
/// copy.metadata.name = Some("settings".into());
/// tag.mark(&mut copy, &owner);
/// assert_eq!(tag.owner_key(&copy), Some(ObjectKey::new(Some("team-a"), "settings")));
/// assert_eq!(tag.owner_uid(&copy), Some("4f1e"));
/// assert_eq!(tag.selector(&owner), "mirror.example.com/owner-uid=4f1e");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerTag {
    annotation: String,
    label: String,
}

impl OwnerTag {
    /// Keys under `prefix` (a DNS subdomain you own): the annotation `<prefix>/owner`
    /// and the label `<prefix>/owner-uid`.
    pub fn new(prefix: &str) -> Self {
        Self {
            annotation: format!("{prefix}/owner"),
            label: format!("{prefix}/owner-uid"),
        }
    }

    /// The annotation key holding the owner's `namespace/name`.
    pub fn annotation_key(&self) -> &str {
        &self.annotation
    }

    /// The label key holding the owner's UID.
    pub fn label_key(&self) -> &str {
        &self.label
    }

    /// The label and annotation that point `child` at `owner`, to put in the child's
    /// metadata (e.g. in an object you apply).
    pub fn labels_and_annotations<O: Resource>(
        &self,
        owner: &O,
    ) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let labels = BTreeMap::from([(self.label.clone(), owner.uid().unwrap_or_default())]);
        let annotations =
            BTreeMap::from([(self.annotation.clone(), ObjectKey::of(owner).to_string())]);
        (labels, annotations)
    }

    /// Points `child` at `owner`, keeping the child's other labels and annotations.
    pub fn mark<C: Resource, O: Resource>(&self, child: &mut C, owner: &O) {
        let (labels, annotations) = self.labels_and_annotations(owner);
        child.labels_mut().extend(labels);
        child.annotations_mut().extend(annotations);
    }

    /// The owner's key, if `child` carries one.
    pub fn owner_key<C: Resource>(&self, child: &C) -> Option<ObjectKey> {
        let value = child.annotations().get(&self.annotation)?;
        let (namespace, name) = match value.split_once('/') {
            Some((namespace, name)) => (Some(namespace), name),
            None => (None, value.as_str()),
        };
        (!name.is_empty()).then(|| ObjectKey::new(namespace, name))
    }

    /// The owner's UID, if `child` carries one.
    pub fn owner_uid<'a, C: Resource>(&self, child: &'a C) -> Option<&'a str> {
        child.labels().get(&self.label).map(String::as_str)
    }

    /// Whether `child` is tagged with this `owner` (key and UID both match).
    pub fn is_owned_by<C: Resource, O: Resource>(&self, child: &C, owner: &O) -> bool {
        self.owner_key(child) == Some(ObjectKey::of(owner))
            && self.owner_uid(child) == owner.meta().uid.as_deref()
    }

    /// A label selector for the children of `owner`.
    pub fn selector<O: Resource>(&self, owner: &O) -> String {
        format!("{}={}", self.label, owner.uid().unwrap_or_default())
    }

    /// A mapper for [`ControllerBuilder::watches`](crate::controller::ControllerBuilder::watches):
    /// a change to a tagged child enqueues its owner, and an update that moved the
    /// child to another owner (or untagged it) enqueues the old owner too.
    pub fn mapper<C: Resource>(
        &self,
    ) -> impl Fn(&Change<C>) -> Vec<ObjectKey> + Send + Sync + 'static {
        let tag = self.clone();
        move |change| {
            let mut keys: Vec<ObjectKey> = states(change)
                .filter_map(|child| tag.owner_key(&**child))
                .collect();
            keys.dedup();
            keys
        }
    }
}
