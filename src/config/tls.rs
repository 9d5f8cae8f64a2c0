//! `[pool.NAME.tls]`: TLS from the proxy to a pool's memcached servers, and the loading of its
//! PEM files into a rustls `ClientConfig`. Files are read when the configuration is loaded (so a
//! bad path or bad PEM is a start-up error naming the file) and again on every reload. This
//! module reads files but never touches the network; connecting is [`crate::upstream`]'s job.
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde::Deserialize;

use super::{problem, Problem};

/// `[pool.NAME.tls]`: connect to the pool's servers over TLS (memcached `-Z`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// `ca_file = "/etc/picklebridge/memcached-ca.pem"`: PEM bundle of the CAs trusted to sign
    /// the servers' certificates (required; the system roots are never used). Relative paths
    /// are taken from the proxy's working directory.
    pub ca_file: PathBuf,
    /// `server_name = "memcached.internal"`: the name sent as SNI and checked against each
    /// server's certificate. Default: the host part of each server address (an IP address is
    /// checked against the certificate's IP SANs).
    #[serde(default)]
    pub server_name: Option<String>,
    /// `cert_file`: PEM client certificate chain, for servers that require client
    /// certificates (memcached `ssl_verify_mode=2`). Give `key_file` with it.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// `key_file`: PEM private key (PKCS#8, PKCS#1 or SEC1) of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The rustls configuration built from the files, shared with the running connections.
    #[serde(skip)]
    pub material: TlsMaterial,
}

impl TlsConfig {
    /// The settings a running proxy cannot change on reload: the files are re-read, but which
    /// files and which name must stay the same.
    pub fn same_settings(&self, other: &TlsConfig) -> bool {
        self.ca_file == other.ca_file
            && self.server_name == other.server_name
            && self.cert_file == other.cert_file
            && self.key_file == other.key_file
    }

    /// Reads the files and stores the resulting client configuration in [`TlsConfig::material`].
    /// `path` is the table's TOML path (`pool.NAME.tls`) for the problems.
    pub fn load(&self, path: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Some(name) = &self.server_name {
            if ServerName::try_from(name.as_str()).is_err() {
                out.push(problem(
                    format!("{path}.server_name"),
                    format!("`{name}` is not a DNS name or IP address"),
                ));
            }
        }
        let roots = load_roots(&self.ca_file, &format!("{path}.ca_file"), &mut out);
        let client_auth = match (&self.cert_file, &self.key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => load_client_auth(cert, key, path, &mut out),
            (Some(_), None) => {
                out.push(problem(
                    format!("{path}.key_file"),
                    "required with cert_file",
                ));
                None
            }
            (None, Some(_)) => {
                out.push(problem(
                    format!("{path}.cert_file"),
                    "required with key_file",
                ));
                None
            }
        };
        if !out.is_empty() {
            return out;
        }
        match build(roots, client_auth) {
            Ok(config) => self.material.set(Arc::new(config)),
            Err(e) => out.push(problem(path, format!("cannot build the TLS client: {e}"))),
        }
        out
    }

    /// The name to verify for the server at `addr` (`host:port`): `server_name` if set, else
    /// the host part of `addr`.
    ///
    /// # Errors
    /// The host is not a valid DNS name or IP address.
    pub fn server_name_for(&self, addr: &str) -> Result<ServerName<'static>, String> {
        let host = match &self.server_name {
            Some(name) => name.clone(),
            None => host_of(addr),
        };
        ServerName::try_from(host.clone())
            .map_err(|_| format!("`{host}` is not a DNS name or IP address (set server_name)"))
    }
}

/// The host part of `host:port` or `[v6]:port`.
fn host_of(addr: &str) -> String {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return sa.ip().to_string();
    }
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.to_string(),
    }
}

/// Reads a file, recording a problem that names it on failure.
fn read(file: &Path, path: &str, out: &mut Vec<Problem>) -> Option<Vec<u8>> {
    match std::fs::read(file) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            out.push(problem(
                path,
                format!("cannot read {}: {e}", file.display()),
            ));
            None
        }
    }
}

/// Every certificate of a PEM file (none is a problem).
fn load_certs(file: &Path, path: &str, out: &mut Vec<Problem>) -> Vec<CertificateDer<'static>> {
    let Some(pem) = read(file, path, out) else {
        return Vec::new();
    };
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        match cert {
            Ok(c) => certs.push(c),
            Err(e) => {
                out.push(problem(path, format!("{}: bad PEM: {e}", file.display())));
                return Vec::new();
            }
        }
    }
    if certs.is_empty() {
        out.push(problem(
            path,
            format!("{}: no PEM certificate found", file.display()),
        ));
    }
    certs
}

