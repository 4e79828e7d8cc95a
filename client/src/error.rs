//! What can go wrong for a client, kept apart by cause (STYLE.md 11).

use std::fmt;
use std::io;
use std::sync::Arc;

use framewire_protocol::wire::{Reason, Status, Text};

/// An operating-system error, kept whole: [`std::error::Error::source`] of the error that
/// carries it gives it back. Two compare equal when their kinds do (an `io::Error` itself does not
/// compare).
#[derive(Debug, Clone)]
pub struct IoError(Arc<io::Error>);

impl IoError {
    /// The error's kind.
    pub fn kind(&self) -> io::ErrorKind {
        self.0.kind()
    }

    /// The error.
    pub fn get(&self) -> &io::Error {
        &self.0
    }
}

impl From<io::Error> for IoError {
    fn from(e: io::Error) -> Self {
        Self(Arc::new(e))
    }
}

impl From<io::ErrorKind> for IoError {
    fn from(kind: io::ErrorKind) -> Self {
        Self(Arc::new(kind.into()))
    }
}

impl PartialEq for IoError {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind()
    }
}

impl Eq for IoError {}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a connection is not (or no longer) usable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached (refused, no route, the socket failed), with the
    /// operating system's error (also [`std::error::Error::source`]).
    Unreachable(IoError),
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
            Self::Unreachable(e) => write!(f, "server unreachable: {e}"),
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

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unreachable(e) => Some(e.get()),
            _ => None,
        }
    }
}

impl ClientError {
    /// Whether this is a timeout: the handshake or an awaited answer did not come in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::TimedOut)
    }
}

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

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Client(e) => Some(e),
            Self::Status { .. } => None,
        }
    }
}

impl Error {
    /// Whether the operation timed out, whichever side noticed: the client waited past its
    /// deadline (`ClientError::TimedOut`), or the server answered `TIMEOUT` (a request whose
    /// deadline passed with no response from its service). One question for both.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Client(e) => e.is_timeout(),
            Self::Status { status, .. } => *status == Status::TIMEOUT,
        }
    }

    /// The server's status, if the server answered the operation with a failure.
    pub fn status(&self) -> Option<Status> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::Client(_) => None,
        }
    }
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        Self::Client(e)
    }
}
