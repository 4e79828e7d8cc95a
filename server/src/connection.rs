//! One TCP connection: its socket, the incomplete tail of its input, its queued output, and the
//! responder that decides what to answer.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use framewire_protocol::wire::{Frame, Reason, StreamDeframer, encode_stream_frame_into};
use log::{debug, info, warn};
use mio::net::TcpStream;

use crate::config::ServerConfig;
use crate::responder::{Outcome, Responder};

/// Why a connection is over, for the log and the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The peer closed its side.
    PeerClosed,
    /// We closed it, for this reason (a Close frame was queued where possible).
    Closed(Reason),
    /// The socket failed.
    Failed(io::ErrorKind),
}

#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    input: BytesMut,
    deframer: StreamDeframer,
    output: BytesMut,
    responder: Responder,
    max_queued_bytes: usize,
    /// Set once the connection is to close: stop reading, flush, then end.
    closing: Option<Reason>,
    replies: Vec<Frame>,
}

impl Connection {
    pub(crate) fn new(stream: TcpStream, peer: SocketAddr, id: u64, config: &ServerConfig) -> Self {
        Self {
            stream,
            peer,
            input: BytesMut::new(),
            deframer: StreamDeframer::new(config.max_frame_len),
            output: BytesMut::new(),
            responder: Responder::new(id, config),
            max_queued_bytes: config.max_queued_bytes,
            closing: None,
            replies: Vec::new(),
        }
    }

    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether there is output waiting for the socket to become writable.
    pub(crate) fn wants_write(&self) -> bool {
        !self.output.is_empty()
    }

    /// Reads until the socket would block, handling each complete frame, then flushes.
    /// `scratch` is the event loop's shared read buffer: only an incomplete frame is kept per
    /// connection.
    pub(crate) fn on_readable(&mut self, scratch: &mut [u8]) -> Option<End> {
        while self.closing.is_none() {
            match self.stream.read(scratch) {
                Ok(0) => return Some(End::PeerClosed),
                Ok(n) => {
                    self.input.extend_from_slice(&scratch[..n]);
                    self.process_input();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Some(End::Failed(e.kind())),
            }
        }
        if self.input.is_empty() {
            // Idle connections hold no input buffer.
            self.input = BytesMut::new();
        }
        self.flush()
    }

    fn process_input(&mut self) {
        while self.closing.is_none() {
            let outcome = match self.deframer.decode(&mut self.input) {
                Ok(None) => return,
                Ok(Some(body)) => match Frame::parse(body) {
                    Ok(frame) => {
                        debug!("{}: received {:?}", self.peer, frame.kind());
                        self.responder.on_frame(frame, &mut self.replies)
                    }
                    Err(e) => self.responder.on_parse_error(e, &mut self.replies),
                },
                Err(e) => {
                    warn!("{}: bad input: {e}", self.peer);
                    let reason = e.close_reason();
                    self.replies
                        .push(Frame::new(framewire_protocol::wire::Close {
                            reason,
                            message: e.to_string().into(),
                        }));
                    Outcome::Close(reason)
                }
            };
            self.deframer
                .set_max_frame_len(self.responder.max_frame_len());
            self.queue_replies();
            if let Outcome::Close(reason) = outcome {
                self.closing = Some(reason);
                self.input = BytesMut::new();
            }
        }
    }

    fn queue_replies(&mut self) {
        for frame in self.replies.drain(..) {
            if let Err(e) = encode_stream_frame_into(&frame, &mut self.output) {
                warn!("{}: cannot encode a {:?}: {e}", self.peer, frame.kind());
            }
        }
        if self.output.len() > self.max_queued_bytes && self.closing.is_none() {
            info!(
                "{}: {} bytes queued for a peer that does not read; closing",
                self.peer,
                self.output.len()
            );
            self.output.clear();
            self.closing = Some(Reason::SLOW_CONSUMER);
        }
    }

    /// Queues a frame from outside the conversation (a shutdown Close, say).
    pub(crate) fn send(&mut self, frame: &Frame) {
        self.replies.push(frame.clone());
        self.queue_replies();
    }

    /// Writes queued output until the socket would block. Returns the end of the connection when
    /// it is closing and everything has been written, or when the socket failed.
    pub(crate) fn flush(&mut self) -> Option<End> {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return Some(End::Failed(io::ErrorKind::WriteZero)),
                Ok(n) => self.output.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Some(End::Failed(e.kind())),
            }
        }
        self.output = BytesMut::new();
        self.closing.map(End::Closed)
    }
}
