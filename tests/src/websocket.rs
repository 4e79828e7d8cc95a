//! A WebSocket test client written from RFC 6455 and docs/PROTOCOL.md section 11 alone (none of
//! the server's code): the opening handshake, masked frames in and unmasked frames out, and
//! framewire frames carried one per binary message. It can also send frames that break the rules,
//! for the hostile-input tests.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use framewire_client::RecvError;
use framewire_client::read_some;
use framewire_protocol::wire::{Frame, Hello, HelloOptions, VERSION, encode_stream_frame_into};

use crate::duplex::{Duplex, https_client_config};

/// A WebSocket opcode as a number.
pub mod opcode {
    /// A continuation.
    pub const CONTINUATION: u8 = 0x0;
    /// A text frame.
    pub const TEXT: u8 = 0x1;
    /// A binary frame.
    pub const BINARY: u8 = 0x2;
    /// A close.
    pub const CLOSE: u8 = 0x8;
    /// A ping.
    pub const PING: u8 = 0x9;
    /// A pong.
    pub const PONG: u8 = 0xA;
}

/// A frame the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    /// FIN.
    pub fin: bool,
    /// The opcode.
    pub opcode: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

impl ServerFrame {
    /// A close frame's code, if it is one with a code.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == opcode::CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// One WebSocket connection to the server's HTTP listener.
#[derive(Debug)]
pub struct WsStream {
    stream: Duplex,
    input: Vec<u8>,
    /// The response head the server sent to the upgrade request.
    pub response: String,
    /// The close the server sent, once one came.
    pub closed_with: Option<ServerFrame>,
    mask_seed: u32,
}

/// The request head of an upgrade to `/ws` with `extra` header lines (each ending in CRLF).
pub fn upgrade_request(extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: framewire.v1\r\n{extra}\r\n"
    )
}

impl WsStream {
    /// Connects from `from` and upgrades to a WebSocket.
    ///
    /// # Errors
    /// The connection fails, or the server does not answer `101`.
    pub fn connect_from(from: IpAddr, http: SocketAddr, deadline: Duration) -> io::Result<Self> {
        Self::open(from, http, deadline, &upgrade_request(""))
    }

    /// Connects and sends `request` as the upgrade request.
    ///
    /// # Errors
    /// The connection fails, or the server does not answer `101`.
    pub fn open(
        from: IpAddr,
        http: SocketAddr,
        deadline: Duration,
        request: &str,
    ) -> io::Result<Self> {
        Self::open_with_bytes(from, http, deadline, request.as_bytes())
    }

    /// Connects and sends `bytes` in one write: the upgrade request, and perhaps frames after it.
    ///
    /// # Errors
    /// The connection fails, or the server does not answer `101`.
    pub fn open_with_bytes(
        from: IpAddr,
        http: SocketAddr,
        deadline: Duration,
        bytes: &[u8],
    ) -> io::Result<Self> {
        Self::upgrade(Duplex::Plain(connect(from, http, deadline)?), bytes)
    }

    /// Connects to the HTTPS listener at `https` (trusting the CA in `ca`) and upgrades to a
    /// WebSocket over TLS.
    ///
    /// # Errors
    /// The connection or the TLS handshake fails, or the server does not answer `101`.
    pub fn connect_tls(
        from: IpAddr,
        https: SocketAddr,
        deadline: Duration,
        ca: &Path,
    ) -> io::Result<Self> {
        let tcp = connect(from, https, deadline)?;
        Self::upgrade(
            Duplex::tls(tcp, https_client_config(ca))?,
            upgrade_request("").as_bytes(),
        )
    }

