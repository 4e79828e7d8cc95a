//! How each compared system says "subscribe", "publish" and "here is a message", over plain TCP:
//! framewire (docs/PROTOCOL.md), NATS (the text protocol: `SUB`, `PUB`, `MSG`) and MQTT 3.1.1
//! (`QoS` 0 `PUBLISH`). Each adapter does a blocking handshake, then encodes publishes into a buffer
//! and finds the payloads of the deliveries in the bytes a subscriber reads.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use bytes::{Buf, BytesMut};
use framewire_protocol::wire::{
    DEFAULT_MAX_FRAME_LEN, Frame, FrameBody, Hello, HelloOptions, Publish, StreamDeframer,
    Subscribe, Text, encode_stream_frame_into,
};

use super::ws_client::Framing;

/// The topic every benchmark publishes to (NATS spells its levels with dots).
pub const TOPIC: &str = "bench/fanout";
const NATS_SUBJECT: &str = "bench.fanout";

/// A compared system's client side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// framewire over TCP.
    Framewire,
    /// NATS.
    Nats,
    /// MQTT 3.1.1, `QoS` 0.
    Mqtt,
}

/// Finds deliveries in a subscriber's input.
#[derive(Debug)]
pub struct DeliveryParser {
    wire: Wire,
    deframer: StreamDeframer,
}

fn read_more(stream: &mut impl Read, buf: &mut BytesMut) -> io::Result<()> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "server closed",
        ));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Wire {
    /// The system's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Framewire => "framewire",
            Self::Nats => "nats-server",
            Self::Mqtt => "mosquitto",
        }
    }

    /// Connects a client: the handshake, and for a subscriber its subscription, both waited for.
    ///
    /// # Errors
    /// The server refused, closed, or sent something unexpected.
    pub fn handshake(
        self,
        stream: &mut TcpStream,
        client: usize,
        subscribe: bool,
    ) -> io::Result<()> {
        self.handshake_over(stream, client, subscribe)
    }

    /// [`Wire::handshake`] over any byte stream of the protocol (a WebSocket's, say).
    ///
    /// # Errors
    /// As [`Wire::handshake`].
    pub fn handshake_over(
        self,
        stream: &mut (impl Read + Write),
        client: usize,
        subscribe: bool,
    ) -> io::Result<()> {
        match self {
            Self::Framewire => framewire_handshake(stream, subscribe),
            Self::Nats => nats_handshake(stream, subscribe),
            Self::Mqtt => mqtt_handshake(stream, client, subscribe),
        }
    }

    /// Appends one publish of `payload` to `out`.
    ///
    /// # Panics
    /// If a framewire publish cannot be encoded (the topic is a constant that fits, so never).
    pub fn encode_publish(self, payload: &[u8], out: &mut BytesMut) {
        match self {
            Self::Framewire => {
                let frame = Frame::new(Publish {
                    retain: false,
                    id: 0,
                    topic: Text::from_static(TOPIC),
                    payload: bytes::Bytes::copy_from_slice(payload),
                });
                encode_stream_frame_into(&frame, out).expect("a bench publish fits");
            }
            Self::Nats => {
                out.extend_from_slice(
                    format!("PUB {NATS_SUBJECT} {}\r\n", payload.len()).as_bytes(),
                );
                out.extend_from_slice(payload);
                out.extend_from_slice(b"\r\n");
            }
            Self::Mqtt => {
                let remaining = 2 + TOPIC.len() + payload.len();
                out.extend_from_slice(&[0x30]);
                put_varint(out, remaining);
                out.extend_from_slice(&(TOPIC.len() as u16).to_be_bytes());
                out.extend_from_slice(TOPIC.as_bytes());
                out.extend_from_slice(payload);
            }
        }
    }

    /// How the system carries its protocol over WebSocket, and the path it serves it at; `None`
    /// for one that has no WebSocket listener in the comparisons.
    pub fn websocket(self) -> Option<(Framing, &'static str)> {
        match self {
            Self::Framewire => Some((Framing::Frames, "/ws")),
            Self::Nats => Some((Framing::Bytes, "/")),
            Self::Mqtt => None,
        }
    }

    /// A parser for a subscriber's input.
    pub fn parser(self) -> DeliveryParser {
        DeliveryParser {
            wire: self,
            deframer: StreamDeframer::new(DEFAULT_MAX_FRAME_LEN),
        }
    }
}

