//! A fault-injecting TCP proxy in front of kube-apiserver: Shopify's toxiproxy, built
//! from Go modules with the rest of the control plane and driven over its HTTP API.
//!
//! TLS passes through untouched (the proxy sees bytes, not requests), so a client of
//! the proxy talks to the real API server; the serving certificate names 127.0.0.1,
//! which the proxy listens on too. Faults apply per connection: a cut drops every open
//! connection (watches included), a blackhole keeps connections open but lets no byte
//! through, latency and bandwidth limits slow every byte.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use kube::{Client, Config};
use serde_json::json;

use super::{Error, pki, process::http_request};

/// The proxy's name in toxiproxy.
const PROXY: &str = "kube-apiserver";

/// A handle to the control plane's fault proxy: Shopify's toxiproxy between clients
/// and kube-apiserver. TLS passes through untouched (the proxy sees bytes, not
/// requests), so a client of the proxy talks to the real API server. Faults apply per
/// connection: a cut drops every open connection (watches included), a blackhole keeps
/// connections open but lets no byte through, latency and bandwidth limits slow every
/// byte. Obtained
/// from [`ControlPlane::fault_proxy`](super::ControlPlane::fault_proxy) when the
/// builder asked for [`fault_proxy`](super::ControlPlaneBuilder::fault_proxy).
///
/// Faults stay until [`restore`](Self::restore); they never affect clients of
/// [`ControlPlane::client`](super::ControlPlane::client), which reach the API server
/// directly (so a test can still set up and observe while its controller suffers).
#[derive(Debug)]
pub struct FaultProxy {
    api_port: u16,
    server: String,
    kubeconfig: PathBuf,
}

impl FaultProxy {
    /// Registers the proxy `127.0.0.1:listen_port` → `127.0.0.1:upstream_port` with the
    /// toxiproxy API on `api_port`, and writes a kubeconfig that goes through it.
    pub(super) async fn create(
        dir: &Path,
        api_port: u16,
        listen_port: u16,
        upstream_port: u16,
    ) -> Result<Self, Error> {
        let server = format!("https://127.0.0.1:{listen_port}");
        let kubeconfig = dir.join("kubeconfig-through-fault-proxy");
        std::fs::write(&kubeconfig, pki::kubeconfig(dir, &server))
            .map_err(Error::io("write the fault proxy's kubeconfig"))?;
        let proxy = Self {
            api_port,
            server,
            kubeconfig,
        };
        let body = json!({
            "name": PROXY,
            "listen": format!("127.0.0.1:{listen_port}"),
            "upstream": format!("127.0.0.1:{upstream_port}"),
            "enabled": true,
        });
        proxy.call("POST", "/proxies", &body).await?;
        Ok(proxy)
    }

    /// The proxied API server URL, `https://127.0.0.1:<proxy port>`.
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// A kubeconfig for the admin user that reaches the API server through the proxy.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The admin client's configuration through the proxy.
    pub async fn config(&self) -> Result<Config, Error> {
        crate::kubeconfig::load(&self.kubeconfig, None)
            .await
            .map_err(|e| Error::Kubeconfig(e.source))
    }

    /// A new admin client through the proxy. Make one per tokio runtime.
    pub async fn client(&self) -> Result<Client, Error> {
        Client::try_from(self.config().await?).map_err(Error::Client)
    }

    /// Drops every open connection through the proxy (watches end without a final
    /// event, in-flight requests fail); new connections work again at once.
    pub async fn cut_connections(&self) -> Result<(), Error> {
        self.set_enabled(false).await?;
        self.set_enabled(true).await
    }

    /// Stops accepting connections and drops the open ones, until
    /// [`restore`](Self::restore): clients see "connection refused".
    pub async fn refuse_connections(&self) -> Result<(), Error> {
        self.set_enabled(false).await
    }

    /// Lets no byte through in either direction while keeping connections open, until
    /// [`restore`](Self::restore): requests and watches hang, as behind a dead network.
    pub async fn blackhole(&self) -> Result<(), Error> {
        for stream in ["upstream", "downstream"] {
            self.add_toxic(stream, "timeout", json!({ "timeout": 0 }))
                .await?;
        }
        Ok(())
    }

    /// Delays every chunk of every response by `latency` ± up to `jitter`.
    pub async fn add_latency(&self, latency: Duration, jitter: Duration) -> Result<(), Error> {
        let attributes = json!({
            "latency": latency.as_millis() as u64,
            "jitter": jitter.as_millis() as u64,
        });
        self.add_toxic("downstream", "latency", attributes).await
    }

    /// Caps the API server's responses at `kilobytes_per_second`.
    pub async fn limit_bandwidth(&self, kilobytes_per_second: u64) -> Result<(), Error> {
        let attributes = json!({ "rate": kilobytes_per_second });
        self.add_toxic("downstream", "bandwidth", attributes).await
    }

    /// Removes every fault: all toxics go and the proxy accepts connections again.
    pub async fn restore(&self) -> Result<(), Error> {
        self.call("POST", "/reset", &json!({})).await
    }

    async fn set_enabled(&self, enabled: bool) -> Result<(), Error> {
        let path = format!("/proxies/{PROXY}");
        self.call("POST", &path, &json!({ "enabled": enabled }))
            .await
    }

    /// Adds a toxic named after its type and direction (so adding the same one twice
    /// fails loudly rather than stacking).
    async fn add_toxic(
        &self,
        stream: &str,
        kind: &str,
        attributes: serde_json::Value,
    ) -> Result<(), Error> {
        let body = json!({
            "name": format!("{kind}-{stream}"),
            "type": kind,
            "stream": stream,
            "toxicity": 1.0,
            "attributes": attributes,
        });
        self.call("POST", &format!("/proxies/{PROXY}/toxics"), &body)
            .await
    }

    async fn call(&self, method: &str, path: &str, body: &serde_json::Value) -> Result<(), Error> {
        let response = http_request(self.api_port, method, path, &body.to_string())
            .await
            .ok_or_else(|| Error::Task(format!("toxiproxy {method} {path}: no response")))?;
        let status = response.split_whitespace().nth(1).unwrap_or_default();
        if status.starts_with('2') {
            Ok(())
        } else {
            Err(Error::Task(format!(
                "toxiproxy {method} {path} failed: {response}"
            )))
        }
    }
}

/// toxiproxy's flags: its API on loopback `api_port`.
pub(super) fn args(api_port: u16) -> Vec<String> {
    vec!["-host=127.0.0.1".to_string(), format!("-port={api_port}")]
}
