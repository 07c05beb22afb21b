//! The throwaway PKI of one control plane: a CA, the apiserver's serving certificate,
//! an admin client certificate in `system:masters`, and a service-account signing key.

use std::{fs, net::Ipv4Addr, path::Path};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::Error;

/// Paths of the files written by [`write`], relative to the control plane's folder.
pub(crate) const CA_CERT: &str = "pki/ca.crt";
pub(crate) const SERVING_CERT: &str = "pki/apiserver.crt";
pub(crate) const SERVING_KEY: &str = "pki/apiserver.key";
pub(crate) const ADMIN_CERT: &str = "pki/admin.crt";
pub(crate) const ADMIN_KEY: &str = "pki/admin.key";
/// The ECDSA key that signs service-account tokens, and its public half.
pub(crate) const SERVICE_ACCOUNT_KEY: &str = "pki/service-account.key";
pub(crate) const SERVICE_ACCOUNT_PUB: &str = "pki/service-account.pub";

/// Generates every key and certificate and writes them under `dir`.
pub(crate) fn write(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir.join("pki")).map_err(Error::io("create the pki folder"))?;
    let pki = |e: rcgen::Error| Error::Pki(e.to_string());

    let (ca_cert, issuer) = certificate_authority()?;
    let (serving_cert, serving_key) = localhost_serving(&issuer, "kube-apiserver")?;

    // kube-apiserver maps CN to the user name and O to groups.
    let admin_key = KeyPair::generate().map_err(pki)?;
    let mut admin = CertificateParams::new(Vec::<String>::new()).map_err(pki)?;
    admin
        .distinguished_name
        .push(DnType::CommonName, "kube-reconcile-admin");
    admin
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_cert = admin.signed_by(&admin_key, &issuer).map_err(pki)?;

    let service_account_key = KeyPair::generate().map_err(pki)?;

    for (path, pem) in [
        (CA_CERT, ca_cert.pem()),
        (SERVING_CERT, serving_cert.pem()),
        (SERVING_KEY, serving_key.serialize_pem()),
        (ADMIN_CERT, admin_cert.pem()),
        (ADMIN_KEY, admin_key.serialize_pem()),
        (SERVICE_ACCOUNT_KEY, service_account_key.serialize_pem()),
        (SERVICE_ACCOUNT_PUB, service_account_key.public_key_pem()),
    ] {
        fs::write(dir.join(path), pem).map_err(Error::io("write a pki file"))?;
    }
    Ok(())
}

/// A fresh CA: its certificate and the issuer that signs with it.
fn certificate_authority() -> Result<(rcgen::Certificate, Issuer<'static, KeyPair>), Error> {
    let pki = |e: rcgen::Error| Error::Pki(e.to_string());
    let ca_key = KeyPair::generate().map_err(pki)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(pki)?;
    ca.distinguished_name
        .push(DnType::CommonName, "kube-reconcile test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(pki)?;
    Ok((ca_cert, Issuer::new(ca, ca_key)))
}

/// A serving certificate for `localhost` and 127.0.0.1 named `common_name`.
fn localhost_serving(
    issuer: &Issuer<'static, KeyPair>,
    common_name: &str,
) -> Result<(rcgen::Certificate, KeyPair), Error> {
    let pki = |e: rcgen::Error| Error::Pki(e.to_string());
    let key = KeyPair::generate().map_err(pki)?;
    let mut serving = CertificateParams::new(vec!["localhost".to_string()]).map_err(pki)?;
    serving
        .subject_alt_names
        .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    serving
        .distinguished_name
        .push(DnType::CommonName, common_name);
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = serving.signed_by(&key, issuer).map_err(pki)?;
    Ok((cert, key))
}

/// A serving certificate for a server on this machine that the local API server calls
/// (a webhook), with the CA that signed it: all PEM.
#[derive(Debug, Clone)]
pub struct LocalServingCertificate {
    /// The CA's certificate, for the webhook configuration's `caBundle`.
    pub ca_pem: String,
    /// The server's certificate (for `localhost` and 127.0.0.1).
    pub cert_pem: String,
    /// The server's private key.
    pub key_pem: String,
}

impl LocalServingCertificate {
    /// A fresh CA and a certificate signed by it.
    pub fn generate() -> Result<Self, Error> {
        let (ca_cert, issuer) = certificate_authority()?;
        let (cert, key) = localhost_serving(&issuer, "kube-reconcile webhook")?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A kubeconfig (JSON, which every YAML reader accepts) for the admin user.
pub(crate) fn kubeconfig(dir: &Path, server: &str) -> String {
    let path = |p: &str| dir.join(p).display().to_string();
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kube-reconcile", "cluster": {
            "server": server,
            "certificate-authority": path(CA_CERT),
        }}],
        "users": [{"name": "admin", "user": {
            "client-certificate": path(ADMIN_CERT),
            "client-key": path(ADMIN_KEY),
        }}],
        "contexts": [{"name": "kube-reconcile", "context": {
            "cluster": "kube-reconcile", "user": "admin",
        }}],
        "current-context": "kube-reconcile",
    })
    .to_string()
}
