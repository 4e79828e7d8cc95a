//! What the server answers to each frame of a TCP session, without any I/O.
//!
//! This is the stand-in until the session engine of `framewire-protocol` and the hub take over:
//! the handshake (Hello to Welcome or Reject), heartbeats, `sys.ping`, an echo of Data frames, and
//! Close. Everything it decides is a list of frames to send and whether to end the connection.

use bytes::Bytes;
use framewire_protocol::DecodeError;
use framewire_protocol::wire::{
    CloseAck, Data, ErrorFrame, Frame, FrameBody, FrameKind, Pong, Reason, Reject, Response,
    Status, Text, VERSION, Welcome,
};

use crate::config::ServerConfig;

/// Whether the connection goes on after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Keep reading.
    Continue,
    /// Send what was queued, then close, for this reason.
    Close(Reason),
}

/// The per-connection protocol state.
#[derive(Debug)]
pub struct Responder {
    connection_id: u64,
    welcomed: bool,
    idle_timeout_ms: u32,
    heartbeat_interval_ms: u32,
    max_frame_len: u32,
}

impl Responder {
    /// A responder for a new connection.
    pub fn new(connection_id: u64, config: &ServerConfig) -> Self {
        Self {
            connection_id,
            welcomed: false,
            idle_timeout_ms: config.idle_timeout_ms,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            max_frame_len: config.max_frame_len,
        }
    }

    /// The frame limit agreed in the handshake (the server's own before it).
    pub fn max_frame_len(&self) -> u32 {
        self.max_frame_len
    }

    /// Handles a frame body that failed to parse. Ignorable unknown kinds are skipped
    /// (docs/PROTOCOL.md section 3.3); anything else ends the connection.
    pub fn on_parse_error(&mut self, error: DecodeError, out: &mut Vec<Frame>) -> Outcome {
        if let DecodeError::UnknownKind(kind) = error
            && FrameKind::is_ignorable(kind)
        {
            return Outcome::Continue;
        }
        close(error.close_reason(), &error.to_string(), out)
    }

    /// Handles one parsed frame, pushing the frames to send onto `out`.
    pub fn on_frame(&mut self, frame: Frame, out: &mut Vec<Frame>) -> Outcome {
        if !self.welcomed {
            return self.on_handshake(frame, out);
        }
        let channel = frame.channel;
        match frame.body {
            FrameBody::Ping(p) => out.push(
                Frame::new(Pong {
                    timestamp_us: p.timestamp_us,
                })
                .on_channel(channel),
            ),
            FrameBody::Pong(_) | FrameBody::Ack(_) => {}
            FrameBody::Data(d) => {
                out.push(Frame::new(Data { payload: d.payload }).on_channel(channel));
            }
            FrameBody::Request(r) => {
                let (status, payload) = if r.target == "sys.ping" {
                    (Status::OK, Bytes::from_static(b"pong"))
                } else {
                    (
                        Status::NO_RESPONDER,
                        Bytes::from_static(b"no service of that name"),
                    )
                };
                out.push(
                    Frame::new(Response {
                        id: r.id,
                        status,
                        payload,
                    })
                    .on_channel(channel),
                );
            }
            FrameBody::Close(_) => {
                out.push(Frame::new(CloseAck));
                return Outcome::Close(Reason::NORMAL);
            }
            FrameBody::CloseAck(_) => return Outcome::Close(Reason::NORMAL),
            FrameBody::Hello(_)
            | FrameBody::Challenge(_)
            | FrameBody::Welcome(_)
            | FrameBody::Reject(_)
            | FrameBody::Message(_)
            | FrameBody::QueueDelivery(_) => {
                let what = format!("{} is not a frame a client sends here", frame.body.kind());
                return close(Reason::PROTOCOL_ERROR, &what, out);
            }
            other => out.push(Frame::new(ErrorFrame {
                reason: Reason::UNKNOWN_KIND,
                refused_kind: other.kind() as u8,
                message: Text::from("not served by this server yet"),
            })),
        }
        Outcome::Continue
    }

    fn on_handshake(&mut self, frame: Frame, out: &mut Vec<Frame>) -> Outcome {
        let FrameBody::Hello(hello) = frame.body else {
            let what = format!("expected Hello, got {}", frame.body.kind());
            return close(Reason::PROTOCOL_ERROR, &what, out);
        };
        if !(hello.min_version..=hello.max_version).contains(&VERSION) {
            out.push(Frame::new(Reject {
                reason: Reason::UNSUPPORTED_VERSION,
                min_version: VERSION,
                max_version: VERSION,
                message: Text::from(format!("this server speaks version {VERSION} only")),
            }));
            return Outcome::Close(Reason::UNSUPPORTED_VERSION);
        }
        if hello.idle_timeout_ms != 0 {
            self.idle_timeout_ms = self.idle_timeout_ms.min(hello.idle_timeout_ms);
        }
        self.max_frame_len = self.max_frame_len.min(
            hello
                .max_frame_len
                .max(framewire_protocol::wire::MIN_FRAME_LEN),
        );
        self.welcomed = true;
        out.push(Frame::new(Welcome {
            resumed: false,
            version: VERSION,
            connection_id: self.connection_id,
            idle_timeout_ms: self.idle_timeout_ms,
            max_frame_len: self.max_frame_len,
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            missed: 0,
            session_token: Bytes::new(),
        }));
        Outcome::Continue
    }
}

