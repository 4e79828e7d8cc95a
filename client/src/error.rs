//! What can go wrong for a client, kept apart by cause (STYLE.md 11).

use std::fmt;
use std::io;

use framewire_protocol::wire::{Reason, Status, Text};

/// Why a connection is not (or no longer) usable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached (refused, no route, the socket failed).
    Unreachable(io::ErrorKind),
    /// The server refused the handshake, with its reason.
    Rejected {
        /// The reason code.
        reason: Reason,
        /// The server's explanation.
        message: Text,
    },
    /// Nothing came back in time (the handshake, or a request the caller waited for).
    TimedOut,
    /// The session ended, with the reason (the server's, or this side's: an idle timeout, say).
    Closed {
        /// The reason code.
        reason: Reason,
        /// The explanation.
        message: Text,
    },
    /// The send queue is full: try again once the server has caught up.
    Backpressure,
    /// Not connected now (between a disconnect and the next reconnect).
    NotConnected,
    /// The operation was refused before sending: a name or payload that cannot be encoded.
    Invalid(String),
    /// The operation was refused before sending: its frame (`len` bytes, docs/PROTOCOL.md section
    /// 2.1) is above the frame length the server agreed (`max`). The connection goes on.
    TooLarge {
        /// The frame's length.
        len: usize,
        /// The agreed limit.
        max: usize,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable(kind) => write!(f, "server unreachable: {kind}"),
            Self::Rejected { reason, message } => {
                write!(f, "rejected by the server: {reason} {message}")
            }
            Self::TimedOut => f.write_str("timed out"),
            Self::Closed { reason, message } => write!(f, "connection closed: {reason} {message}"),
            Self::Backpressure => f.write_str("send queue full (backpressure)"),
            Self::NotConnected => f.write_str("not connected"),
            Self::Invalid(why) => write!(f, "invalid: {why}"),
            Self::TooLarge { len, max } => write!(
                f,
                "a frame of {len} bytes is above the server's agreed limit of {max}"
            ),
        }
    }
}

impl std::error::Error for ClientError {}

/// What a blocking call returns on failure: the connection's trouble, or the server's answer to
/// the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The connection failed or is not there.
    Client(ClientError),
    /// The server answered the operation with a failure status.
    Status {
        /// The status code (`NO_RESPONDER`, `TIMEOUT`, `FORBIDDEN`, `QUEUE_FULL`, ...).
        status: Status,
        /// The server's explanation.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Client(e) => e.fmt(f),
            Self::Status { status, message } if message.is_empty() => write!(f, "{status}"),
            Self::Status { status, message } => write!(f, "{status}: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        Self::Client(e)
    }
}
