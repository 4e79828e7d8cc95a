//! TLS for a TCP client: whom to trust, which name the server's certificate must carry, and the
//! client's own certificate for servers that ask for one (docs/PROTOCOL.md section 2.1).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::error::ClientError;
use crate::tls_io::ALPN;

/// TLS settings for a client ([`ClientOptions::tls`](crate::ClientOptions::tls)).
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// rustls's client settings (trust anchors, client certificate, ALPN `framewire/1`).
    pub config: Arc<rustls::ClientConfig>,
    /// The name the server's certificate must carry; `None`: the address connected to (an IP
    /// address in the certificate's subject alternative names).
    pub server_name: Option<ServerName<'static>>,
}

/// What to trust and what to show, before it becomes a [`TlsOptions`].
#[derive(Debug, Default)]
#[must_use]
pub struct TlsOptionsBuilder {
    ca: Option<Vec<CertificateDer<'static>>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    server_name: Option<ServerName<'static>>,
}

impl TlsOptions {
    /// Starts TLS settings: the system's trust anchors unless [`TlsOptionsBuilder::ca_file`].
    pub fn builder() -> TlsOptionsBuilder {
        TlsOptionsBuilder::default()
    }

    /// Settings from a rustls configuration of the caller's own (ALPN `framewire/1` is set if it
    /// names none).
    pub fn from_config(mut config: rustls::ClientConfig) -> Self {
        if config.alpn_protocols.is_empty() {
            config.alpn_protocols = vec![ALPN.to_vec()];
        }
        Self {
            config: Arc::new(config),
            server_name: None,
        }
    }

    /// The name checked against the certificate of the server at `addr`.
    pub fn name_for(&self, addr: SocketAddr) -> ServerName<'static> {
        self.server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
    }
}

impl TlsOptionsBuilder {
    /// Trust the certificates in the PEM file at `path` (a private CA's), not the system's.
    ///
    /// # Errors
    /// The file cannot be read or holds no certificate.
    pub fn ca_file(mut self, path: &Path) -> Result<Self, ClientError> {
        self.ca = Some(read_certificates(path)?);
        Ok(self)
    }

    /// Check the server's certificate against `name` instead of the address connected to.
    ///
    /// # Errors
    /// `name` is neither a DNS name nor an IP address.
    pub fn server_name(mut self, name: &str) -> Result<Self, ClientError> {
        let name = ServerName::try_from(name.to_owned())
            .map_err(|e| ClientError::Invalid(format!("server name {name:?}: {e}")))?;
        self.server_name = Some(name);
        Ok(self)
    }

    /// Show the certificate chain in `cert` (PEM) with its private key in `key` (PEM, PKCS#8,
    /// PKCS#1 or SEC1) to servers that ask for one.
    ///
    /// # Errors
    /// A file cannot be read or holds nothing usable.
    pub fn client_certificate(mut self, cert: &Path, key: &Path) -> Result<Self, ClientError> {
        self.identity = Some((read_certificates(cert)?, read_private_key(key)?));
        Ok(self)
    }

    /// The settings.
    ///
    /// # Errors
    /// No trust anchor (the system has none and no CA file was given), or the client
    /// certificate and key do not belong together.
    pub fn build(self) -> Result<TlsOptions, ClientError> {
        let mut roots = RootCertStore::empty();
        if let Some(ca) = self.ca {
            for cert in ca {
                roots
                    .add(cert)
                    .map_err(|e| ClientError::Invalid(format!("CA certificate: {e}")))?;
            }
        } else {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // The system's store may hold certificates rustls cannot use; skip those.
                let _ = roots.add(cert);
            }
        }
        if roots.is_empty() {
            return Err(ClientError::Invalid(
                "no trust anchor: the system has none; give a CA file".into(),
            ));
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Invalid(e.to_string()))?
        .with_root_certificates(roots);
        let config = match self.identity {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ClientError::Invalid(format!("client certificate: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        let mut options = TlsOptions::from_config(config);
        options.server_name = self.server_name;
        Ok(options)
    }
}

/// Every certificate in a PEM file.
///
/// # Errors
/// The file cannot be read, or holds no certificate.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| ClientError::Invalid(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ClientError::Invalid(format!(
            "{}: no certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

/// The first private key in a PEM file.
///
/// # Errors
/// The file cannot be read, or holds no private key.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, ClientError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| ClientError::Invalid(format!("{}: {e}", path.display())))
}
