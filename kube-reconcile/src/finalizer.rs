//! Finalizers: clean up before an object goes, safely against conflicts and stale
//! caches.
//!
//! [`finalizer`] (or [`Context::finalizer`] inside a reconcile) wraps a reconcile:
//! - an object that is not being deleted gets the finalizer first (if it lacks it),
//!   then the reconcile runs with [`FinalizerEvent::Apply`];
//! - an object being deleted that still carries the finalizer gets
//!   [`FinalizerEvent::Cleanup`]; when that succeeds, the finalizer is removed and
//!   kube-apiserver may delete the object;
//! - an object being deleted without it is left alone.
//!
//! **Conflicts.** Every finalizer edit is a JSON patch that first tests the list it
//! changes (and the object's UID), so a concurrent edit by someone else, or by another
//! worker on a stale copy, makes the patch fail instead of overwriting theirs; the
//! edit is then retried on a fresh read.
//!
//! **Stale caches.** The cached object may lag: it may lack a finalizer the server
//! already has (adding is then a no-op on the fresh read), or show a deleting object
//! whose cleanup already ran and whose finalizer is already gone. Before a cleanup the
//! object is read uncached, so a cleanup never runs for an object that no longer
//! carries the finalizer, and an object already gone (404) ends the reconcile quietly.
//! Cleanups should still be idempotent: a process may die after the cleanup and before
//! the finalizer is removed.
//!
//! ```no_run
//! use std::{convert::Infallible, sync::Arc};
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::Api;
//! use kube_reconcile::{finalizer::{FinalizerEvent, finalizer}, reconcile::Action};
//!
//! # async fn demo(api: Api<ConfigMap>, cached: Arc<ConfigMap>) -> Result<(), Box<dyn std::error::Error>> {
//! let action = finalizer(&api, "example.com/cleanup", cached, |event| async move {
//!     match event {
//!         FinalizerEvent::Apply(config_map) => { /* make the world match it */ }
//!         FinalizerEvent::Cleanup(config_map) => { /* remove what it made */ }
//!     }
//!     Ok::<_, Infallible>(Action::Done)
//! })
//! .await?;
//! # Ok(()) }
//! ```

use std::{fmt::Debug, future::Future, sync::Arc};

use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{context::Context, informer::ScopedApi, informer::Watchable, reconcile::Action};

/// How many times a finalizer edit is retried on a fresh read after a conflict.
const EDIT_TRIES: usize = 5;

/// What the wrapped reconcile is asked to do.
#[derive(Debug)]
pub enum FinalizerEvent<K> {
    /// The object is live and carries the finalizer: reconcile it as usual.
    Apply(Arc<K>),
    /// The object is being deleted and still carries the finalizer: clean up. The
    /// object is as just read from the API server.
    Cleanup(Arc<K>),
}

/// Why a finalized reconcile failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FinalizerError<E: std::error::Error + 'static> {
    /// The wrapped reconcile (apply or cleanup) failed; on a cleanup the finalizer
    /// stays, so it is retried.
    #[error("reconcile failed")]
    Reconcile(#[source] E),
    /// Adding or removing the finalizer, or the uncached read, failed.
    #[error("editing finalizer {finalizer} of {object} failed")]
    Api {
        /// The finalizer.
        finalizer: String,
        /// The object's `namespace/name`.
        object: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The finalizer list kept changing under us.
    #[error(
        "finalizer {finalizer} of {object}: the finalizer list kept changing ({EDIT_TRIES} tries)"
    )]
    Conflict {
        /// The finalizer.
        finalizer: String,
        /// The object's `namespace/name`.
        object: String,
    },
}

/// Runs `reconcile` under finalizer `name` as the [module docs](self) describe;
/// `object` is the cached object and `api` reaches it. Returns what the reconcile
/// returned, or [`Action::Done`] when there was nothing to do.
pub async fn finalizer<K, E, F, Fut>(
    api: &Api<K>,
    name: &str,
    object: Arc<K>,
    reconcile: F,
) -> Result<Action, FinalizerError<E>>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    E: std::error::Error + 'static,
    F: FnOnce(FinalizerEvent<K>) -> Fut,
    Fut: Future<Output = Result<Action, E>>,
{
    Finalizing {
        api,
        name,
        on_write: &|_: &K| {},
    }
    .run(object, reconcile)
    .await
}

impl Context {
    /// [`finalizer`] for the object being reconciled, reached with this context's
    /// client; its finalizer edits count as this reconcile's writes (see
    /// [`wrote`](Context::wrote)).
    pub async fn finalizer<K, E, F, Fut>(
        &self,
        name: &str,
        object: Arc<K>,
        reconcile: F,
    ) -> Result<Action, FinalizerError<E>>
    where
        K: Watchable,
        E: std::error::Error + 'static,
        F: FnOnce(FinalizerEvent<K>) -> Fut,
        Fut: Future<Output = Result<Action, E>>,
    {
        let api = K::Scope::api::<K>(self.client().clone(), object.namespace().as_deref());
        let on_write = |written: &K| self.wrote(written);
        Finalizing {
            api: &api,
            name,
            on_write: &on_write,
        }
        .run(object, reconcile)
        .await
    }
}

struct Finalizing<'a, K> {
    api: &'a Api<K>,
    name: &'a str,
    on_write: &'a (dyn Fn(&K) + Sync),
}

