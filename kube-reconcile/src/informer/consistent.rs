//! Streaming lists that start from the most recent state, as client-go's do.
//!
//! kube's watcher opens a streaming list with `resourceVersion=0`: "any state", which
//! the API server answers from its watch cache as it is, without waiting for it to
//! catch up with etcd. An object written a moment before the informer starts can then
//! be missing from its initial list: it arrives later as a watch event, but after the
//! informer has reported itself synced, and a controller that trusts the sync (one
//! that counts pods before creating more, say) acts on a stale cache. client-go's
//! streaming lists send no resource version (most recent), for which the server reads
//! etcd's current revision and waits for its cache to reach it. The informers' client
//! drops the `resourceVersion=0` of streaming lists so they ask the same.
//!
//! Paged lists keep kube's (and client-go's) `resourceVersion=0`.

use http::{Request, Uri};
use kube::{Client, client::Body};

/// `client`, with each streaming list asking for the most recent state: what informers
/// watch through. Other requests pass unchanged.
///
/// # Panics
/// Outside a tokio runtime (kube's `Client::new` starts a task).
pub(super) fn most_recent_streaming_lists(client: Client) -> Client {
    let namespace = client.default_namespace().to_string();
    let service = tower::service_fn(move |mut request: Request<Body>| {
        let client = client.clone();
        async move {
            if let Some(uri) = most_recent(request.uri()) {
                *request.uri_mut() = uri;
            }
            client.send(request).await
        }
    });
    Client::new(service, namespace)
}

/// `uri` without `resourceVersion=0`, if it opens a streaming list with it.
fn most_recent(uri: &Uri) -> Option<Uri> {
    const ANY_VERSION: &str = "resourceVersion=0";
    let query = uri.query()?;
    let pairs = || query.split('&');
    if !pairs().any(|pair| pair == "sendInitialEvents=true")
        || !pairs().any(|pair| pair == ANY_VERSION)
    {
        return None;
    }
    let kept: Vec<&str> = pairs().filter(|pair| *pair != ANY_VERSION).collect();
    format!("{}?{}", uri.path(), kept.join("&")).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(uri: &str) -> Option<String> {
        most_recent(&uri.parse().unwrap()).map(|uri| uri.to_string())
    }

    #[test]
    fn a_streaming_list_at_any_version_asks_for_the_most_recent() {
        assert_eq!(
            rewrite(
                "/api/v1/namespaces/ns/pods?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true\
                 &sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0"
            )
            .as_deref(),
            Some(
                "/api/v1/namespaces/ns/pods?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true\
                 &sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
            )
        );
    }

    #[test]
    fn other_requests_pass_unchanged() {
        for uri in [
            // A watch resumed from a version, a paged list, a plain watch, a create.
            "/api/v1/pods?&watch=true&allowWatchBookmarks=true&resourceVersion=12345",
            "/api/v1/pods?&limit=500&resourceVersionMatch=NotOlderThan&resourceVersion=0",
            "/api/v1/pods?&watch=true&resourceVersion=0",
            "/api/v1/namespaces/ns/pods?",
            "/api/v1/namespaces/ns/pods",
            "/api/v1/pods?&watch=true&sendInitialEvents=true&resourceVersion=10",
        ] {
            assert_eq!(rewrite(uri), None, "{uri}");
        }
    }
}
