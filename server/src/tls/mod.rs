//! TLS on TCP (docs/PROTOCOL.md section 2.1): the certificate and key the server shows, the CA
//! its clients' certificates must chain to (mutual TLS, whose subject's common name becomes the
//! session's identity), reloaded on SIGHUP without touching the connections already up, and the
//! reasons a handshake fails, in words for the log and in counters for `sys.stats`.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use framewire_client::tls_io::{self, ALPN, TlsRead};
use framewire_client::{read_certificates, read_private_key};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;

mod subject;

use crate::connection::End;
use crate::counters::Counters;

pub use subject::{SubjectError, common_name};

/// Where the server's TLS material is read from (settings `tls_cert`, `tls_key`,
/// `tls_client_ca`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM, the server's own first.
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Clients must show a certificate chaining to one in this PEM file; `None`: no client
    /// certificates are asked for.
    pub client_ca: Option<PathBuf>,
}

/// The rustls configurations new TLS connections take: the framewire listener's (ALPN
/// `framewire/1`, client certificates when `client_ca` is set) and the HTTPS listener's (ALPN
/// `http/1.1`, no client certificates: a browser's session is named by its connect token).
/// [`TlsTerms::reload`] swaps both (a connection keeps the one it started with).
#[derive(Debug)]
pub(crate) struct TlsTerms {
    files: TlsFiles,
    current: RwLock<Configs>,
}

/// One reading of the files, in the two shapes the listeners take.
#[derive(Debug, Clone)]
struct Configs {
    framewire: Arc<rustls::ServerConfig>,
    http: Arc<rustls::ServerConfig>,
}

impl Configs {
    fn read(files: &TlsFiles) -> io::Result<Self> {
        Ok(Self {
            framewire: server_config(files, ALPN, files.client_ca.as_deref())?,
            http: server_config(files, HTTP_ALPN, None)?,
        })
    }
}

/// The ALPN protocol the HTTPS listener agrees on (HTTP/1.1 only: no HTTP/2).
const HTTP_ALPN: &[u8] = b"http/1.1";

impl TlsTerms {
    /// Reads the files.
    ///
    /// # Errors
    /// A file cannot be read or holds nothing usable, or the key does not match the certificate.
    pub(crate) fn load(files: TlsFiles) -> io::Result<Self> {
        let current = RwLock::new(Configs::read(&files)?);
        Ok(Self { files, current })
    }

    fn configs(&self) -> Configs {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The configuration for a connection accepted now at the framewire TLS listener.
    pub(crate) fn current(&self) -> Arc<rustls::ServerConfig> {
        self.configs().framewire
    }

    /// The configuration for a connection accepted now at the HTTPS listener.
    pub(crate) fn current_http(&self) -> Arc<rustls::ServerConfig> {
        self.configs().http
    }

    /// Reads the files again; on failure the configuration in use stays.
    ///
    /// # Errors
    /// As [`TlsTerms::load`].
    pub(crate) fn reload(&self) -> io::Result<()> {
        let configs = Configs::read(&self.files)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = configs;
        Ok(())
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

/// A configuration showing the files' certificate, agreeing on `alpn`, asking for client
/// certificates from `client_ca` when given.
fn server_config(
    files: &TlsFiles,
    alpn: &[u8],
    client_ca: Option<&Path>,
) -> io::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certificates(&files.cert).map_err(invalid)?;
    let key = read_private_key(&files.key).map_err(invalid)?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(invalid)?;
    let builder = match client_ca {
        Some(path) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(client_roots(path)?),
                provider,
            )
            .build()
            .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        invalid(format!(
            "{} with {}: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

fn client_roots(path: &Path) -> io::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in read_certificates(path).map_err(invalid)? {
        roots
            .add(cert)
            .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    }
    Ok(roots)
}

/// One read of TLS records from `stream` into the first half of `scratch`, opened into the
/// second half: what the socket said, and where in `scratch` the plaintext lies. A handshake
/// that completes is counted; one that fails is counted with its reason, and the connection
/// ends with the words for the log.
pub(crate) fn read_tls(
    tls: &mut rustls::ServerConnection,
    stream: &mut mio::net::TcpStream,
    scratch: &mut [u8],
    counters: &Counters,
) -> Result<(TlsRead, Range<usize>), End> {
    let handshaking = tls.is_handshaking();
    let (raw, plain) = scratch.split_at_mut(scratch.len() / 2);
    let read_now = tls_io::read_records(tls, stream, raw, plain);
    if handshaking && !tls.is_handshaking() {
        counters.count_tls_handshake();
    }
    let (got, opened) = read_now.map_err(|e| {
        if !handshaking {
            return End::Tls(e.to_string());
        }
        let (failure, words) = HandshakeFailure::of(&e);
        counters.count_tls_failure(failure);
        End::Tls(words)
    })?;
    let half = raw.len();
    Ok((got, half..half + opened))
}

/// Why a TLS handshake failed, as `sys.stats` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeFailure {
    /// The client's first bytes are not a TLS record: a plaintext client at the TLS port.
    NotTls,
    /// A certificate was refused: the client's by the server (missing, expired, unknown CA),
    /// or the server's by the client (an alert saying so).
    Certificate,
    /// The handshake did not finish within the first-frame deadline.
    Timeout,
    /// Anything else: no common version or cipher suite, no common ALPN protocol, a bad message.
    Other,
}

impl HandshakeFailure {
    /// The failure a rustls error stands for, and the words for the log.
    pub(crate) fn of(e: &io::Error) -> (Self, String) {
        let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
            return (Self::Other, e.to_string());
        };
        match tls {
            rustls::Error::InvalidMessage(m) => (
                Self::NotTls,
                format!("not a TLS handshake ({m:?}): a plaintext client at the TLS port?"),
            ),
            rustls::Error::InvalidCertificate(c) => (
                Self::Certificate,
                format!("client certificate refused: {c:?}"),
            ),
            rustls::Error::NoCertificatesPresented => (
                Self::Certificate,
                "no client certificate: this port requires one".to_string(),
            ),
            rustls::Error::AlertReceived(alert) => {
                let words = format!("the client ended the handshake: {alert:?}");
                let certificate = matches!(
                    alert,
                    rustls::AlertDescription::BadCertificate
                        | rustls::AlertDescription::UnknownCA
                        | rustls::AlertDescription::CertificateExpired
                        | rustls::AlertDescription::CertificateUnknown
                        | rustls::AlertDescription::CertificateRevoked
                        | rustls::AlertDescription::UnsupportedCertificate
                );
                (
                    if certificate {
                        Self::Certificate
                    } else {
                        Self::Other
                    },
                    words,
                )
            }
            other => (Self::Other, format!("TLS handshake failed: {other}")),
        }
    }
}