    fn upgrade(mut stream: Duplex, request: &[u8]) -> io::Result<Self> {
        stream.write_all(request)?;
        let mut input = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(at) = input.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no response"));
            }
            input.extend_from_slice(&chunk[..n]);
        };
        let response = String::from_utf8_lossy(&input[..end]).into_owned();
        input.drain(..end);
        if !response.starts_with("HTTP/1.1 101 ") {
            return Err(io::Error::other(format!("not upgraded: {response}")));
        }
        Ok(Self {
            stream,
            input,
            response,
            closed_with: None,
            mask_seed: 0x9e37_79b9,
        })
    }

    /// The stream under it (to ask TLS what it agreed on).
    pub fn stream(&self) -> &Duplex {
        &self.stream
    }

    fn next_mask(&mut self) -> [u8; 4] {
        self.mask_seed = self
            .mask_seed
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        self.mask_seed.to_be_bytes()
    }

    /// The bytes of one masked client frame.
    pub fn frame_bytes(&mut self, fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mask = self.next_mask();
        masked_frame(fin, op, payload, Some(mask))
    }

    /// Sends one masked frame.
    ///
    /// # Errors
    /// The socket fails.
    pub fn send_ws(&mut self, fin: bool, op: u8, payload: &[u8]) -> io::Result<()> {
        let bytes = self.frame_bytes(fin, op, payload);
        self.stream.write_all(&bytes)
    }

    /// Sends bytes as they are.
    ///
    /// # Errors
    /// The socket fails.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends a framewire frame as one binary message: its version byte and body.
    ///
    /// # Errors
    /// The frame cannot be encoded, or the socket fails.
    pub fn send(&mut self, frame: &Frame) -> io::Result<()> {
        let mut stream_frame = bytes::BytesMut::new();
        encode_stream_frame_into(frame, &mut stream_frame)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // Between the length prefix and the CRC.
        let message = stream_frame[4..stream_frame.len() - 4].to_vec();
        self.send_ws(true, opcode::BINARY, &message)
    }

    /// The next frame the server sends.
    ///
    /// # Errors
    /// The connection ends or times out, or the bytes are not a server frame.
    pub fn recv_ws(&mut self) -> Result<ServerFrame, RecvError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some((frame, used)) = parse_server_frame(&self.input)? {
                self.input.drain(..used);
                if frame.opcode == opcode::CLOSE {
                    self.closed_with = Some(frame.clone());
                }
                return Ok(frame);
            }
            let n = read_some(&mut self.stream, &mut chunk)?;
            self.input.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next framewire frame: the next binary message, parsed; a close ends the stream.
    ///
    /// # Errors
    /// The connection ends or times out, the server closes, or a message is not a frame.
    pub fn recv(&mut self) -> Result<Frame, RecvError> {
        loop {
            let frame = self.recv_ws()?;
            match frame.opcode {
                opcode::BINARY => {
                    let Some((&version, body)) = frame.payload.split_first() else {
                        return Err(RecvError::Io(io::Error::other("an empty message")));
                    };
                    if version != VERSION {
                        return Err(RecvError::Io(io::Error::other("another version")));
                    }
                    return Frame::parse(Bytes::copy_from_slice(body)).map_err(RecvError::Decode);
                }
                opcode::CLOSE => return Err(RecvError::Closed),
                _ => {}
            }
        }
    }

    /// Sends a Hello and returns the server's answer.
    ///
    /// # Errors
    /// As [`WsStream::recv`].
    pub fn handshake(&mut self, options: HelloOptions) -> Result<Frame, RecvError> {
        self.handshake_with(Hello::new(0, options))
    }

    /// Sends this Hello and returns the server's answer.
    ///
    /// # Errors
    /// As [`WsStream::recv`].
    pub fn handshake_with(&mut self, hello: Hello) -> Result<Frame, RecvError> {
        self.send(&Frame::new(hello)).map_err(RecvError::Io)?;
        self.recv()
    }

    /// A second handle on the socket, for writing raw bytes while this one reads (plain TCP
    /// only: TLS records cannot be written from two handles).
    ///
    /// # Errors
    /// The socket cannot be duplicated, or runs TLS.
    pub fn try_clone_stream(&self) -> io::Result<TcpStream> {
        match &self.stream {
            Duplex::Plain(tcp) => tcp.try_clone(),
            Duplex::Tls(_) => Err(io::Error::other("a second handle on a TLS stream")),
        }
    }

    /// How long a receive waits.
    ///
    /// # Errors
    /// The socket refuses the setting.
    pub fn set_read_timeout(&self, deadline: Duration) -> io::Result<()> {
        self.stream.tcp().set_read_timeout(Some(deadline))
    }

    /// Reads to the end of the stream: `Ok` when it ends cleanly (under TLS, with the server's
    /// `close_notify`, not a cut connection), with how many bytes came before the end.
    ///
    /// # Errors
    /// The stream fails or times out, or (under TLS) ends without a `close_notify`.
    pub fn read_to_clean_end(&mut self) -> io::Result<usize> {
        let mut rest = Vec::new();
        self.stream.read_to_end(&mut rest)
    }

    /// Reads until the server closes the TCP connection (or `within` passes): whether it did.
    pub fn closes_within(&mut self, within: Duration) -> bool {
        let _ = self.stream.tcp().set_read_timeout(Some(within));
        let start = std::time::Instant::now();
        let mut chunk = [0u8; 4096];
        while start.elapsed() < within {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
        false
    }
}

/// A TCP connection from `from` to `to`, with `deadline` on the connect and every read.
fn connect(from: IpAddr, to: SocketAddr, deadline: Duration) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(to),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.bind(&SocketAddr::new(from, 0).into())?;
    socket.connect_timeout(&to.into(), deadline)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(deadline))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A client frame's bytes; `mask: None` leaves it unmasked (which a server must refuse).
pub fn masked_frame(fin: bool, op: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | op];
    let masked = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(masked | n as u8),
        n @ 126..=0xFFFF => {
            out.push(masked | 0x7E);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(masked | 0x7F);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(mask) => {
            out.extend_from_slice(&mask);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A server frame at the front of `input`, and its length; `None` while it is incomplete.
fn parse_server_frame(input: &[u8]) -> Result<Option<(ServerFrame, usize)>, RecvError> {
    let bad = |why: &str| RecvError::Io(io::Error::other(why.to_string()));
    let [b0, b1, ..] = *input else {
        return Ok(None);
    };
    if b1 & 0x80 != 0 {
        return Err(bad("a masked server frame"));
    }
    if b0 & 0x70 != 0 {
        return Err(bad("reserved bits set"));
    }
    let (len, at) = match b1 & 0x7F {
        126 => match input.get(2..4) {
            Some(l) => (usize::from(u16::from_be_bytes([l[0], l[1]])), 4),
            None => return Ok(None),
        },
        127 => match input.get(2..10) {
            Some(l) => (
                usize::try_from(u64::from_be_bytes(l.try_into().expect("8 bytes")))
                    .map_err(|_| bad("a length beyond memory"))?,
                10,
            ),
            None => return Ok(None),
        },
        n => (usize::from(n), 2),
    };
    let Some(payload) = input.get(at..at + len) else {
        return Ok(None);
    };
    Ok(Some((
        ServerFrame {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0F,
            payload: payload.to_vec(),
        },
        at + len,
    )))
}