impl DeliveryParser {
    /// Calls `on_payload` with each complete delivery's payload at the front of `buf`, and removes
    /// what it consumed; an incomplete delivery stays for the next read.
    ///
    /// # Errors
    /// Bytes that are not this system's deliveries.
    pub fn drain(
        &mut self,
        buf: &mut BytesMut,
        mut on_payload: impl FnMut(&[u8]),
    ) -> io::Result<()> {
        match self.wire {
            Wire::Framewire => loop {
                let span = self
                    .deframer
                    .decode_span(buf)
                    .map_err(|e| invalid(format!("framewire: {e}")))?;
                let Some(span) = span else { return Ok(()) };
                let body = &buf[span.body.clone()];
                // Message: kind 0x33, flags, channel, topic (u16 length + bytes), payload.
                if body.first() == Some(&0x33) && body.len() >= 5 {
                    let topic_len = usize::from(u16::from_be_bytes([body[3], body[4]]));
                    if let Some(payload) = body.get(5 + topic_len..) {
                        on_payload(payload);
                    }
                }
                buf.advance(span.total);
            },
            Wire::Nats => loop {
                let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
                    return Ok(());
                };
                let line = &buf[..eol];
                if line.starts_with(b"MSG ") {
                    let size: usize = std::str::from_utf8(line)
                        .ok()
                        .and_then(|l| l.rsplit(' ').next())
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| invalid("nats: bad MSG line".into()))?;
                    let total = eol + 2 + size + 2;
                    if buf.len() < total {
                        return Ok(());
                    }
                    on_payload(&buf[eol + 2..eol + 2 + size]);
                    buf.advance(total);
                } else {
                    // PING, +OK, INFO: nothing to count (a PING every two minutes goes unanswered
                    // in a run of seconds).
                    buf.advance(eol + 2);
                }
            },
            Wire::Mqtt => loop {
                let Some((remaining, header)) = get_varint(buf.get(1..).unwrap_or(&[])) else {
                    return Ok(());
                };
                let total = 1 + header + remaining;
                if buf.len() < total {
                    return Ok(());
                }
                if buf[0] & 0xf0 == 0x30 && remaining >= 2 {
                    let body = &buf[1 + header..total];
                    let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
                    if let Some(payload) = body.get(2 + topic_len..) {
                        on_payload(payload);
                    }
                }
                buf.advance(total);
            },
        }
    }
}

fn framewire_handshake(stream: &mut (impl Read + Write), subscribe: bool) -> io::Result<()> {
    let mut out = BytesMut::new();
    let hello = Frame::new(Hello::new(0, HelloOptions::new()));
    encode_stream_frame_into(&hello, &mut out).map_err(|e| invalid(e.to_string()))?;
    if subscribe {
        let sub = Frame::new(Subscribe {
            id: 1,
            filter: Text::from_static(TOPIC),
        });
        encode_stream_frame_into(&sub, &mut out).map_err(|e| invalid(e.to_string()))?;
    }
    stream.write_all(&out)?;
    let mut deframer = StreamDeframer::new(DEFAULT_MAX_FRAME_LEN);
    let mut buf = BytesMut::new();
    let mut welcomed = false;
    loop {
        while let Some(body) = deframer
            .decode(&mut buf)
            .map_err(|e| invalid(e.to_string()))?
        {
            match Frame::parse(body).map_err(|e| invalid(e.to_string()))?.body {
                FrameBody::Welcome(_) if !subscribe => return Ok(()),
                FrameBody::Welcome(_) => welcomed = true,
                FrameBody::Response(r) if welcomed && r.id == 1 => return Ok(()),
                other => return Err(invalid(format!("framewire: unexpected {other:?}"))),
            }
        }
        read_more(stream, &mut buf)?;
    }
}

