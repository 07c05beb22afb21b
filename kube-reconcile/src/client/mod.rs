//! Client-side request limits, as client-go's `--kube-api-qps` / `--kube-api-burst`,
//! and retries when the API server sheds load ([`honouring_retry_after`]).
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
//!
//! [`http2`] builds a client that multiplexes every request and watch over one HTTP/2
//! connection, as client-go does, where kube's default client speaks HTTP/1.1;
//! [`http1`] builds kube's HTTP/1.1 client with read timeouts that cost nothing while
//! the connection makes progress.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use http::{Request, Response, StatusCode, header::RETRY_AFTER};
use kube::{Client, client::Body};
use tracing::debug;

use crate::queue::{RateLimiter, TokenBucket};

mod deadline;
mod transport;

pub use transport::{TransportError, http1, http2};

/// A client whose requests share one token bucket of `qps` a second and `burst`
/// tokens. Clones of the returned client share the bucket.
///
/// # Panics
/// If `qps` is not positive.
pub fn rate_limited(client: Client, qps: f64, burst: u32) -> Client {
    let bucket = Arc::new(TokenBucket::new(qps, burst.max(1)));
    wrap(client, move |inner, request| {
        // Reserve a token now; wait for it if the bucket is empty.
        let wait = RateLimiter::<()>::when(&*bucket, &());
        Box::pin(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            inner.send(request).await
        })
    })
}

/// What a wrapped client does with each request: `inner` is the client it wraps.
type SendFn = dyn Fn(Client, Request<Body>) -> BoxFuture<'static, Result<Response<Body>, kube::Error>>
    + Send
    + Sync;

/// A client that hands every request, with the client it wraps, to `send` (which
/// usually ends in `inner.send(request)`); the wrapper keeps `client`'s default
/// namespace. The building block of [`rate_limited`], [`honouring_retry_after`] and
/// [`fenced`](crate::leader::fenced).
pub(crate) fn wrap(
    client: Client,
    send: impl Fn(Client, Request<Body>) -> BoxFuture<'static, Result<Response<Body>, kube::Error>>
    + Send
    + Sync
    + 'static,
) -> Client {
    let namespace = client.default_namespace().to_string();
    let service = Wrapped {
        inner: client,
        send: Arc::new(send),
    };
    Client::new(service, namespace)
}

#[derive(Clone)]
struct Wrapped {
    inner: Client,
    send: Arc<SendFn>,
}

impl tower::Service<Request<Body>> for Wrapped {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, kube::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        (self.send)(self.inner.clone(), request)
    }
}

/// Whether a failed write may nonetheless have happened: the connection broke or the
/// server failed (5xx, a timeout) after the request left, so the API server may have
/// stored it before the answer was lost. A controller that counts on its own writes
/// (expectations of pods it created) must then look at the server's state before
/// writing again, or it may create twice. A 4xx answer (conflict, invalid, forbidden,
/// 429 Too Many Requests) means the write did not happen.
pub fn outcome_unknown(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Whether `error` says the API server is overloaded or out of reach rather than
/// anything about the request: 429 Too Many Requests (after the client's own
/// `Retry-After` retries), 502, 503 and 504 answers, and failures to connect, send or
/// read (refused or reset connections, timeouts). A controller waits these out
/// together rather than backing off key by key (see
/// [`OverloadBackoff`](crate::controller::OverloadBackoff)).
///
/// A 500 is not counted: kube-apiserver answers `500 InternalError` when an admission
/// webhook fails on one object, which is about that object. Caveat: a write refused by
/// a [`fenced`](crate::leader::fenced) client is a connection-level error too, and so
/// counted; a controller that lost leadership stops anyway.
pub fn server_overloaded(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 429 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// How many times client-go's REST client retries a request the server asked it to
/// retry later.
pub const DEFAULT_MAX_RETRIES: u32 = 10;
/// The longest `Retry-After` wait honoured; a longer one is shortened to this.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(30);

/// A client that retries a request the API server turned away with 429 Too Many
/// Requests, or a 5xx answer, **carrying a `Retry-After` header**, after the delay the
/// header asks for (at most 30 s), up to `max_retries` times; then the caller gets the
/// last answer. This is client-go's REST client behaviour: kube-apiserver sends 429
/// with `Retry-After` when its in-flight limits or priority-and-fairness queues are
/// full, and the request was not processed, so retrying any verb is safe.
///
/// Caveats: an answer without `Retry-After` is returned as is (the caller's backoff
/// decides); a request whose body is a stream cannot be sent twice and is not retried;
/// a retry does not take a token from a [`rate_limited`] client wrapped inside it.
/// Wrap a client without kube's own retry layer (`kube::Config::default_retry`, which
/// [`crate::kubeconfig::load`] turns off and [`http1`]/[`http2`] never add): that layer
/// retries the same answers first, with a per-request backoff that grows to minutes,
/// and this one would never see them.
/// [`Manager`](crate::manager::Manager) clients already retry so.
pub fn honouring_retry_after(client: Client, max_retries: u32) -> Client {
    wrap(client, move |inner, request| {
        Box::pin(async move {
            let mut request = request;
            let mut retries = 0;
            loop {
                let again = (retries < max_retries).then(|| copy(&request)).flatten();
                let response = inner.send(request).await?;
                let (Some(again), Some(wait)) = (again, retry_after(&response)) else {
                    return Ok(response);
                };
                retries += 1;
                debug!(
                    status = %response.status(),
                    uri = %again.uri(),
                    ?wait,
                    retries,
                    "the API server asked to retry later"
                );
                drop(response);
                tokio::time::sleep(wait).await;
                request = again;
            }
        })
    })
}

/// The delay a 429 or 5xx answer asks for in `Retry-After` (whole seconds, as
/// kube-apiserver sends), if it is one.
fn retry_after(response: &Response<Body>) -> Option<Duration> {
    let status = response.status();
    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
        return None;
    }
    let seconds: u64 = response
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(LONGEST_RETRY_AFTER))
}

