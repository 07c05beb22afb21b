//! What an informer says when its list or watch fails: what it lists, from which
//! server, the whole cause (down to the OS error), and when it tries again.

use std::{error::Error, fmt, sync::Arc, time::Duration};

use backon::BackoffBuilder;
use kube::{core::Status, runtime::watcher};
use tracing::warn;

/// The error and each of its [`source`](Error::source)s, joined with `": "`, each said
/// once: a message that already ends with its source's text is cut before it. API
/// errors read as `404 NotFound: the server could not find the requested resource`
/// rather than kube's debug dump of the `Status`.
///
/// ```
/// use kube_reconcile::informer::describe_error;
///
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let error = kube::Error::Service(Box::new(refused));
/// assert_eq!(describe_error(&error), "ServiceError: connection refused");
/// ```
pub fn describe_error(error: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(status) = api_status(error) {
            parts.push(describe_status(status));
            break;
        }
        let text = error.to_string();
        let own = match error.source() {
            Some(source) => {
                let inner = match api_status(source) {
                    // kube prints a Status as "{message} ({debug})"; cut at the message.
                    Some(status) => status.message.clone(),
                    None => source.to_string(),
                };
                match text.find(&inner) {
                    Some(at) if !inner.is_empty() => text[..at].trim_end_matches([':', ' ']),
                    _ => text.as_str(),
                }
                .to_string()
            }
            None => text,
        };
        if !own.is_empty() {
            parts.push(own);
        }
        current = error.source();
    }
    parts.join(": ")
}

/// The API `Status` that `error` is, if it is one (kube and its watcher hold it boxed).
fn api_status<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a Status> {
    error
        .downcast_ref::<Status>()
        .or_else(|| error.downcast_ref::<Box<Status>>().map(|b| &**b))
}

fn describe_status(status: &Status) -> String {
    // A reply that was not a Status (e.g. `404 page not found` for an unknown API
    // group) gets kube's placeholder reason, which has spaces; name the HTTP status
    // the way Kubernetes reasons read instead.
    let reason = if !status.reason.is_empty() && !status.reason.contains(' ') {
        status.reason.clone()
    } else {
        http::StatusCode::from_u16(status.code)
            .ok()
            .and_then(|code| code.canonical_reason())
            .unwrap_or("Failure")
            .replace(' ', "")
    };
    format!("{} {reason}: {}", status.code, status.message)
}

/// What an informer lists and watches, and where; named in its log lines.
#[derive(Clone, Default)]
pub(super) struct Origin {
    /// `plural` or `plural.group`, as `kubectl get` takes it.
    pub(super) resource: String,
    pub(super) namespace: Option<String>,
    pub(super) server: Option<Arc<str>>,
}

impl Origin {
    /// For informers made from a stream: all that is known is the Rust type.
    pub(super) fn of<K>() -> Self {
        let name = std::any::type_name::<K>();
        // `k8s_openapi::api::core::v1::ConfigMap` reads as `ConfigMap`.
        let short = name.split('<').next().unwrap_or(name);
        let short = short.rsplit("::").next().unwrap_or(short);
        Self {
            resource: short.to_string(),
            ..Self::default()
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.resource)?;
        if let Some(namespace) = &self.namespace {
            write!(f, " in namespace {namespace}")?;
        }
        match &self.server {
            Some(server) => write!(f, " at {server}"),
            None => f.write_str(" (server URL unknown: see InformerFactory::with_server_url)"),
        }
    }
}

/// The shortest wait before a failed list or watch is tried again (kube's and
/// client-go's first step).
const RETRY_INITIAL: Duration = Duration::from_millis(800);
/// The longest wait before random jitter of up to as much again: so an informer tries
/// an overloaded or unreachable server at least every 5 s, and is back within 5 s of
/// its recovery. kube's and client-go's go to 30 s (kube's jitter to 60 s), which left
/// a controller blind for half a minute after a one-minute outage. A failed attempt
/// costs the server little: a 429 is answered before any work, a refused connection
/// not at all, and streaming lists are served from the watch cache.
const RETRY_MAX: Duration = Duration::from_millis(2_500);

