//! TLS on TCP (docs/PROTOCOL.md section 2.1): the certificate and key the server shows, the CA
//! its clients' certificates must chain to (mutual TLS, whose subject's common name becomes the
//! session's identity), reloaded on SIGHUP without touching the connections already up, and the
//! reasons a handshake fails, in words for the log and in counters for `sys.stats`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use framewire_client::tls_io::ALPN;
use framewire_client::{read_certificates, read_private_key};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;

mod subject;

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

/// The rustls configuration new TLS connections take; [`TlsTerms::reload`] swaps it (a
/// connection keeps the one it started with).
#[derive(Debug)]
pub(crate) struct TlsTerms {
    files: TlsFiles,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl TlsTerms {
    /// Reads the files.
    ///
    /// # Errors
    /// A file cannot be read or holds nothing usable, or the key does not match the certificate.
    pub(crate) fn load(files: TlsFiles) -> io::Result<Self> {
        let config = server_config(&files)?;
        Ok(Self {
            files,
            current: RwLock::new(config),
        })
    }

    /// The configuration for a connection accepted now.
    pub(crate) fn current(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Reads the files again; on failure the configuration in use stays.
    ///
    /// # Errors
    /// As [`TlsTerms::load`].
    pub(crate) fn reload(&self) -> io::Result<()> {
        let config = server_config(&self.files)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
        Ok(())
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

fn server_config(files: &TlsFiles) -> io::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certificates(&files.cert).map_err(invalid)?;
    let key = read_private_key(&files.key).map_err(invalid)?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(invalid)?;
    let builder = match &files.client_ca {
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
    config.alpn_protocols = vec![ALPN.to_vec()];
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
