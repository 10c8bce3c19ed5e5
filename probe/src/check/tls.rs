//! TLS: client configurations (with "ignore TLS errors" and extra CAs), the
//! peer-certificate capture used for expiry figures, and the `tls` check.
//!
//! The certificate verifier wraps rustls' WebPKI verifier. Before verifying,
//! it copies the presented chain into a thread-local slot, so the thread that
//! ran a handshake (HTTP through ureq, or a direct `tls` check) can read the
//! certificates afterwards even when verification failed. Checks are
//! blocking and a handshake runs on the calling thread, so the slot always
//! belongs to the check running on that thread.

use super::CheckOutcome;
use crate::error::SetupError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

thread_local! {
    static PEER_CHAIN: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Forget the certificates captured on this thread.
pub(crate) fn clear_captured() {
    PEER_CHAIN.with(|c| c.borrow_mut().clear());
}

/// Take the certificates (DER, leaf first) captured on this thread by the
/// last handshake, if any.
pub(crate) fn take_captured() -> Vec<Vec<u8>> {
    PEER_CHAIN.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

/// What is known of a peer's certificate chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// The earliest `notAfter` in the chain, Unix seconds.
    pub earliest_expiry: i64,
    /// The leaf certificate's subject.
    pub subject: String,
}

impl CertInfo {
    /// Whole days left at `now_ms` (negative once expired).
    pub fn days_left(&self, now_ms: i64) -> i64 {
        (self.earliest_expiry * 1000 - now_ms).div_euclid(86_400_000)
    }
}

/// Parse a chain (DER, leaf first) into a [`CertInfo`]; `None` if it is
/// empty or the leaf does not parse.
pub fn cert_info(chain: &[Vec<u8>]) -> Option<CertInfo> {
    let mut earliest: Option<i64> = None;
    let mut subject = None;
    for (i, der) in chain.iter().enumerate() {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            if i == 0 {
                return None;
            }
            continue;
        };
        let t = cert.validity().not_after.timestamp();
        earliest = Some(earliest.map_or(t, |e| e.min(t)));
        if i == 0 {
            subject = Some(cert.subject().to_string());
        }
    }
    Some(CertInfo { earliest_expiry: earliest?, subject: subject? })
}

#[derive(Debug)]
struct CapturingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    ignore_errors: bool,
}

impl ServerCertVerifier for CapturingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        PEER_CHAIN.with(|c| {
            let mut c = c.borrow_mut();
            c.clear();
            c.push(end_entity.as_ref().to_vec());
            c.extend(intermediates.iter().map(|d| d.as_ref().to_vec()));
        });
        let res = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        if self.ignore_errors {
            Ok(ServerCertVerified::assertion())
        } else {
            res
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Builds and caches rustls client configurations and ureq agents, so
/// monitors with the same TLS settings share them (and their connection
/// pool).
#[derive(Default)]
pub struct TlsCache {
    configs: HashMap<(bool, Option<PathBuf>), Arc<ClientConfig>>,
    agents: HashMap<(bool, Option<PathBuf>, u32), ureq::Agent>,
}

impl std::fmt::Debug for TlsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsCache")
            .field("configs", &self.configs.len())
            .field("agents", &self.agents.len())
            .finish()
    }
}

fn load_ca(monitor: &str, path: &Path, roots: &mut RootCertStore) -> Result<(), SetupError> {
    let err = |reason: String| SetupError::CaFile { monitor: monitor.to_string(), path: path.to_path_buf(), reason };
    let data = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut n = 0;
    for cert in rustls_pemfile::certs(&mut &data[..]) {
        let cert = cert.map_err(|e| err(format!("bad PEM: {e}")))?;
        roots.add(cert).map_err(|e| err(format!("unusable certificate: {e}")))?;
        n += 1;
    }
    if n == 0 {
        return Err(err("no PEM certificate found".into()));
    }
    Ok(())
}

