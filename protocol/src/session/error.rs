//! Errors of the session API: what a caller's `send` can be told.

use core::fmt;

use crate::error::EncodeError;

/// Why a message was not queued. Nothing was queued in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The reliable send queue is at its byte limit: wait for acknowledgements (backpressure).
    QueueFull,
    /// The message's frame length (docs/PROTOCOL.md section 2.1) is above the limit the session
    /// agreed in its handshake (before the handshake: this side's own limit).
    TooLarge {
        /// The message's frame length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The session is closing or closed.
    Closed,
    /// The frame could not be encoded.
    Encode(EncodeError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::QueueFull => f.write_str("send queue full"),
            Self::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the agreed limit of {max}")
            }
            Self::Closed => f.write_str("session closed"),
            Self::Encode(e) => write!(f, "cannot encode: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SendError {}
