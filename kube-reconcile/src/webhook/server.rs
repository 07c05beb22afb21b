//! Serving the webhooks over TLS: one route per path, each a review in and out.

use std::{collections::HashMap, convert::Infallible, sync::Arc};

use http::{Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::{WebhookError, review::Handler};

/// The largest review body read (kube-apiserver caps requests at 3 MiB).
const MAX_BODY: usize = 6 * 1024 * 1024;

/// A TLS acceptor for the PEM certificate chain and private key.
pub(super) fn acceptor(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor, WebhookError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| WebhookError::Tls(format!("reading the certificate chain: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| WebhookError::Tls(format!("reading the private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| WebhookError::Tls(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `routes` on `listener` until the task is dropped.
pub(super) async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    routes: Arc<HashMap<String, Handler>>,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let (acceptor, routes) = (acceptor.clone(), routes.clone());
        tokio::spawn(async move {
            let stream = match acceptor.accept(stream).await {
                Ok(stream) => stream,
                Err(error) => {
                    debug!(%error, %peer, "webhook TLS handshake failed");
                    return;
                }
            };
            let service = service_fn(move |request| respond(request, routes.clone()));
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(%error, %peer, "webhook connection ended");
            }
        });
    }
}

async fn respond(
    request: Request<hyper::body::Incoming>,
    routes: Arc<HashMap<String, Handler>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: Vec<u8>| {
        Response::builder()
            .status(status)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    let path = request.uri().path().to_string();
    let Some(handler) = routes.get(&path).cloned() else {
        return Ok(reply(StatusCode::NOT_FOUND, b"{}".to_vec()));
    };
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            warn!(%error, %path, "reading a webhook request failed");
            return Ok(reply(StatusCode::BAD_REQUEST, b"{}".to_vec()));
        }
    };
    // A panic in a user hook answers 500 (the API server applies its failure policy);
    // the server keeps serving.
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&body)));
    Ok(match answered {
        Ok(answer) => reply(StatusCode::OK, answer),
        Err(_) => {
            warn!(%path, "a webhook hook panicked");
            reply(StatusCode::INTERNAL_SERVER_ERROR, b"{}".to_vec())
        }
    })
}