fn close(reason: Reason, message: &str, out: &mut Vec<Frame>) -> Outcome {
    out.push(Frame::new(framewire_protocol::wire::Close {
        reason,
        message: Text::from(message),
    }));
    Outcome::Close(reason)
}

#[cfg(test)]
mod tests {
    use framewire_protocol::wire::{Close, HelloOptions, Ping, Request};

    use super::*;

    fn hello(min: u8, max: u8) -> Frame {
        Frame::new(framewire_protocol::wire::Hello {
            min_version: min,
            max_version: max,
            idle_timeout_ms: 5_000,
            max_frame_len: 4096,
            nonce: 1,
            options: HelloOptions::new(),
        })
    }

    fn welcomed() -> Responder {
        let mut r = Responder::new(9, &ServerConfig::default());
        let mut out = Vec::new();
        assert_eq!(r.on_frame(hello(1, 1), &mut out), Outcome::Continue);
        r
    }

    #[test]
    fn hello_gets_a_welcome_with_the_smaller_limits() {
        let mut r = Responder::new(9, &ServerConfig::default());
        let mut out = Vec::new();
        assert_eq!(r.on_frame(hello(1, 3), &mut out), Outcome::Continue);
        let FrameBody::Welcome(w) = &out[0].body else {
            panic!("{out:?}")
        };
        assert_eq!((w.version, w.connection_id), (1, 9));
        assert_eq!((w.idle_timeout_ms, w.max_frame_len), (5_000, 4096));
        assert_eq!(r.max_frame_len(), 4096);
    }

    #[test]
    fn other_versions_are_rejected() {
        let mut r = Responder::new(1, &ServerConfig::default());
        let mut out = Vec::new();
        assert_eq!(
            r.on_frame(hello(2, 4), &mut out),
            Outcome::Close(Reason::UNSUPPORTED_VERSION)
        );
        assert!(
            matches!(&out[0].body, FrameBody::Reject(j) if j.reason == Reason::UNSUPPORTED_VERSION)
        );
    }

    #[test]
    fn anything_before_hello_closes() {
        let mut r = Responder::new(1, &ServerConfig::default());
        let mut out = Vec::new();
        let outcome = r.on_frame(Frame::new(Ping { timestamp_us: 1 }), &mut out);
        assert_eq!(outcome, Outcome::Close(Reason::PROTOCOL_ERROR));
        assert!(matches!(&out[0].body, FrameBody::Close(c) if c.reason == Reason::PROTOCOL_ERROR));
    }

    #[test]
    fn ping_data_request_close() {
        let mut r = welcomed();
        let mut out = Vec::new();
        r.on_frame(Frame::new(Ping { timestamp_us: 77 }), &mut out);
        r.on_frame(
            Frame::new(Data {
                payload: Bytes::from_static(b"x"),
            })
            .on_channel(4),
            &mut out,
        );
        r.on_frame(
            Frame::new(Request {
                id: 3,
                timeout_ms: 0,
                target: Text::from("sys.ping"),
                payload: Bytes::new(),
            }),
            &mut out,
        );
        let close = r.on_frame(
            Frame::new(Close {
                reason: Reason::NORMAL,
                message: Text::default(),
            }),
            &mut out,
        );
        assert_eq!(close, Outcome::Close(Reason::NORMAL));
        assert!(matches!(
            out[0].body,
            FrameBody::Pong(Pong { timestamp_us: 77 })
        ));
        assert_eq!(out[1].channel, 4);
        assert!(
            matches!(&out[2].body, FrameBody::Response(r) if r.id == 3 && r.status == Status::OK)
        );
        assert!(matches!(out[3].body, FrameBody::CloseAck(_)));
    }

    #[test]
    fn unknown_kinds_skip_or_close_by_their_high_bit() {
        let mut r = welcomed();
        let mut out = Vec::new();
        assert_eq!(
            r.on_parse_error(DecodeError::UnknownKind(0x90), &mut out),
            Outcome::Continue
        );
        assert!(out.is_empty());
        assert_eq!(
            r.on_parse_error(DecodeError::UnknownKind(0x70), &mut out),
            Outcome::Close(Reason::UNKNOWN_KIND)
        );
    }
}
