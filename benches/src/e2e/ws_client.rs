//! The client side of WebSocket for the comparisons (RFC 6455): the opening handshake, masked
//! binary messages out, the server's unmasked frames in, and how each compared system carries its
//! protocol in messages: framewire one frame per message without its length prefix and CRC
//! (docs/PROTOCOL.md section 11.2), NATS its text protocol as it is, in messages of any size.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The masking key of every message the generators send (the cost of masking is the client's,
/// and the same for every system).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Sends the opening handshake for `path` and reads the `101`; returns what came after it.
///
/// # Errors
/// The server answered with another status, or closed.
pub fn upgrade(stream: &mut TcpStream, path: &str, protocol: Option<&str>) -> io::Result<BytesMut> {
    let offer = protocol
        .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if !buf.starts_with(b"HTTP/1.1 101") {
                return Err(invalid(format!(
                    "no upgrade: {}",
                    String::from_utf8_lossy(&buf[..end])
                )));
            }
            buf.advance(end + 4);
            return Ok(buf);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed in the handshake",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Appends one masked binary message carrying `payload`.
pub fn encode_masked(payload: &[u8], out: &mut BytesMut) {
    out.put_u8(0x80 | OP_BINARY);
    let n = payload.len();
    if n < 126 {
        out.put_u8(0x80 | n as u8);
    } else if let Ok(short) = u16::try_from(n) {
        out.put_u8(0xfe);
        out.put_u16(short);
    } else {
        out.put_u8(0xff);
        out.put_u64(n as u64);
    }
    out.put_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
}

/// The next whole server frame at the front of `buf`: its opcode and payload (taken from `buf`).
///
/// # Errors
/// As [`frame_at`].
pub fn next_frame(buf: &mut BytesMut) -> io::Result<Option<(u8, Bytes)>> {
    let Some(frame) = frame_at(buf)? else {
        return Ok(None);
    };
    buf.advance(frame.header);
    let payload = buf.split_to(frame.len).freeze();
    Ok(Some((frame.opcode, payload)))
}

/// Where a whole server frame lies at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameAt {
    pub opcode: u8,
    /// Header bytes before the payload.
    pub header: usize,
    /// Payload bytes.
    pub len: usize,
}

impl FrameAt {
    /// The bytes the whole frame takes.
    pub fn end(self) -> usize {
        self.header + self.len
    }
}

/// The whole server frame at the front of `buf`, if it is all there (read in place: no copy).
///
/// # Errors
/// A masked server frame, or a length no comparison sends.
pub fn frame_at(buf: &[u8]) -> io::Result<Option<FrameAt>> {
    let Some(&[b0, b1]) = buf.get(..2) else {
        return Ok(None);
    };
    if b1 & 0x80 != 0 {
        return Err(invalid("a masked server frame"));
    }
    let (len, header) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(l) => (usize::from(u16::from_be_bytes([l[0], l[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(l) => {
                let n = u64::from_be_bytes(l.try_into().unwrap_or([0; 8]));
                (
                    usize::try_from(n).map_err(|_| invalid("a frame above memory"))?,
                    10,
                )
            }
            None => return Ok(None),
        },
        n => (usize::from(n), 2),
    };
    if len > 64 * 1024 * 1024 {
        return Err(invalid("a frame above 64 MiB"));
    }
    if buf.len() < header + len {
        return Ok(None);
    }
    Ok(Some(FrameAt {
        opcode: b0 & 0x0f,
        header,
        len,
    }))
}

/// How a system's protocol travels in WebSocket messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// framewire: each stream frame is one message, without its length prefix and CRC.
    Frames,
    /// The protocol's bytes as they are (NATS), split into messages anywhere.
    Bytes,
}

impl Framing {
    /// Appends the messages that carry `stream` (whole stream frames, for [`Framing::Frames`]).
    pub fn wrap(self, stream: &[u8], out: &mut BytesMut) {
        match self {
            Self::Bytes => encode_masked(stream, out),
            Self::Frames => {
                let mut at = 0;
                while let Some(prefix) = stream.get(at..at + 4) {
                    let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
                    let end = at + 4 + len as usize;
                    let Some(frame) = stream.get(at + 4..end) else {
                        break;
                    };
                    encode_masked(&frame[..frame.len().saturating_sub(4)], out);
                    at = end;
                }
            }
        }
    }

    /// Moves the messages whole at the front of `raw` into `stream` as the protocol's bytes (a
    /// framewire message gets its length prefix and CRC back, so a stream deframer reads it).
    ///
    /// # Errors
    /// A frame that is not a server's binary message, ping or close.
    pub fn unwrap(self, raw: &mut BytesMut, stream: &mut BytesMut) -> io::Result<()> {
        while let Some((opcode, payload)) = next_frame(raw)? {
            match opcode {
                OP_BINARY | 0x1 | 0x0 => match self {
                    Self::Bytes => stream.extend_from_slice(&payload),
                    Self::Frames => {
                        stream.put_u32((payload.len() + 4) as u32);
                        stream.extend_from_slice(&payload);
                        stream.put_u32(crc32fast::hash(&payload));
                    }
                },
                OP_PING | 0xA => {}
                OP_CLOSE => return Err(invalid("the server closed the WebSocket")),
                other => return Err(invalid(format!("opcode {other}"))),
            }
        }
        Ok(())
    }
}

/// A WebSocket connection as a byte stream of its system's protocol, for blocking handshakes:
/// each write is carried as [`Framing::wrap`] carries it, reads give what [`Framing::unwrap`]
/// gives.
#[derive(Debug)]
pub struct WsStream<'a> {
    tcp: &'a mut TcpStream,
    framing: Framing,
    raw: BytesMut,
    plain: BytesMut,
}

impl<'a> WsStream<'a> {
    /// Over an upgraded connection; `leftover` is what came after the `101`.
    pub fn new(tcp: &'a mut TcpStream, framing: Framing, leftover: BytesMut) -> Self {
        Self {
            tcp,
            framing,
            raw: leftover,
            plain: BytesMut::new(),
        }
    }
}

impl Read for WsStream<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut chunk = [0u8; 4096];
        loop {
            self.framing.unwrap(&mut self.raw, &mut self.plain)?;
            if !self.plain.is_empty() {
                let n = out.len().min(self.plain.len());
                out[..n].copy_from_slice(&self.plain[..n]);
                self.plain.advance(n);
                return Ok(n);
            }
            let n = self.tcp.read(&mut chunk)?;
            if n == 0 {
                return Ok(0);
            }
            self.raw.extend_from_slice(&chunk[..n]);
        }
    }
}

impl Write for WsStream<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut out = BytesMut::new();
        self.framing.wrap(bytes, &mut out);
        self.tcp.write_all(&out)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framewire_frames_go_out_as_messages_and_come_back_as_frames() {
        // docs/PROTOCOL.md section 8's `ping (TCP)` frame.
        let ping = [
            0x00, 0x00, 0x00, 0x10, 0x01, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f,
            0x42, 0x40, 0xf1, 0x49, 0x65, 0xe1,
        ];
        let mut out = BytesMut::new();
        Framing::Frames.wrap(&ping, &mut out);
        // Section 11.2's example of the client's message.
        assert_eq!(&out[..6], &[0x82, 0x8c, 0x37, 0xfa, 0x21, 0x3d]);
        let mut server = BytesMut::from(&[0x82, 0x0c][..]);
        server.extend_from_slice(&ping[4..16]);
        let mut stream = BytesMut::new();
        Framing::Frames.unwrap(&mut server, &mut stream).unwrap();
        assert_eq!(&stream[..], &ping);
    }
}
