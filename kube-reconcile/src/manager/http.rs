//! The manager's small HTTP server: `/metrics`, `/healthz`, `/readyz`.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use http::{Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body_util::Full;
use hyper::{body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::watch};
use tracing::debug;

use crate::{leader::Leadership, metrics::Metrics};

/// What the endpoints report.
#[derive(Clone)]
pub(super) struct Health {
    pub(super) metrics: Metrics,
    /// Controllers whose caches have synced.
    pub(super) synced: Arc<AtomicUsize>,
    pub(super) controllers: usize,
    pub(super) leadership: Option<watch::Receiver<Leadership>>,
}

impl Health {
    fn respond(&self, path: &str) -> Response<Full<Bytes>> {
        let text = |status, body: String| {
            Response::builder()
                .status(status)
                .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Full::new(Bytes::from(body)))
                .expect("a valid response")
        };
        match path {
            "/metrics" => Response::builder()
                .header(
                    CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
                .body(Full::new(Bytes::from(self.metrics.encode())))
                .expect("a valid response"),
            "/healthz" | "/livez" => text(StatusCode::OK, "ok\n".into()),
            "/readyz" => {
                let synced = self.synced.load(Ordering::SeqCst);
                let leadership = self.leadership.as_ref().map(|l| *l.borrow());
                let mut body = format!(
                    "caches synced: {synced} of {} controllers\n",
                    self.controllers
                );
                if let Some(leadership) = leadership {
                    body.push_str(&format!("leadership: {leadership:?}\n"));
                }
                // A standby is ready (its caches are warm); a deposed leader is not.
                let ready = synced == self.controllers && leadership != Some(Leadership::Lost);
                let status = if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                text(status, body)
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }
}

/// Serves `health` on `listener` until the task is aborted.
pub(super) async fn serve(listener: TcpListener, health: Health) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let health = health.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let response = health.respond(request.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(%error, "health connection ended");
            }
        });
    }
}
