//! Clients built on this crate's own connector: HTTP/1.1 with cheap timeouts, or HTTP/2
//! as client-go speaks it.

use std::time::Duration;

use hyper_util::{
    client::legacy::{Client as HyperClient, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use kube::{
    Client, Config,
    client::{Body, ConfigExt},
};
use tower::{BoxError, ServiceBuilder};

use super::deadline::WithDeadlines;

/// How long a connection may carry no frame before it is pinged.
const PING_AFTER_IDLE: Duration = Duration::from_secs(30);
/// How long an unanswered ping waits before the connection is dropped.
const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// Why [`http1`] or [`http2`] could not build a client.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The kubeconfig's TLS settings or credentials could not be loaded.
    #[error("the client configuration: {0}")]
    Config(#[from] kube::Error),
    /// `tls-server-name` is not a DNS name or IP address.
    #[error("tls-server-name {0:?} is not a valid server name")]
    ServerName(String),
    /// The kubeconfig names a proxy, which this client does not support.
    #[error("proxy-url {0} is not supported by this client (kube's client supports it)")]
    Proxy(String),
}

/// A client for `config`'s API server over HTTP/1.1, as kube's default client, with
/// `config`'s read and write timeouts kept cheaply.
///
/// kube's client times reads out by moving a timer after every successful read, which
/// wakes the runtime's driver each time: a controller that reads busy watches with a
/// read timeout set (as [`crate::kubeconfig::load`] sets one) spent 6–9% of its CPU on
/// it in the ReplicaSet head-to-head benchmark. This client fails a read (or write) that has waited `read_timeout`
/// (`write_timeout`) without progress just the same, touching its timer only when a
/// wait begins after progress and at most once a timeout period after that.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = kube_reconcile::client::http1(kube::Config::infer().await?)?;
/// # Ok(()) }
/// ```
///
/// Caveats: as [`http2`]'s (no `proxy-url`, no gzip, no rebuild when an exec plugin's
/// client certificate expires); use kube's client for those.
pub fn http1(config: Config) -> Result<Client, TransportError> {
    build(config, false)
}

/// A client for `config`'s API server that offers HTTP/2, falling back to HTTP/1.1 when
/// the server does not take it.
///
/// kube's default client negotiates HTTP/1.1 only, so every watch holds a TCP and TLS
/// connection of its own and concurrent requests open more. This builds the same
/// client (the kubeconfig's server, credentials, TLS settings and extra headers) on a
/// connector that offers `h2` by ALPN: against kube-apiserver, every request and watch
/// then shares one connection, multiplexed, as client-go's transport does. The
/// connection is pinged after 30 s without a frame and dropped if the ping is not
/// answered in 15 s (client-go's `ReadIdleTimeout` and `PingTimeout`), so a dead peer
/// is noticed even while watches are quiet.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = kube_reconcile::client::http2(kube::Config::infer().await?)?;
/// # Ok(()) }
/// ```
///
/// Caveats: a server that does not offer `h2` (a plain-HTTP URL, some proxies in front of
/// an API server) gets HTTP/1.1 as [`http1`]'s. Proxies in the kubeconfig (`proxy-url`) are
/// not supported (an error says so; use kube's client). Unlike kube's client, this one
/// does not decompress gzip bodies (kube-apiserver sends them only when asked), has no
/// per-connection read timeout (watches idle for minutes; the pings above stand in), and
/// does not rebuild itself when an exec plugin's client certificate expires.
pub fn http2(config: Config) -> Result<Client, TransportError> {
    build(config, true)
}

fn build(config: Config, http2: bool) -> Result<Client, TransportError> {
    if let Some(proxy) = &config.proxy_url {
        return Err(TransportError::Proxy(proxy.to_string()));
    }
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(config.connect_timeout);
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config.rustls_client_config()?)
        .https_or_http();
    let tls = match &config.tls_server_name {
        Some(name) => {
            let server_name = name
                .clone()
                .try_into()
                .map_err(|_| TransportError::ServerName(name.clone()))?;
            tls.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(server_name))
        }
        None => tls,
    };
    // Over HTTP/2 the pings below notice a dead peer; a read timeout would cut watches
    // that are merely quiet.
    let read_timeout = if http2 { None } else { config.read_timeout };
    let tcp = WithDeadlines::new(tcp, read_timeout, config.write_timeout);
    let mut hyper = HyperClient::builder(TokioExecutor::new());
    hyper.timer(TokioTimer::new());
    let hyper: HyperClient<_, Body> = if http2 {
        hyper
            .http2_keep_alive_interval(PING_AFTER_IDLE)
            .http2_keep_alive_timeout(PING_TIMEOUT)
            .http2_keep_alive_while_idle(true)
            .build(tls.enable_all_versions().wrap_connector(tcp))
    } else {
        hyper.build(tls.enable_http1().wrap_connector(tcp))
    };
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(hyper);
    Ok(Client::new(service, config.default_namespace))
}
