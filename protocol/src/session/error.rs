//! Errors of the session API: what a caller's `send` can be told.

use core::fmt;

use crate::error::EncodeError;

/// Why a message was not queued. Nothing was queued in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The reliable send queue is at its byte limit: wait for acknowledgements (backpressure).
    QueueFull,
    /// The message is larger than the session's maximum message length.
    TooLarge {
        /// The message's encoded length.
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
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
            Self::Closed => f.write_str("session closed"),
            Self::Encode(e) => write!(f, "cannot encode: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SendError {}