/// A second copy of `request`, unless its body is a stream.
fn copy(request: &Request<Body>) -> Option<Request<Body>> {
    let mut copy = Request::new(request.body().try_clone()?);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> Response<Body> {
        let mut response = Response::builder().status(status);
        if let Some(value) = retry_after {
            response = response.header(RETRY_AFTER, value);
        }
        response.body(Body::empty()).unwrap()
    }

    #[test]
    fn only_shed_load_with_a_retry_after_is_retried() {
        assert_eq!(
            retry_after(&answer(429, Some("1"))),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            retry_after(&answer(503, Some("2"))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(retry_after(&answer(429, None)), None);
        assert_eq!(retry_after(&answer(409, Some("1"))), None);
        assert_eq!(retry_after(&answer(200, Some("1"))), None);
        assert_eq!(retry_after(&answer(429, Some("soon"))), None);
        assert_eq!(
            retry_after(&answer(429, Some("3600"))),
            Some(LONGEST_RETRY_AFTER)
        );
    }

    #[test]
    fn only_server_failures_and_broken_connections_leave_the_outcome_unknown() {
        let status = |code| {
            let mut status = kube::core::Status::failure("m", "r");
            status.code = code;
            kube::Error::Api(Box::new(status))
        };
        assert!(outcome_unknown(&status(500)));
        assert!(outcome_unknown(&status(504)));
        for code in [400, 403, 404, 409, 422, 429] {
            assert!(!outcome_unknown(&status(code)), "{code}");
        }
        let broken = kube::Error::Service("connection reset".into());
        assert!(outcome_unknown(&broken));
    }

    #[test]
    fn overload_is_told_from_a_failure_of_the_request() {
        let status = |code| {
            let mut status = kube::core::Status::failure("m", "r");
            status.code = code;
            kube::Error::Api(Box::new(status))
        };
        for code in [429, 502, 503, 504] {
            assert!(server_overloaded(&status(code)), "{code}");
        }
        for code in [400, 403, 404, 409, 422, 500] {
            assert!(!server_overloaded(&status(code)), "{code}");
        }
        let refused = kube::Error::Service("tcp connect error: Connection refused".into());
        assert!(server_overloaded(&refused));
        let undecodable = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(!server_overloaded(&kube::Error::SerdeError(undecodable)));
    }

    #[test]
    fn a_request_with_a_body_is_copied_whole() {
        let request = Request::post("/api/v1/namespaces/x/pods")
            .header("content-type", "application/json")
            .body(Body::from(b"{}".to_vec()))
            .unwrap();
        let copy = copy(&request).unwrap();
        assert_eq!(copy.method(), request.method());
        assert_eq!(copy.uri(), request.uri());
        assert_eq!(copy.headers(), request.headers());
    }
}
