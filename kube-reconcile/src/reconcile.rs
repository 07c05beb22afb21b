//! What a reconciler is: the trait, its request and the [`Action`] it returns.
//!
//! This module depends on nothing else in the crate but [`ObjectKey`], so reconcilers
//! (and their tests) can be written against it alone.
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

use crate::ObjectKey;

/// What the reconciler is asked to act on: the key, and the object as the cache holds
/// it now (`None` if it is gone). The cached object may be a little behind the server;
/// read uncached when that matters.
#[derive(Debug)]
pub struct Request<K> {
    /// The object's `namespace/name`.
    pub key: ObjectKey,
    /// The cached object, if the cache holds one.
    pub object: Option<Arc<K>>,
}

impl<K> Clone for Request<K> {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            object: self.object.clone(),
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

/// Brings the world in line with one object. Implement it on a struct that holds what
/// the reconciler needs (clients, stores of other types, an event recorder): `&self`
/// is the shared context, used by every worker at once.
///
/// Reconciles of one key never overlap; reconciles of different keys run concurrently
/// on up to the controller's worker count.
pub trait Reconcile<K>: Send + Sync + 'static {
    /// The reconciler's error. Errors are logged, counted and retried with backoff
    /// unless [`is_terminal`](Self::is_terminal) says otherwise.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Reconciles one object.
    fn reconcile(
        &self,
        request: Request<K>,
    ) -> impl Future<Output = Result<Action, Self::Error>> + Send;

    /// Whether an error is final (bad input that a retry cannot fix): terminal errors
    /// are counted in `controller_runtime_terminal_reconcile_errors_total` and not
    /// retried until the next event. Default: no error is terminal.
    fn is_terminal(&self, _error: &Self::Error) -> bool {
        false
    }
}
