//! Writing a stream connection's bytes: to the socket as they are, or sealed into TLS records
//! first. The framewire connection (its session's output, or its WebSocket link's) and the HTTP
//! connection (its responses) write through the same two calls.

use std::io::{self, Write};

use framewire_client::tls_io;
use mio::net::TcpStream;

use crate::connection::End;

/// Where a connection's bytes go: the socket, through TLS when there is TLS.
pub(crate) struct SocketOut<'a> {
    stream: &'a mut TcpStream,
    tls: Option<&'a mut rustls::ServerConnection>,
}

impl<'a> SocketOut<'a> {
    pub(crate) fn new(
        stream: &'a mut TcpStream,
        tls: Option<&'a mut rustls::ServerConnection>,
    ) -> Self {
        Self { stream, tls }
    }

    /// Writes (seals and writes) what it can of `bytes` in one go: how many were taken, `Ok(0)`
    /// when the socket would take nothing now. Under TLS, records already sealed go out first
    /// (with `bytes` empty, only those).
    ///
    /// # Errors
    /// The socket failed.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<usize, End> {
        if let Some(tls) = self.tls.as_deref_mut() {
            return tls_io::write_sealed(tls, self.stream, bytes)
                .map_err(|e| End::Failed(e.kind()));
        }
        if bytes.is_empty() {
            return Ok(0);
        }
        loop {
            match self.stream.write(bytes) {
                Ok(0) => return Err(End::Failed(io::ErrorKind::WriteZero)),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(End::Failed(e.kind())),
            }
        }
    }

    /// [`SocketOut::write`] until `bytes` are all taken or the socket would block: how many were.
    ///
    /// # Errors
    /// The socket failed.
    pub(crate) fn write_until_blocked(&mut self, bytes: &[u8]) -> Result<usize, End> {
        let mut taken = 0;
        loop {
            let n = self.write(&bytes[taken..])?;
            taken += n;
            if n == 0 || taken == bytes.len() {
                return Ok(taken);
            }
        }
    }
}
