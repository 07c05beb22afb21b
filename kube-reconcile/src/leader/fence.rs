//! The fence: a leader's writes stop as soon as its lease may have passed to another.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use http::Method;
use kube::Client;

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
    crate::client::wrap(client, move |inner, request| {
        let mutating = matches!(
            *request.method(),
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        if mutating && !fence.holds() {
            let refused = Fenced {
                method: request.method().clone(),
                path: request.uri().path().to_string(),
            };
            return Box::pin(async move { Err(kube::Error::Service(Box::new(refused))) });
        }
        Box::pin(async move { inner.send(request).await })
    })
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