impl<K> Finalizing<'_, K>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    async fn run<E, F, Fut>(self, cached: Arc<K>, reconcile: F) -> Result<Action, FinalizerError<E>>
    where
        E: std::error::Error + 'static,
        F: FnOnce(FinalizerEvent<K>) -> Fut,
        Fut: Future<Output = Result<Action, E>>,
    {
        let deleting = cached.meta().deletion_timestamp.is_some();
        if deleting && !self.carried_by(&cached) {
            return Ok(Action::Done);
        }
        if !deleting {
            let Some(live) = self.add(cached.clone()).await? else {
                return Ok(Action::Done);
            };
            if live.meta().deletion_timestamp.is_none() {
                let action = reconcile(FinalizerEvent::Apply(live)).await;
                return action.map_err(FinalizerError::Reconcile);
            }
            // Deletion began meanwhile: fall through to the cleanup.
        }
        let Some(fresh) = self.fresh(&cached).await? else {
            return Ok(Action::Done);
        };
        if !self.carried_by(&fresh) {
            return Ok(Action::Done);
        }
        let action = reconcile(FinalizerEvent::Cleanup(Arc::new(fresh.clone())))
            .await
            .map_err(FinalizerError::Reconcile)?;
        self.remove(fresh).await?;
        Ok(action)
    }

    fn carried_by(&self, object: &K) -> bool {
        object.finalizers().iter().any(|f| f == self.name)
    }

    /// Adds the finalizer unless present; the object as it now is, or `None` if gone.
    async fn add<E: std::error::Error + 'static>(
        &self,
        cached: Arc<K>,
    ) -> Result<Option<Arc<K>>, FinalizerError<E>> {
        let mut current = cached;
        for _ in 0..EDIT_TRIES {
            if self.carried_by(&current) || current.meta().deletion_timestamp.is_some() {
                return Ok(Some(current));
            }
            let mut ops =
                vec![json!({"op": "test", "path": "/metadata/uid", "value": current.meta().uid})];
            match current.meta().finalizers.as_deref() {
                None | Some([]) => {
                    // No list to test: test the whole object's version instead.
                    ops.push(json!({"op": "test", "path": "/metadata/resourceVersion",
                                    "value": current.meta().resource_version}));
                    ops.push(
                        json!({"op": "add", "path": "/metadata/finalizers", "value": [self.name]}),
                    );
                }
                Some(list) => {
                    ops.push(json!({"op": "test", "path": "/metadata/finalizers", "value": list}));
                    ops.push(
                        json!({"op": "add", "path": "/metadata/finalizers/-", "value": self.name}),
                    );
                }
            }
            match self.patch(&current, ops).await? {
                Edit::Done(updated) => return Ok(Some(Arc::new(updated))),
                Edit::Gone => return Ok(None),
                Edit::Stale => match self.fresh(&current).await? {
                    Some(fresh) => current = Arc::new(fresh),
                    None => return Ok(None),
                },
            }
        }
        Err(self.conflict(&current))
    }

    /// Removes the finalizer from `fresh` (read uncached just before).
    async fn remove<E: std::error::Error + 'static>(
        &self,
        fresh: K,
    ) -> Result<(), FinalizerError<E>> {
        let mut current = fresh;
        for _ in 0..EDIT_TRIES {
            if !self.carried_by(&current) {
                return Ok(());
            }
            let list = current.finalizers().to_vec();
            let rest: Vec<&String> = list.iter().filter(|f| *f != self.name).collect();
            let ops = vec![
                json!({"op": "test", "path": "/metadata/uid", "value": current.meta().uid}),
                json!({"op": "test", "path": "/metadata/finalizers", "value": list}),
                json!({"op": "replace", "path": "/metadata/finalizers", "value": rest}),
            ];
            match self.patch(&current, ops).await? {
                Edit::Done(_) | Edit::Gone => return Ok(()),
                Edit::Stale => match self.fresh(&current).await? {
                    Some(fresh) => current = fresh,
                    None => return Ok(()),
                },
            }
        }
        Err(self.conflict(&current))
    }

    /// The object read uncached, or `None` if it is gone or was re-created.
    async fn fresh<E: std::error::Error + 'static>(
        &self,
        object: &K,
    ) -> Result<Option<K>, FinalizerError<E>> {
        let fresh = self
            .api
            .get_opt(&object.name_any())
            .await
            .map_err(|source| self.api_error(object, source))?;
        Ok(fresh.filter(|f| f.meta().uid == object.meta().uid))
    }

    async fn patch<E: std::error::Error + 'static>(
        &self,
        object: &K,
        ops: Vec<Value>,
    ) -> Result<Edit<K>, FinalizerError<E>> {
        let patch: json_patch::Patch =
            serde_json::from_value(Value::Array(ops)).expect("finalizer patches are well-formed");
        let result = self
            .api
            .patch(
                &object.name_any(),
                &PatchParams::default(),
                &Patch::<()>::Json(patch),
            )
            .await;
        match result {
            Ok(updated) => {
                (self.on_write)(&updated);
                Ok(Edit::Done(updated))
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(Edit::Gone),
            // A failed `test` (someone changed the list or the object) is a 422.
            Err(kube::Error::Api(status)) if status.code == 422 || status.code == 409 => {
                Ok(Edit::Stale)
            }
            Err(source) => Err(self.api_error(object, source)),
        }
    }

    fn api_error<E: std::error::Error + 'static>(
        &self,
        object: &K,
        source: kube::Error,
    ) -> FinalizerError<E> {
        FinalizerError::Api {
            finalizer: self.name.to_string(),
            object: describe(object),
            source,
        }
    }

    fn conflict<E: std::error::Error + 'static>(&self, object: &K) -> FinalizerError<E> {
        FinalizerError::Conflict {
            finalizer: self.name.to_string(),
            object: describe(object),
        }
    }
}

enum Edit<K> {
    Done(K),
    Gone,
    Stale,
}

fn describe<K: Resource>(object: &K) -> String {
    crate::ObjectKey::of(object).to_string()
}
