//! Taking connections at a worker's listeners: the handshake rate and connection limits (a
//! refusal said in the listener's own terms), the socket options, the TLS session a TLS or HTTPS
//! connection starts with, and whether the connection is a framewire stream or an HTTP one.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use framewire_client::tls_io;
use framewire_protocol::session::{Instant, StreamSession};
use framewire_protocol::wire::Reason;
use log::{error, info, warn};
use mio::{Interest, Token};

use super::{ACCEPT_BACKOFF, Door, TimerKey, Worker};
use crate::connection::Connection;
use crate::hub::WEB_TOKEN_BIT;
use crate::shared::Shared;
use crate::tcp_options;

impl Worker {
    pub(super) fn accept(&mut self, now: Instant, door: Door) {
        loop {
            let listener = match door {
                Door::Plain => self.listeners.tcp.as_ref(),
                Door::Tls => self.listeners.tls.as_ref(),
                Door::Http => self.listeners.http.as_ref(),
                Door::Https => self.listeners.https.as_ref(),
            };
            let Some(listener) = listener else {
                return;
            };
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    if self.out_of_descriptors {
                        info!("file descriptors available again; accepting");
                        self.out_of_descriptors = false;
                    }
                    if !self.shared.allow_handshake(peer.ip(), now) {
                        refuse(&mut stream, peer, door, Reason::ADDRESS_LIMIT, &self.shared);
                        continue;
                    }
                    if let Err(reason) = self.shared.open_connection(peer.ip()) {
                        refuse(&mut stream, peer, door, reason, &self.shared);
                        continue;
                    }
                    if let Err(e) = tcp_options::configure(&stream, &self.config) {
                        warn!("{peer}: cannot set socket options: {e}");
                    }
                    let mut token = Token(Shared::tcp_token(self.index, self.next_seq));
                    self.next_seq += 1;
                    if door.is_web() {
                        token.0 |= WEB_TOKEN_BIT;
                    }
                    if let Err(e) =
                        self.poll
                            .registry()
                            .register(&mut stream, token, Interest::READABLE)
                    {
                        warn!("{peer}: cannot register: {e}");
                        self.shared.close_connection(peer.ip());
                        continue;
                    }
                    let Ok(tls) = self.start_tls(door, peer) else {
                        let _ = self.poll.registry().deregister(&mut stream);
                        self.shared.close_connection(peer.ip());
                        continue;
                    };
                    if door.is_web() {
                        self.accept_http(now, stream, peer, token, tls);
                        continue;
                    }
                    info!(
                        "{peer}: connected{}",
                        if tls.is_some() { " (TLS)" } else { "" }
                    );
                    if self.shared.capturing()
                        && let Ok(local) = stream.local_addr()
                    {
                        self.shared.capture(|c| c.tcp_open(peer, local));
                    }
                    let session = StreamSession::server(
                        Arc::clone(&self.session_config),
                        token.0 as u64,
                        now,
                    );
                    self.connections
                        .insert(token, Box::new(Connection::new(stream, peer, session, tls)));
                    self.settle(now, token, None);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_out_of_descriptors(&e) => {
                    // The connections waiting in the backlog stay there: with edge-triggered
                    // readiness nothing would wake us for them, and retrying at once would spin.
                    // Try again after a pause (by then a connection may have ended).
                    if !self.out_of_descriptors {
                        warn!("out of file descriptors ({e}); retrying every {ACCEPT_BACKOFF:?}");
                        self.out_of_descriptors = true;
                    }
                    self.schedule(TimerKey::RetryAccept(door), Some(now + ACCEPT_BACKOFF));
                    return;
                }
                Err(e) => {
                    error!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// The TLS a connection at `door` starts with: `None` at a plaintext door; `Err` (logged)
    /// when rustls cannot start one.
    fn start_tls(
        &self,
        door: Door,
        peer: SocketAddr,
    ) -> Result<Option<Box<rustls::ServerConnection>>, ()> {
        let config = match (door, self.shared.tls.as_ref()) {
            (Door::Tls, Some(terms)) => terms.current(),
            (Door::Https, Some(terms)) => terms.current_http(),
            _ => return Ok(None),
        };
        match rustls::ServerConnection::new(config) {
            Ok(mut tls) => {
                tls.set_buffer_limit(Some(tls_io::SEND_BUFFER_LIMIT));
                Ok(Some(Box::new(tls)))
            }
            Err(e) => {
                warn!("{peer}: cannot start TLS: {e}");
                Err(())
            }
        }
    }
}

/// Tells a connection over a limit why, in one Close frame (at the HTTP listener, a `503`)
/// written without waiting (it fits any socket buffer), and drops it. At the TLS and HTTPS
/// listeners nothing is written (no TLS session is started for a refused connection, and bytes in
/// the clear would be a broken record to the client): the log says why.
fn refuse(
    stream: &mut mio::net::TcpStream,
    peer: SocketAddr,
    door: Door,
    reason: Reason,
    shared: &Shared,
) {
    use std::io::Write;
    info!("{peer}: refused: {reason}");
    if matches!(door, Door::Tls | Door::Https) {
        return;
    }
    if door == Door::Http {
        shared.counters.count_http_response(503);
        let mut out = Vec::new();
        crate::web::http::Response::text(503, format!("connection limit: {reason}"))
            .write(false, false, &mut out);
        let _ = stream.write(&out);
        return;
    }
    let mut frame = bytes::BytesMut::new();
    let close = framewire_protocol::wire::Frame::new(framewire_protocol::wire::Close {
        reason,
        message: framewire_protocol::wire::Text::from_static("connection limit"),
    });
    if framewire_protocol::wire::encode_stream_frame_into(&close, &mut frame).is_ok() {
        let _ = stream.write(&frame);
    }
}

/// Whether an accept failed because the process or the system has no file descriptors left.
fn is_out_of_descriptors(e: &io::Error) -> bool {
    // EMFILE (24) and ENFILE (23) on Linux.
    matches!(e.raw_os_error(), Some(23 | 24))
}
