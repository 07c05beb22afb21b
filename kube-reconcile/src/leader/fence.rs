//! The fence: a leader's writes stop as soon as its lease may have passed to another.

use std::{
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Instant,
};

use futures::future::BoxFuture;
use http::{Method, Request, Response};
use kube::{Client, client::Body};

/// Whether this process may still write as leader: true until the renew deadline after
/// its last successful lease renewal (measured from when that renewal was sent), false
/// before the first and after leadership is lost.
///
/// The deadline runs on the monotonic clock, which keeps counting while the process
/// is stopped or starved: a leader frozen past its deadline finds the fence closed when
/// it resumes, before any other replica can hold the lease (the lease lasts longer than
/// the renew deadline). Clones share one state.
#[derive(Debug, Clone, Default)]
pub struct Fence {
    valid_until: Arc<Mutex<Option<Instant>>>,
}

impl Fence {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.valid_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether writes may go out now.
    pub fn holds(&self) -> bool {
        self.lock().is_some_and(|until| Instant::now() < until)
    }

    /// Opens (or extends) the fence until `until`.
    pub(crate) fn extend(&self, until: Instant) {
        *self.lock() = Some(until);
    }

    /// Closes the fence for good (leadership ended).
    pub(crate) fn close(&self) {
        *self.lock() = None;
    }

    /// The instant the fence closes by itself, if open.
    pub(crate) fn valid_until(&self) -> Option<Instant> {
        *self.lock()
    }
}

/// Refused: a write attempted while the [`Fence`] was closed.
#[derive(Debug, thiserror::Error)]
#[error("{method} {path} refused: this replica does not hold the leader lease")]
pub struct Fenced {
    /// The request's method.
    pub method: Method,
    /// The request's path.
    pub path: String,
}

/// A client that refuses mutating requests (POST, PUT, PATCH, DELETE) while `fence` is
/// closed, failing them with [`kube::Error::Service`] wrapping [`Fenced`] without
/// sending anything; reads and watches pass (a standby keeps its caches warm).
///
/// Wrap the client closest to the wire, so the check runs just before the request
/// leaves: `rate_limited(fenced(client, fence), ..)`, not the other way round.
pub fn fenced(client: Client, fence: Fence) -> Client {
    let namespace = client.default_namespace().to_string();
    Client::new(
        FencedService {
            inner: client,
            fence,
        },
        namespace,
    )
}

#[derive(Clone)]
struct FencedService {
    inner: Client,
    fence: Fence,
}

impl tower::Service<Request<Body>> for FencedService {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, kube::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let mutating = matches!(
            *request.method(),
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        if mutating && !self.fence.holds() {
            let refused = Fenced {
                method: request.method().clone(),
                path: request.uri().path().to_string(),
            };
            return Box::pin(async move { Err(kube::Error::Service(Box::new(refused))) });
        }
        let inner = self.inner.clone();
        Box::pin(async move { inner.send(request).await })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_fence_holds_only_until_its_deadline() {
        let fence = Fence::default();
        assert!(!fence.holds(), "closed before the first renewal");
        fence.extend(Instant::now() + Duration::from_secs(60));
        assert!(fence.clone().holds(), "clones share the state");
        fence.extend(Instant::now() - Duration::from_millis(1));
        assert!(!fence.holds(), "past its deadline");
        fence.extend(Instant::now() + Duration::from_secs(60));
        fence.close();
        assert!(!fence.holds());
    }
}
