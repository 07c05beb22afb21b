//! Server-side apply with a field manager, for typed objects and their status.
//!
//! Server-side apply sends the fields a controller wants and lets kube-apiserver merge
//! them, recording which manager owns which field: fields another manager set are kept,
//! fields this manager stops sending are removed, and two managers that want different
//! values for one field conflict (a controller usually forces, as [`Applier`] does by
//! default). `apiVersion` and `kind` come from the type, so a status needs no
//! hand-written envelope.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), kube_reconcile::apply::ApplyError> {
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_reconcile::apply::Applier;
//!
//! let applier = Applier::new(client, "my-operator");
//! let mut wanted = ConfigMap::default();
//! wanted.metadata.name = Some("settings".into());
//! wanted.metadata.namespace = Some("default".into());
//! wanted.data = Some([("mode".to_string(), "fast".to_string())].into());
//! let stored = applier.apply(&wanted).await?; // created, or merged into what is there
//! # Ok(()) }
//! ```
//!
//! Caveat: send only the fields you mean to own. A typed object sends every field that
//! is set (and, for custom types, every field that is not an `Option`): build the
//! object you apply from scratch rather than from a cached copy, or you take ownership
//! of fields others manage. `metadata.managedFields` is never sent.

use std::{any::TypeId, fmt::Debug, sync::Arc};

use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use serde::Serialize;
use serde_json::json;

use crate::{
    ObjectKey,
    informer::{ScopedApi, Watchable},
};

/// Why an apply failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The object to apply has no `metadata.name`.
    #[error("cannot apply a {kind} without metadata.name")]
    MissingName {
        /// The object's kind.
        kind: String,
    },
    /// kube-apiserver refused the apply, or could not be reached.
    #[error("applying {kind} {key} failed")]
    Api {
        /// The object's kind (`Kind` or `Kind status`).
        kind: String,
        /// The object's `namespace/name`.
        key: ObjectKey,
        /// The API error; a 409 is a conflict with another field manager.
        #[source]
        source: kube::Error,
    },
}

/// Called with each written object's type and returned resourceVersion.
pub(crate) type WriteObserver = Arc<dyn Fn(TypeId, &str) + Send + Sync>;

/// Applies typed objects server-side under one field manager. Cheap to clone.
///
/// Inside a reconcile, take it from [`Context::applier`](crate::context::Context::applier):
/// it is named after the controller, and the controller then waits for its caches to
/// show what was applied before reconciling the same object again.
#[derive(Clone)]
pub struct Applier {
    client: Client,
    field_manager: String,
    force: bool,
    observer: Option<WriteObserver>,
}

impl Debug for Applier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applier")
            .field("field_manager", &self.field_manager)
            .field("force", &self.force)
            .finish_non_exhaustive()
    }
}

impl Applier {
    /// Applies as `field_manager`, forcing conflicts (the usual choice for a
    /// controller, which is the authority on the fields it sets).
    pub fn new(client: Client, field_manager: impl Into<String>) -> Self {
        Self {
            client,
            field_manager: field_manager.into(),
            force: true,
            observer: None,
        }
    }

    /// Whether to take fields another manager owns (`true` by default). With `false`,
    /// such a conflict fails with a 409 naming the other manager.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// The field manager applies are made as.
    pub fn field_manager(&self) -> &str {
        &self.field_manager
    }

    pub(crate) fn observe_writes(mut self, observer: WriteObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    fn params(&self) -> PatchParams {
        let params = PatchParams::apply(&self.field_manager);
        if self.force { params.force() } else { params }
    }

    /// Applies `object` (its name and, for namespaced types, namespace say where) and
    /// returns the object as stored.
    pub async fn apply<K>(&self, object: &K) -> Result<K, ApplyError>
    where
        K: Watchable + Serialize,
    {
        let (api, name) = self.api_for(object)?;
        let mut sent = object.clone();
        sent.meta_mut().managed_fields = None;
        let stored = api
            .patch(&name, &self.params(), &Patch::Apply(&sent))
            .await
            .map_err(|source| api_error::<K>("", object, source))?;
        self.observed(&stored);
        Ok(stored)
    }

    /// Applies `status` to the status subresource of `object` (only its name and
    /// namespace are read), with `apiVersion`, `kind` and metadata filled in from the
    /// type. Returns the object as stored.
    pub async fn apply_status<K>(
        &self,
        object: &K,
        status: &impl Serialize,
    ) -> Result<K, ApplyError>
    where
        K: Watchable,
    {
        let (api, name) = self.api_for(object)?;
        let mut metadata = json!({ "name": name });
        if let Some(namespace) = object.namespace() {
            metadata["namespace"] = namespace.into();
        }
        let body = json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": metadata,
            "status": status,
        });
        let stored = api
            .patch_status(&name, &self.params(), &Patch::Apply(&body))
            .await
            .map_err(|source| api_error::<K>(" status", object, source))?;
        self.observed(&stored);
        Ok(stored)
    }

    fn api_for<K: Watchable>(&self, object: &K) -> Result<(Api<K>, String), ApplyError> {
        let name = object
            .meta()
            .name
            .clone()
            .ok_or_else(|| ApplyError::MissingName {
                kind: K::kind(&()).into_owned(),
            })?;
        let api = K::Scope::api::<K>(self.client.clone(), object.namespace().as_deref());
        Ok((api, name))
    }

    fn observed<K: Resource + 'static>(&self, stored: &K) {
        if let (Some(observer), Some(version)) = (&self.observer, &stored.meta().resource_version) {
            observer(TypeId::of::<K>(), version);
        }
    }
}

fn api_error<K: Resource<DynamicType = ()>>(
    what: &str,
    object: &K,
    source: kube::Error,
) -> ApplyError {
    ApplyError::Api {
        kind: format!("{}{what}", K::kind(&())),
        key: ObjectKey::of(object),
        source,
    }
}
