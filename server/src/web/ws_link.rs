//! A WebSocket connection's framing under its stream session (docs/PROTOCOL.md section 11.2):
//! each binary message carries what a TCP frame carries between its length prefix and its CRC
//! (the version byte and the frame body). Incoming messages are rebuilt into stream frames for the
//! session; the session's outgoing frames are cut out of its output and sent as messages. The
//! session, and the hub behind it, cannot tell the connection from TCP.

use framewire_protocol::wire::LENGTH_PREFIX_LEN;

use super::websocket::{
    Decoder, Message, Opcode, Violation, close_code, encode_close, encode_frame,
};
use crate::counters::Counters;

/// Bytes of WebSocket output queued before the session's output is left where it is: the
/// session's own bound (`max_queued_bytes`) then applies, as on TCP.
const OUT_HIGH_WATER: usize = 64 * 1024;
/// The CRC after a stream frame's body.
const CRC_LEN: usize = 4;

/// What the link heard from the client in one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Messages (or nothing yet): the connection goes on.
    Open,
    /// The client sent a close: it is answered, and the connection ends once that is out.
    PeerClosed(Option<u16>),
    /// The client broke a rule: a close with its code is queued, and the connection ends.
    Refused(Violation),
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct WebSocketLink {
    decoder: Decoder,
    /// Frames (and, first, the `101` response) to write.
    out: Vec<u8>,
    /// A close frame is queued: nothing more is sent.
    closing: bool,
    /// A close to queue once the answers to what came before it are out (the client's close
    /// echoed, or a broken rule's code): nothing more is read meanwhile.
    close_after: Option<(u16, &'static str)>,
}

impl WebSocketLink {
    /// A link whose first output is the handshake's `response`.
    pub(crate) fn new(response: Vec<u8>, max_frame_len: u32) -> Self {
        Self {
            decoder: Decoder::new(message_limit(max_frame_len)),
            out: response,
            closing: false,
            close_after: None,
        }
    }

    /// Whether the connection is closing: a close is queued, or is to be once the answers before
    /// it are out. Nothing more is read.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing || self.close_after.is_some()
    }

    /// Whether a close waits for the answers before it.
    pub(crate) fn close_waits(&self) -> bool {
        self.close_after.is_some()
    }

    /// Queues the close that waited (the answers before it are out).
    pub(crate) fn close_now(&mut self, counters: &Counters) {
        if let Some((code, why)) = self.close_after.take() {
            self.close(code, why, counters);
        }
    }

    /// Output waiting for the socket.
    pub(crate) fn output(&self) -> &[u8] {
        &self.out
    }

    /// `n` bytes of the output were written.
    pub(crate) fn consume(&mut self, n: usize) {
        self.out.drain(..n);
        if self.out.is_empty() {
            // An idle connection holds no output buffer (as its session holds none).
            self.out = Vec::new();
        }
    }

    /// Decodes what the client sent (unmasking it in place), answers its pings, and appends the
    /// stream frames its binary messages carry to `frames`, for the session. A close from the
    /// client, or a broken rule, is answered with a close once the session's answers to the
    /// messages before it have been sent ([`WebSocketLink::close_now`]), as an echo server
    /// echoes the messages before a close.
    pub(crate) fn take(
        &mut self,
        bytes: &mut [u8],
        max_frame_len: u32,
        frames: &mut Vec<u8>,
        with_crc: bool,
    ) -> Heard {
        if self.is_closing() {
            return Heard::Open;
        }
        self.decoder
            .set_max_message_len(message_limit(max_frame_len));
        let mut heard = Heard::Open;
        let out = &mut self.out;
        let fed = self.decoder.feed(bytes, |message| {
            if heard != Heard::Open {
                return;
            }
            match message {
                Message::Binary(body) => rebuild_frame(body, frames, with_crc),
                Message::Text(_) => {
                    heard = Heard::Refused(Violation {
                        code: close_code::UNSUPPORTED_DATA,
                        why: "framewire takes binary messages only",
                    });
                }
                // A peer that pings without reading gets no more pongs than the output bound
                // holds: answering the latest pings is enough (RFC 6455 section 5.5.3).
                Message::Ping(payload) if out.len() < OUT_HIGH_WATER => {
                    encode_frame(Opcode::Pong, payload, out);
                }
                Message::Ping(_) | Message::Pong(_) => {}
                Message::Close(said) => heard = Heard::PeerClosed(said.map(|(code, _)| code)),
            }
        });
        if let Err(v) = fed
            && heard == Heard::Open
        {
            heard = Heard::Refused(v);
        }
        self.close_after = match heard {
            Heard::Open => None,
            // Echo the client's code (RFC 6455 section 5.5.1).
            Heard::PeerClosed(code) => Some((code.unwrap_or(close_code::NORMAL), "")),
            Heard::Refused(v) => Some((v.code, v.why)),
        };
        heard
    }

    /// Queues a close frame; nothing is sent after it.
    pub(crate) fn close(&mut self, code: u16, why: &str, counters: &Counters) {
        if std::mem::replace(&mut self.closing, true) {
            return;
        }
        counters.count_websocket_close(code);
        encode_close(code, why, &mut self.out);
    }

    /// Copies the whole frames at the front of the session's output (`pending`) into the output
    /// as binary messages, while the output is below its high-water mark; returns how many bytes
    /// of `pending` they took, for the caller to consume.
    pub(crate) fn pump(&mut self, pending: &[u8]) -> usize {
        if self.closing {
            return 0;
        }
        let mut at = 0;
        while self.out.len() < OUT_HIGH_WATER {
            let Some(prefix) = pending.get(at..at + LENGTH_PREFIX_LEN) else {
                break;
            };
            let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
            let Some(frame) = pending.get(at + LENGTH_PREFIX_LEN..at + LENGTH_PREFIX_LEN + len)
            else {
                break;
            };
            encode_frame(Opcode::Binary, &frame[..len - CRC_LEN], &mut self.out);
            at += LENGTH_PREFIX_LEN + len;
        }
        at
    }
}