impl TlsCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The client configuration for these settings.
    pub fn client_config(
        &mut self,
        monitor: &str,
        ignore_errors: bool,
        ca_file: Option<&Path>,
    ) -> Result<Arc<ClientConfig>, SetupError> {
        let key = (ignore_errors, ca_file.map(Path::to_path_buf));
        if let Some(c) = self.configs.get(&key) {
            return Ok(c.clone());
        }
        let tls_err = |reason: String| SetupError::Tls { monitor: monitor.to_string(), reason };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(p) = ca_file {
            load_ca(monitor, p, &mut roots)?;
        }
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| tls_err(e.to_string()))?;
        let verifier = Arc::new(CapturingVerifier { inner, provider: provider.clone(), ignore_errors });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        let config = Arc::new(config);
        self.configs.insert(key, config.clone());
        Ok(config)
    }

    /// A ureq agent for these settings (shared connection pool).
    pub fn agent(
        &mut self,
        monitor: &str,
        ignore_errors: bool,
        ca_file: Option<&Path>,
        max_redirects: u32,
    ) -> Result<ureq::Agent, SetupError> {
        let key = (ignore_errors, ca_file.map(Path::to_path_buf), max_redirects);
        if let Some(a) = self.agents.get(&key) {
            return Ok(a.clone());
        }
        let config = self.client_config(monitor, ignore_errors, ca_file)?;
        let agent = ureq::AgentBuilder::new()
            .tls_config(config)
            .redirects(max_redirects)
            .user_agent(concat!("probe/", env!("CARGO_PKG_VERSION"), " (uptime monitor)"))
            .max_idle_connections(4096)
            .max_idle_connections_per_host(256)
            .build();
        self.agents.insert(key, agent.clone());
        Ok(agent)
    }
}

/// The `tls` check: handshake with `hostname:port` and report the chain's
/// earliest expiry.
#[derive(Debug)]
pub struct TlsCheck {
    pub(crate) hostname: String,
    pub(crate) port: u16,
    pub(crate) config: Arc<ClientConfig>,
}

impl TlsCheck {
    pub(crate) fn run(&self, now_ms: i64, timeout: Duration) -> CheckOutcome {
        let start = Instant::now();
        clear_captured();
        let res = self.handshake(start + timeout);
        let chain = take_captured();
        let info = cert_info(&chain);
        let ping = Some(start.elapsed().as_millis() as u64);
        let mut out = match (res, &info) {
            (Err(e), _) => CheckOutcome::down(e),
            (Ok(()), None) => CheckOutcome::down("server presented no readable certificate"),
            (Ok(()), Some(ci)) => {
                let days = ci.days_left(now_ms);
                if ci.earliest_expiry * 1000 <= now_ms {
                    CheckOutcome::down(format!("certificate expired {} days ago ({})", -days, ci.subject))
                } else {
                    CheckOutcome::up(format!("certificate valid for {days} more days ({})", ci.subject), ping)
                }
            }
        };
        out.cert = info;
        out
    }

    fn handshake(&self, deadline: Instant) -> Result<(), String> {
        let mut sock = super::connect(&self.hostname, self.port, deadline)?;
        let name = ServerName::try_from(self.hostname.clone())
            .map_err(|e| format!("{:?} is not a valid TLS server name: {e}", self.hostname))?;
        let mut conn = ClientConnection::new(self.config.clone(), name).map_err(|e| format!("TLS setup: {e}"))?;
        while conn.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("timeout during TLS handshake".into());
            }
            set_timeouts(&sock, left)?;
            conn.complete_io(&mut sock).map_err(|e| describe_io(&e, "TLS handshake"))?;
        }
        // Send close_notify; the peer's reaction does not matter.
        conn.send_close_notify();
        let _ = conn.write_tls(&mut sock);
        let _ = sock.flush();
        Ok(())
    }
}

fn set_timeouts(sock: &TcpStream, d: Duration) -> Result<(), String> {
    let d = d.max(Duration::from_millis(1));
    sock.set_read_timeout(Some(d)).and_then(|_| sock.set_write_timeout(Some(d))).map_err(|e| e.to_string())
}

fn describe_io(e: &std::io::Error, what: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => format!("timeout during {what}"),
        _ => format!("{what}: {e}"),
    }
}