/// Delays between failed attempts: 800 ms doubling to 2.5 s, each plus up to as much
/// again at random, restarting from the shortest once the server answered with objects
/// or a list.
#[derive(Default)]
pub(super) struct Retry {
    failing: Option<backon::ExponentialBackoff>,
}

impl Retry {
    /// A list or watch worked: the next failure waits the shortest delay again.
    pub(super) fn succeeded(&mut self) {
        if self.failing.is_some() {
            self.failing = None;
        }
    }

    /// Logs `error` (one line per attempt) and returns how long to wait.
    pub(super) fn failed(&mut self, origin: &Origin, error: &watcher::Error) -> Duration {
        let backoff = self.failing.get_or_insert_with(|| {
            backon::ExponentialBuilder::default()
                .with_min_delay(RETRY_INITIAL)
                .with_max_delay(RETRY_MAX)
                .with_jitter()
                .without_max_times()
                .build()
        });
        // Built without a limit on attempts, so it always has a next delay.
        let delay = backoff.next().unwrap_or(RETRY_MAX);
        warn!(
            resource = %origin.resource,
            "list/watch of {origin} failed (retrying in {delay:.1?}): {}",
            describe_error(error)
        );
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_is_said_once_down_to_the_os_error() {
        let os = std::io::Error::from_raw_os_error(111);
        let kube = kube::Error::ReadEvents(os);
        let error = watcher::Error::WatchFailed(kube);
        let text = describe_error(&error);
        assert_eq!(
            text,
            format!(
                "watch stream failed: Error reading events stream: {}",
                std::io::Error::from_raw_os_error(111)
            )
        );
        assert!(text.contains("os error 111"), "{text}");
    }

    #[test]
    fn api_errors_name_code_reason_and_message() {
        let status = Status::failure(
            r#"configmaps is forbidden: User "x" cannot list resource "configmaps""#,
            "Forbidden",
        )
        .with_code(403);
        let error = watcher::Error::InitialListFailed(kube::Error::Api(status.boxed()));
        assert_eq!(
            describe_error(&error),
            r#"failed to perform initial object list: ApiError: 403 Forbidden: configmaps is forbidden: User "x" cannot list resource "configmaps""#
        );
    }

    #[test]
    fn replies_that_were_not_a_status_are_named_by_their_http_code() {
        let status =
            Status::failure("404 page not found", "Failed to parse error data").with_code(404);
        assert_eq!(describe_status(&status), "404 NotFound: 404 page not found");
    }

    #[test]
    fn retries_wait_at_most_five_seconds_however_long_the_failure_and_restart_after_success() {
        let origin = Origin::of::<Status>();
        let error = watcher::Error::NoResourceVersion;
        let mut retry = Retry::default();
        let delays: Vec<Duration> = (0..40).map(|_| retry.failed(&origin, &error)).collect();
        assert!((RETRY_INITIAL..RETRY_INITIAL * 2).contains(&delays[0]));
        assert!(delays.iter().all(|d| *d <= RETRY_MAX * 2), "{delays:?}");
        assert!(delays[10..].iter().all(|d| *d >= RETRY_MAX), "{delays:?}");
        retry.succeeded();
        assert!(retry.failed(&origin, &error) < RETRY_INITIAL * 2);
    }

    #[test]
    fn origin_names_resource_namespace_and_server() {
        let origin = Origin {
            resource: "widgets.example.io".into(),
            namespace: Some("ns".into()),
            server: Some("https://127.0.0.1:6443/".into()),
        };
        assert_eq!(
            origin.to_string(),
            "widgets.example.io in namespace ns at https://127.0.0.1:6443/"
        );
    }
}
