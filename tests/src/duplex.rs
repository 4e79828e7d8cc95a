//! A test client's byte stream: a plain TCP connection, or the same through TLS (rustls's
//! blocking `StreamOwned`, the handshake done on first use), so the HTTP and WebSocket test
//! clients run over http and ws, and over https and wss, alike.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use framewire_client::TlsOptions;
use rustls::pki_types::ServerName;

/// See the module docs.
#[derive(Debug)]
pub enum Duplex {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

/// What the HTTPS listener's clients offer: ALPN `http/1.1`, trusting the CA in `ca` (PEM).
///
/// # Panics
/// If the file holds no certificate.
pub fn https_client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let options = TlsOptions::builder()
        .ca_file(ca)
        .expect("the test CA")
        .build()
        .expect("TLS options");
    let mut config = (*options.config).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

impl Duplex {
    /// TLS over `tcp` with `config`, checking the certificate names the address connected to.
    ///
    /// # Errors
    /// The socket has no peer address, or rustls cannot start.
    pub fn tls(tcp: TcpStream, config: Arc<rustls::ClientConfig>) -> io::Result<Self> {
        let name = ServerName::IpAddress(tcp.peer_addr()?.ip().into());
        let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(Self::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
    }

    /// The TCP connection under it.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => tls.get_ref(),
        }
    }

    /// The ALPN protocol TLS agreed on (`None` over plain TCP, or before the handshake).
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(tls) => tls.conn.alpn_protocol(),
        }
    }
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.read(buf),
            Self::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write(buf),
            Self::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.flush(),
            Self::Tls(tls) => tls.flush(),
        }
    }
}