fn load_roots(file: &Path, path: &str, out: &mut Vec<Problem>) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(file, path, out) {
        if let Err(e) = roots.add(cert) {
            out.push(problem(
                path,
                format!("{}: not a usable CA certificate: {e}", file.display()),
            ));
        }
    }
    roots
}

type ClientAuth = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn load_client_auth(
    cert: &Path,
    key: &Path,
    path: &str,
    out: &mut Vec<Problem>,
) -> Option<ClientAuth> {
    let certs = load_certs(cert, &format!("{path}.cert_file"), out);
    let key_path = format!("{path}.key_file");
    let key = read(key, &key_path, out).and_then(|pem| {
        PrivateKeyDer::from_pem_slice(&pem)
            .map_err(|e| {
                let what = match e {
                    rustls::pki_types::pem::Error::NoItemsFound => {
                        "no PEM private key found".into()
                    }
                    e => format!("bad PEM: {e}"),
                };
                out.push(problem(&key_path, format!("{}: {what}", key.display())));
            })
            .ok()
    })?;
    (!certs.is_empty()).then_some((certs, key))
}

/// A rustls client with the `ring` provider, TLS 1.2 and 1.3, trusting only `roots`.
fn build(
    roots: RootCertStore,
    client_auth: Option<ClientAuth>,
) -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    match client_auth {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The loaded rustls client configuration of a pool, in a cell shared by every clone of the
/// [`TlsConfig`] (so the running connections see what a reload loads). Empty until
/// [`TlsConfig::load`] succeeds.
#[derive(Clone, Default)]
pub struct TlsMaterial(Arc<RwLock<Option<Arc<ClientConfig>>>>);

impl TlsMaterial {
    /// The current client configuration, `None` if never loaded.
    pub fn get(&self) -> Option<Arc<ClientConfig>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, config: Arc<ClientConfig>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(config);
    }

    /// Makes this cell hold what `other` holds (a reload: the running pool takes the newly
    /// read files; connections opened from now on use them).
    pub fn replace_from(&self, other: &TlsMaterial) {
        if let Some(config) = other.get() {
            self.set(config);
        }
    }
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loaded = self.get().is_some();
        f.debug_struct("TlsMaterial")
            .field("loaded", &loaded)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_the_port() {
        assert_eq!(host_of("127.0.0.1:11211"), "127.0.0.1");
        assert_eq!(host_of("[::1]:11211"), "::1");
        assert_eq!(host_of("mc-1.internal:11211"), "mc-1.internal");
    }

    fn tls(ca: &str) -> TlsConfig {
        TlsConfig {
            ca_file: PathBuf::from(ca),
            server_name: None,
            cert_file: None,
            key_file: None,
            material: TlsMaterial::default(),
        }
    }

    #[test]
    fn server_name_defaults_to_the_host_and_ip_addresses_are_ip_names() {
        let t = tls("ca.pem");
        assert!(matches!(
            t.server_name_for("127.0.0.1:11211"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            t.server_name_for("mc.internal:11211"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(t.server_name_for("bad_host!:1").is_err());
    }

    #[test]
    fn missing_and_garbage_files_are_problems_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let p = tls(missing.to_str().unwrap()).load("pool.p.tls");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].path, "pool.p.tls.ca_file");
        assert!(p[0].message.contains("missing.pem"), "{p:?}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let p = tls(garbage.to_str().unwrap()).load("pool.p.tls");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].message.contains("garbage.pem") && p[0].message.contains("no PEM certificate"),
            "{p:?}"
        );
        let bad_der = dir.path().join("bad-der.pem");
        std::fs::write(
            &bad_der,
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let t = tls(bad_der.to_str().unwrap());
        let p = t.load("pool.p.tls");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].message.contains("not a usable CA certificate"),
            "{p:?}"
        );
        assert!(t.material.get().is_none());
    }

    #[test]
    fn cert_and_key_come_together() {
        let mut t = tls("/nonexistent/ca.pem");
        t.cert_file = Some(PathBuf::from("/nonexistent/c.pem"));
        let paths: Vec<String> = t.load("pool.p.tls").into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["pool.p.tls.ca_file", "pool.p.tls.key_file"]);
    }
}
