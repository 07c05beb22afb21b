//! What a reconciler is: the trait, its request, the [`Action`] it returns and what
//! happens [`OnError`].
//!
//! The types here depend on nothing in the crate but [`ObjectKey`] and the
//! [`crate::context::Context`] a request carries, so reconcilers (and their
//! tests) can be written against this module alone.
//!
//! ```
//! use std::{convert::Infallible, time::Duration};
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_reconcile::reconcile::{Action, Reconcile, Request};
//!
//! struct Counter;
//!
//! impl Reconcile<ConfigMap> for Counter {
//!     type Error = Infallible;
//!
//!     async fn reconcile(&self, request: Request<ConfigMap>) -> Result<Action, Infallible> {
//!         match request.object {
//!             // Deleted: nothing left to do.
//!             None => Ok(Action::Done),
//!             // Look again in a minute, as a periodic check.
//!             Some(_config_map) => Ok(Action::RequeueAfter(Duration::from_secs(60))),
//!         }
//!     }
//! }
//! ```

use std::{future::Future, sync::Arc, time::Duration};

use crate::{ObjectKey, context::Context};

/// What the reconciler is asked to act on: the key, the object as the cache holds it
/// now (`None` if it is gone), and the [`Context`] of this reconcile (client, event
/// recorder, server-side apply, finalizers, cancellation). The cached object may be a
/// little behind the server; the controller makes sure it is not behind the
/// controller's own writes made through the context (see
/// [`Context::wrote`](crate::context::Context::wrote)).
#[derive(Debug)]
pub struct Request<K> {
    /// The object's `namespace/name`.
    pub key: ObjectKey,
    /// The cached object, if the cache holds one.
    pub object: Option<Arc<K>>,
    /// This reconcile's context.
    pub ctx: Context,
}

impl<K> Clone for Request<K> {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            object: self.object.clone(),
            ctx: self.ctx.clone(),
        }
    }
}

/// What to do with the key after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing more until the next event; the key's failure history is cleared.
    Done,
    /// Reconcile again after this delay (failure history cleared), e.g. to re-check a
    /// deadline. An event before then reconciles sooner.
    RequeueAfter(Duration),
    /// Reconcile again after the rate limiter's next backoff step, as if it failed but
    /// without counting an error.
    Requeue,
}

/// What to do with a key whose reconcile failed: chosen per error by
/// [`Reconcile::error_policy`].
///
/// **An overloaded or unreachable API server is not the key's fault.** With
/// `Backoff` (the default), an error whose source chain holds a [`kube::Error`] that
/// [`server_overloaded`](crate::client::server_overloaded) (429 after the client's
/// `Retry-After` retries, 502/503/504, a refused or broken connection, a timeout) does
/// not step the key's own backoff: the key waits with every other such key for the
/// server to answer one probe, and is retried within moments of its recovery (see
/// [`ControllerBuilder::overload_backoff`](crate::controller::ControllerBuilder::overload_backoff)).
/// Under client-go's per-key backoff a minute of 429s leaves keys sleeping for many
/// minutes after the server recovered (5 ms doubling to 1000 s on every failure).
/// `overload_backoff(None)` restores client-go's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Retry after the rate limiter's next backoff step for this key (the default);
    /// after an overloaded or unreachable server, once it answers again (see above).
    Backoff,
    /// Retry after exactly this delay (the key's backoff history is kept, so a later
    /// `Backoff` continues where it was).
    RetryAfter(Duration),
    /// Do not retry until the next event: bad input a retry cannot fix. Counted in
    /// `controller_runtime_terminal_reconcile_errors_total`.
    Terminal,
}

/// Brings the world in line with one object. Implement it on a struct that holds what
/// the reconciler needs (stores of other types, settings): `&self` is the shared
/// context, used by every worker at once; per-reconcile helpers come in
/// [`Request::ctx`].
///
/// Reconciles of one key never overlap; reconciles of different keys run concurrently
/// on up to the controller's worker count.
pub trait Reconcile<K>: Send + Sync + 'static {
    /// The reconciler's error. Errors are logged, counted and retried as
    /// [`error_policy`](Self::error_policy) says.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Reconciles one object.
    fn reconcile(
        &self,
        request: Request<K>,
    ) -> impl Future<Output = Result<Action, Self::Error>> + Send;

    /// What to do after `error` (kube-runtime's `error_policy`). Default:
    /// [`OnError::Backoff`] for every error.
    fn error_policy(&self, _error: &Self::Error, _key: &ObjectKey) -> OnError {
        OnError::Backoff
    }
}
