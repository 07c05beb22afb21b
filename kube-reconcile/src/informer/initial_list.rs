//! How an informer lists: a streaming list when the API server allows it, pages
//! otherwise.
//!
//! A streaming list is a watch with `sendInitialEvents=true`: the server sends every
//! current object as an event, then a bookmark marking the end of the list. Objects
//! arrive and are decoded one at a time, so an informer never holds a page's whole
//! response body beside the objects decoded from it (client-go lists this way by
//! default since v0.35, as `WatchListClient`). A server with the `WatchList` feature
//! off refuses the parameter (422, naming `sendInitialEvents`); the factory then lists
//! in pages, for that informer and every one it makes afterwards.

use std::{
    fmt::Debug,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use futures::{Stream, StreamExt, stream::BoxStream};
use kube::{Api, Resource, core::Status, runtime::watcher};
use serde::de::DeserializeOwned;
use tracing::warn;

/// Whether a factory's informers use streaming lists: asked for, and not refused yet.
#[derive(Debug)]
pub(super) struct ListMode {
    streaming: AtomicBool,
}

impl ListMode {
    pub(super) fn new(streaming: bool) -> Arc<Self> {
        Arc::new(Self {
            streaming: AtomicBool::new(streaming),
        })
    }

    pub(super) fn streaming(&self) -> bool {
        self.streaming.load(Ordering::Relaxed)
    }

    fn refused(&self, status: &Status) {
        if self.streaming.swap(false, Ordering::Relaxed) {
            warn!(
                reason = %status.message,
                "the API server refuses streaming lists (its WatchList feature is off); \
                 informers list in pages"
            );
        }
    }
}

/// The watch stream of `api` under `config`: with streaming lists while `mode` allows
/// them, switching to paged lists for good if the server refuses one.
pub(super) fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    mode: &Arc<ListMode>,
) -> BoxStream<'static, WatchItem<K>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    if !mode.streaming() {
        return watcher(api, config).boxed();
    }
    let inner = watcher(api.clone(), config.clone().streaming_lists()).boxed();
    let paged = Some(Paged {
        api,
        config,
        mode: mode.clone(),
    });
    Fallback { inner, paged }.boxed()
}

type WatchItem<K> = Result<watcher::Event<K>, watcher::Error>;

/// What a refused streaming list falls back to.
struct Paged<K> {
    api: Api<K>,
    config: watcher::Config,
    mode: Arc<ListMode>,
}

/// A streaming watcher that becomes a paged one when the server refuses streaming.
struct Fallback<K> {
    inner: BoxStream<'static, WatchItem<K>>,
    paged: Option<Paged<K>>,
}

// Every field is moved or replaced, never pinned in place.
impl<K> Unpin for Fallback<K> {}

impl<K> Stream for Fallback<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    type Item = WatchItem<K>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let item = std::task::ready!(self.inner.poll_next_unpin(cx));
            let Some(Err(watcher::Error::WatchStartFailed(kube::Error::Api(status)))) = &item
            else {
                return Poll::Ready(item);
            };
            if !refuses_streaming(status) {
                return Poll::Ready(item);
            }
            let Some(paged) = self.paged.take() else {
                return Poll::Ready(item);
            };
            paged.mode.refused(status);
            self.inner = watcher(paged.api, paged.config).boxed();
        }
    }
}

/// The API server's answer to `sendInitialEvents` when its WatchList feature is off:
/// 422, a field error naming the parameter (or `resourceVersionMatch`, which a
/// streaming list must set and a plain watch may not).
fn refuses_streaming(status: &Status) -> bool {
    status.code == 422
        && (status.message.contains("sendInitialEvents")
            || status.message.contains("resourceVersionMatch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str) -> Status {
        let mut status = Status::failure(message, "Invalid");
        status.code = code;
        status
    }

    #[test]
    fn only_the_watch_list_refusal_switches_to_pages() {
        let refusal = "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: \
                       sendInitialEvents is forbidden for watch unless the WatchList feature \
                       gate is enabled";
        assert!(refuses_streaming(&status(422, refusal)));
        assert!(!refuses_streaming(&status(
            422,
            "labelSelector: Invalid value"
        )));
        assert!(!refuses_streaming(&status(403, "sendInitialEvents")));
        let mode = ListMode::new(true);
        mode.refused(&status(422, refusal));
        assert!(!mode.streaming());
    }
}