fn nats_handshake(stream: &mut (impl Read + Write), subscribe: bool) -> io::Result<()> {
    let mut cmd = String::from("CONNECT {\"verbose\":false,\"pedantic\":false}\r\n");
    if subscribe {
        cmd.push_str("SUB ");
        cmd.push_str(NATS_SUBJECT);
        cmd.push_str(" 1\r\n");
    }
    cmd.push_str("PING\r\n");
    stream.write_all(cmd.as_bytes())?;
    let mut buf = BytesMut::new();
    loop {
        if let Some(at) = buf.windows(6).position(|w| w == b"PONG\r\n") {
            buf.advance(at + 6);
            return Ok(());
        }
        if buf.windows(4).any(|w| w == b"-ERR") {
            return Err(invalid(format!("nats: {}", String::from_utf8_lossy(&buf))));
        }
        read_more(stream, &mut buf)?;
    }
}

fn mqtt_handshake(
    stream: &mut (impl Read + Write),
    client: usize,
    subscribe: bool,
) -> io::Result<()> {
    let id = format!("fw-bench-{client}");
    let mut out = BytesMut::new();
    let variable = [0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c];
    out.extend_from_slice(&[0x10]);
    put_varint(&mut out, variable.len() + 2 + id.len());
    out.extend_from_slice(&variable);
    out.extend_from_slice(&(id.len() as u16).to_be_bytes());
    out.extend_from_slice(id.as_bytes());
    if subscribe {
        out.extend_from_slice(&[0x82]);
        put_varint(&mut out, 2 + 2 + TOPIC.len() + 1);
        out.extend_from_slice(&[0x00, 0x01]);
        out.extend_from_slice(&(TOPIC.len() as u16).to_be_bytes());
        out.extend_from_slice(TOPIC.as_bytes());
        out.extend_from_slice(&[0x00]);
    }
    stream.write_all(&out)?;
    let mut buf = BytesMut::new();
    let mut connected = false;
    loop {
        while let Some((remaining, header)) = get_varint(buf.get(1..).unwrap_or(&[])) {
            let total = 1 + header + remaining;
            if buf.len() < total {
                break;
            }
            match buf[0] {
                0x20 if buf.get(1 + header + 1) == Some(&0) => {
                    if !subscribe {
                        return Ok(());
                    }
                    connected = true;
                }
                0x90 if connected => return Ok(()),
                other => return Err(invalid(format!("mqtt: unexpected packet {other:#x}"))),
            }
            buf.advance(total);
        }
        read_more(stream, &mut buf)?;
    }
}

fn put_varint(out: &mut BytesMut, mut n: usize) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.extend_from_slice(&[byte]);
        if n == 0 {
            return;
        }
    }
}

/// An MQTT remaining length and the bytes it took, if complete.
fn get_varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut n = 0usize;
    for (i, &b) in bytes.iter().take(4).enumerate() {
        n |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_wire_finds_its_own_publish_as_a_delivery_shape() {
        // framewire and MQTT deliveries have the shape of a publish with the topic in front; NATS
        // differs (MSG vs PUB), so it is checked on a literal MSG.
        let mut buf = BytesMut::from(
            &b"MSG bench.fanout 1 3\r\nabc\r\nPING\r\nMSG bench.fanout 1 2\r\nx"[..],
        );
        let mut got = Vec::new();
        Wire::Nats
            .parser()
            .drain(&mut buf, |p| got.push(p.to_vec()))
            .unwrap();
        assert_eq!(got, vec![b"abc".to_vec()]);
        assert_eq!(
            &buf[..],
            b"MSG bench.fanout 1 2\r\nx",
            "the partial one waits"
        );

        let mut buf = BytesMut::new();
        Wire::Mqtt.encode_publish(&[7; 200], &mut buf);
        Wire::Mqtt.encode_publish(b"z", &mut buf);
        let mut got = Vec::new();
        Wire::Mqtt
            .parser()
            .drain(&mut buf, |p| got.push(p.len()))
            .unwrap();
        assert_eq!(got, vec![200, 1]);

        let message = Frame::new(framewire_protocol::wire::Message {
            retained: false,
            number: None,
            topic: Text::from_static(TOPIC),
            payload: bytes::Bytes::from_static(b"hello"),
        });
        let mut buf = BytesMut::new();
        encode_stream_frame_into(&message, &mut buf).unwrap();
        let mut got = Vec::new();
        Wire::Framewire
            .parser()
            .drain(&mut buf, |p| got.push(p.to_vec()))
            .unwrap();
        assert_eq!(got, vec![b"hello".to_vec()]);
        assert!(buf.is_empty());
    }
}
