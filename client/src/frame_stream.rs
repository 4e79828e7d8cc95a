//! A blocking TCP connection that speaks whole frames.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use framewire_protocol::DecodeError;
use framewire_protocol::wire::{
    DEFAULT_MAX_FRAME_LEN, Frame, Hello, HelloOptions, StreamDeframer, encode_stream_frame_into,
};

/// Why [`FrameStream::recv`] returned no frame.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecvError {
    /// The server closed the connection.
    Closed,
    /// Nothing arrived before the deadline.
    TimedOut,
    /// The server sent bytes that do not decode; the connection is not usable any more.
    Decode(DecodeError),
    /// Another socket error.
    Io(io::Error),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("the server closed the connection"),
            Self::TimedOut => f.write_str("timed out waiting for the server"),
            Self::Decode(e) => write!(f, "bad frame from the server: {e}"),
            Self::Io(e) => write!(f, "socket error: {e}"),
        }
    }
}

impl std::error::Error for RecvError {}

/// One read from a blocking socket with a read timeout: the bytes read (at least one), or why
/// there were none: the peer closed (or reset) the connection, the timeout passed, or the socket
/// failed.
///
/// # Errors
/// [`RecvError::Closed`], [`RecvError::TimedOut`] or [`RecvError::Io`].
pub fn read_some(stream: &mut impl Read, buf: &mut [u8]) -> Result<usize, RecvError> {
    loop {
        return match stream.read(buf) {
            Ok(0) => Err(RecvError::Closed),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => RecvError::TimedOut,
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                    RecvError::Closed
                }
                _ => RecvError::Io(e),
            }),
        };
    }
}

/// A TCP connection carrying framewire stream frames, read with a deadline.
#[derive(Debug)]
pub struct FrameStream {
    stream: TcpStream,
    input: BytesMut,
    output: BytesMut,
    deframer: StreamDeframer,
}

impl FrameStream {
    /// Connects to `addr`; each later [`FrameStream::recv`] waits at most `deadline`.
    ///
    /// # Errors
    /// The connection or a socket option failed.
    pub fn connect(addr: SocketAddr, deadline: Duration) -> io::Result<Self> {
        Self::from_connected(TcpStream::connect_timeout(&addr, deadline)?, deadline)
    }

    fn from_connected(stream: TcpStream, deadline: Duration) -> io::Result<Self> {
        stream.set_read_timeout(Some(deadline))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            input: BytesMut::new(),
            output: BytesMut::new(),
            deframer: StreamDeframer::new(DEFAULT_MAX_FRAME_LEN),
        })
    }

    /// Connects to `addr` from the local IP address `from` (any port): spreading many connections
    /// over 127.0.0.2, .3, ... keeps a test from running out of ephemeral ports.
    ///
    /// # Errors
    /// The local address cannot be bound, or the connection or a socket option failed.
    pub fn connect_from(
        from: std::net::IpAddr,
        addr: SocketAddr,
        deadline: Duration,
    ) -> io::Result<Self> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.bind(&SocketAddr::new(from, 0).into())?;
        socket.connect_timeout(&addr.into(), deadline)?;
        Self::from_connected(socket.into(), deadline)
    }

    /// Sends one frame.
    ///
    /// # Errors
    /// The frame cannot be encoded (an [`io::ErrorKind::InvalidInput`] error), or the write failed.
    pub fn send(&mut self, frame: &Frame) -> io::Result<()> {
        self.output.clear();
        encode_stream_frame_into(frame, &mut self.output)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.stream.write_all(&self.output)
    }

    /// Sends bytes as they are (for tests of hostile input).
    ///
    /// # Errors
    /// The write failed.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Waits for the next frame.
    ///
    /// # Errors
    /// See [`RecvError`].
    pub fn recv(&mut self) -> Result<Frame, RecvError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(body) = self
                .deframer
                .decode(&mut self.input)
                .map_err(RecvError::Decode)?
            {
                return Frame::parse(body).map_err(RecvError::Decode);
            }
            let n = read_some(&mut self.stream, &mut chunk)?;
            self.input.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a Hello for this crate's protocol version and returns the server's answer (a Welcome
    /// or a Reject).
    ///
    /// # Errors
    /// The Hello could not be sent, or no answer came.
    pub fn handshake(&mut self, options: HelloOptions) -> Result<Frame, RecvError> {
        self.send(&Frame::new(Hello::new(0, options)))
            .map_err(RecvError::Io)?;
        self.recv()
    }

    /// Changes how long each later [`FrameStream::recv`] waits.
    ///
    /// # Errors
    /// The socket option could not be set (a zero duration is refused).
    pub fn set_read_timeout(&self, deadline: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(deadline))
    }

    /// The local address of the connection.
    ///
    /// # Errors
    /// The socket could not say.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }
}