/// The longest message: a frame's version and body, its length less the CRC.
fn message_limit(max_frame_len: u32) -> usize {
    (max_frame_len as usize).saturating_sub(CRC_LEN)
}

/// Appends the stream frame a message carries: its length prefix, the message, and its CRC when
/// `with_crc` (a packet capture records the stream, which `framewire inspect` checks); otherwise
/// zeros, which the session, told to skip checksums, does not read: WebSocket delivers the
/// message whole and TCP keeps it intact, so a CRC computed here only to be checked there would
/// catch nothing.
fn rebuild_frame(message: &[u8], frames: &mut Vec<u8>, with_crc: bool) {
    let len = (message.len() + CRC_LEN) as u32;
    frames.extend_from_slice(&len.to_be_bytes());
    frames.extend_from_slice(message);
    let crc = if with_crc {
        crc32fast::hash(message)
    } else {
        0
    };
    frames.extend_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/PROTOCOL.md section 2.1's `ping (TCP)` frame.
    const PING_STREAM: [u8; 20] = [
        0x00, 0x00, 0x00, 0x10, 0x01, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x42,
        0x40, 0xf1, 0x49, 0x65, 0xe1,
    ];

    #[test]
    fn the_spec_example_goes_both_ways() {
        // docs/PROTOCOL.md section 11.2: the server's message is the frame without its length
        // prefix and CRC.
        let mut link = WebSocketLink::new(Vec::new(), 65536);
        assert_eq!(link.pump(&PING_STREAM), PING_STREAM.len());
        let mut server = vec![0x82, 0x0c];
        server.extend_from_slice(&PING_STREAM[4..16]);
        assert_eq!(link.output(), server);
        // The client's masked message rebuilds into the very stream frame.
        let mut client = vec![
            0x82, 0x8c, 0x37, 0xfa, 0x21, 0x3d, 0x36, 0xea, 0x21, 0x3d, 0x37, 0xfa, 0x21, 0x3d,
            0x37, 0xf5, 0x63, 0x7d,
        ];
        let mut frames = Vec::new();
        let heard = link.take(&mut client, 65536, &mut frames, true);
        assert_eq!(heard, Heard::Open);
        assert_eq!(frames, PING_STREAM);
    }

    #[test]
    fn output_above_the_high_water_mark_stays_in_the_session() {
        let mut link = WebSocketLink::new(Vec::new(), 65536);
        let many: Vec<u8> = PING_STREAM.repeat(10_000);
        let taken = link.pump(&many);
        assert!(taken < many.len());
        assert_eq!(taken % PING_STREAM.len(), 0, "whole frames only");
        assert!(link.output().len() < OUT_HIGH_WATER + 16);
        // Half a frame is left for later.
        let mut fresh = WebSocketLink::new(Vec::new(), 65536);
        assert_eq!(fresh.pump(&PING_STREAM[..10]), 0);
    }

    #[test]
    fn a_text_message_and_a_close_are_answered_with_closes() {
        let counters = Counters::default();
        let mut link = WebSocketLink::new(Vec::new(), 65536);
        let mut text = Vec::new();
        super::super::websocket::encode_client_frame(
            true,
            Opcode::Text,
            b"hi",
            [1, 2, 3, 4],
            &mut text,
        );
        let heard = link.take(&mut text, 65536, &mut Vec::new(), true);
        assert!(matches!(heard, Heard::Refused(v) if v.code == close_code::UNSUPPORTED_DATA));
        assert!(link.is_closing() && link.close_waits());
        // The session's answers to what came before still go out, then the close.
        assert_eq!(link.pump(&PING_STREAM), PING_STREAM.len());
        link.close_now(&counters);
        link.consume(14);
        assert_eq!(&link.output()[..4], &[0x88, 0x26, 0x03, 0xEB]);
        assert_eq!(counters.snapshot().websocket_closes(1003), 1);
        // Nothing after the close.
        assert_eq!(link.pump(&PING_STREAM), 0);
    }
}
