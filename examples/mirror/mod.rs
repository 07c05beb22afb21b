//! A small operator with a child in another namespace: a ConfigMap annotated
//! `mirror.kube-reconcile.dev/to: <namespace>` is copied, same name, into that
//! namespace, and kept equal to its source.
//!
//! An ownerReference cannot cross namespaces, so the copy points at its source with an
//! [`OwnerTag`] (a label and an annotation), and changes to a copy map back to its
//! source through the tag. The garbage collector does not follow tags, so a finalizer
//! on the source deletes the copies before the source goes. Shared by the
//! `configmap-mirror` example and its integration test.

use std::sync::Arc;

use k8s_openapi::{api::core::v1::ConfigMap, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::{Api, ResourceExt, api::DeleteParams};
use kube_reconcile::{
    apply::ApplyError, finalizer::FinalizerError, ownership::OwnerTag, prelude::*,
};

/// The controller's name and field manager.
pub const NAME: &str = "configmap-mirror";
/// The annotation naming the namespace to copy a ConfigMap to.
pub const MIRROR_TO: &str = "mirror.kube-reconcile.dev/to";
/// The finalizer that deletes a source's copies before it goes.
pub const FINALIZER: &str = "mirror.kube-reconcile.dev/cleanup";
/// The event reason after a copy was written.
pub const REASON_MIRRORED: &str = "Mirrored";
/// The store index of copies by their source's UID.
const COPIES_BY_SOURCE: &str = "mirror-copies-by-source";

/// How copies point at their source.
pub fn tag() -> OwnerTag {
    OwnerTag::new("mirror.kube-reconcile.dev")
}

/// What can fail in a sync; retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing a copy failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Deleting a copy failed.
    #[error("deleting copy {copy} failed")]
    Delete {
        /// The copy's `namespace/name`.
        copy: ObjectKey,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Adding or removing the finalizer failed (or the wrapped work, above).
    #[error(transparent)]
    Finalizer(#[from] FinalizerError<Box<Error>>),
}

/// The mirroring reconciler.
pub struct Mirror {
    config_maps: Store<ConfigMap>,
    tag: OwnerTag,
}

/// The controller for the ConfigMaps in `scope` that ask to be mirrored (or still carry
/// the finalizer); copies anywhere in `scope` map back to their source.
pub fn controller(factory: &InformerFactory, scope: &Scope) -> Controller<ConfigMap, Mirror> {
    let tag = tag();
    let builder = Controller::<ConfigMap>::builder(NAME, factory, scope)
        .filter(|change| is_source(change.object()))
        .watches::<ConfigMap>(scope, tag.mapper())
        // The finalizer is a patch (re-reading its object before a cleanup); the copy is
        // applied server-side (a patch that creates it the first time: create too);
        // copies are deleted.
        .needs::<ConfigMap>(&["get", "create", "patch", "delete"]);
    let config_maps = builder.store::<ConfigMap>().expect("the primary type");
    let index_tag = tag.clone();
    config_maps.add_index(COPIES_BY_SOURCE, move |cm: &ConfigMap| {
        index_tag
            .owner_uid(cm)
            .map(String::from)
            .into_iter()
            .collect()
    });
    builder.build(Mirror { config_maps, tag })
}

fn is_source(cm: &ConfigMap) -> bool {
    cm.annotations().contains_key(MIRROR_TO) || cm.finalizers().iter().any(|f| f == FINALIZER)
}

impl Reconcile<ConfigMap> for Mirror {
    type Error = Error;

    async fn reconcile(&self, request: Request<ConfigMap>) -> Result<Action, Error> {
        let Some(source) = request.object.filter(|cm| is_source(cm)) else {
            return Ok(Action::Done);
        };
        let ctx = &request.ctx;
        let action = ctx
            .finalizer(FINALIZER, source, |event| async move {
                match event {
                    FinalizerEvent::Apply(source) => self.mirror(ctx, &source).await,
                    FinalizerEvent::Cleanup(source) => self.remove_copies(ctx, &source, None).await,
                }
                .map_err(Box::new)
            })
            .await?;
        Ok(action)
    }
}

impl Mirror {
    /// Writes the copy where the annotation says, and removes copies elsewhere (the
    /// annotation changed or went).
    async fn mirror(&self, ctx: &Context, source: &Arc<ConfigMap>) -> Result<Action, Error> {
        let target = source.annotations().get(MIRROR_TO).cloned();
        if let Some(namespace) = &target {
            let copy = self.copy_of(source, namespace);
            ctx.applier().apply(&copy).await?;
            let message = format!("Mirrored to {namespace}/{}", source.name_any());
            ctx.event(EventType::Normal, REASON_MIRRORED, &message);
        }
        self.remove_copies(ctx, source, target.as_deref()).await
    }

    fn copy_of(&self, source: &ConfigMap, namespace: &str) -> ConfigMap {
        let mut copy = ConfigMap {
            metadata: ObjectMeta {
                name: source.metadata.name.clone(),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            data: source.data.clone(),
            binary_data: source.binary_data.clone(),
            immutable: None,
        };
        self.tag.mark(&mut copy, source);
        copy
    }

    /// Deletes the source's cached copies, except the one in `keep` (a namespace).
    async fn remove_copies(
        &self,
        ctx: &Context,
        source: &ConfigMap,
        keep: Option<&str>,
    ) -> Result<Action, Error> {
        let uid = source.uid().unwrap_or_default();
        let copies = self
            .config_maps
            .by_index(COPIES_BY_SOURCE, &uid)
            .expect("the index is added with the controller");
        for copy in copies {
            if copy.namespace().as_deref() == keep || !self.tag.is_owned_by(&*copy, source) {
                continue;
            }
            let namespace = copy.namespace().unwrap_or_default();
            let api = Api::<ConfigMap>::namespaced(ctx.client().clone(), &namespace);
            match api.delete(&copy.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => {
                    return Err(Error::Delete {
                        copy: ObjectKey::of(&*copy),
                        source,
                    });
                }
            }
        }
        Ok(Action::Done)
    }
}
