//! Client-side request limits, as client-go's `--kube-api-qps` / `--kube-api-burst`.
//!
//! kube's client sends requests as fast as they come; controllers that must share an
//! API server politely (or be compared fairly with kube-controller-manager) cap their
//! request rate. [`rate_limited`] wraps a client so that every request — list, get,
//! create, patch, and the start of each watch — first takes a token from one bucket
//! holding `burst` tokens, refilled at `qps` a second.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube::Error> {
//! let client = kube_reconcile::client::rate_limited(kube::Client::try_default().await?, 20.0, 30);
//! # Ok(()) }
//! ```
//!
//! Caveat: a watch holds no token while it streams; only its start counts.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use http::{Request, Response};
use kube::{Client, client::Body};

use crate::queue::{RateLimiter, TokenBucket};

/// A client whose requests share one token bucket of `qps` a second and `burst`
/// tokens. Clones of the returned client share the bucket.
///
/// # Panics
/// If `qps` is not positive.
pub fn rate_limited(client: Client, qps: f64, burst: u32) -> Client {
    let namespace = client.default_namespace().to_string();
    let service = RateLimited {
        inner: client,
        bucket: Arc::new(TokenBucket::new(qps, burst.max(1))),
    };
    Client::new(service, namespace)
}

#[derive(Clone)]
struct RateLimited {
    inner: Client,
    bucket: Arc<TokenBucket>,
}

impl tower::Service<Request<Body>> for RateLimited {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, kube::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let (inner, bucket) = (self.inner.clone(), self.bucket.clone());
        Box::pin(async move {
            // Reserve a token now; wait for it if the bucket is empty.
            let wait = RateLimiter::<()>::when(&*bucket, &());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            inner.send(request).await
        })
    }
}
