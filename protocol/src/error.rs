//! Errors of the wire layer, kept apart by cause (STYLE.md 11).
//!
//! [`DecodeError`] is what hostile or broken bytes produce: every parser in this crate returns one
//! of these instead of panicking. [`EncodeError`] is a local misuse: asking to encode something the
//! format cannot carry, or into a buffer that is too small.

use core::fmt;

/// Why received bytes were not accepted.
///
/// The variants keep apart the questions a receiver asks next: wait for more bytes
/// ([`Truncated`](Self::Truncated) on a stream), drop and count (a datagram), or close with a reason
/// (see [`DecodeError::close_reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field or before the length it declared.
    Truncated,
    /// The bytes are framewire-shaped but break a structural rule of the format.
    Malformed(Malformation),
    /// A length prefix above the limit in force; nothing was allocated for it.
    Oversized {
        /// The length the peer declared.
        len: u64,
        /// The largest length accepted.
        max: u64,
    },
    /// The CRC32 at the end of a frame or datagram does not match its contents.
    BadChecksum {
        /// The checksum carried on the wire.
        carried: u32,
        /// The checksum computed over the received bytes.
        computed: u32,
    },
    /// A protocol version this implementation does not speak.
    UnsupportedVersion(u8),
    /// A frame kind this implementation does not know. Kinds with the high bit set
    /// ([`crate::wire::FrameKind::is_ignorable`]) may be skipped; others are a protocol error.
    UnknownKind(u8),
}

/// The structural rule a [`DecodeError::Malformed`] input broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformation {
    /// A datagram that does not start with the framewire magic (stray traffic).
    BadMagic,
    /// A length prefix smaller than the smallest possible frame.
    LengthTooSmall,
    /// A flag bit that is reserved for this kind (or this packet) was set.
    ReservedFlags,
    /// A text field is not valid UTF-8.
    InvalidUtf8,
    /// A name (topic, target, service, queue) longer than [`crate::wire::MAX_NAME_LEN`].
    NameTooLong,
    /// Bytes left over after a kind whose body has no payload.
    TrailingBytes,
    /// A Hello whose minimum version is above its maximum, or a Reject likewise.
    VersionRange,
    /// A Hello option that runs past the end of the options, or a known option with a bad value.
    BadOption,
    /// A fragment whose index is not below its count, or whose count is zero.
    FragmentRange,
    /// A datagram that carries neither an ack nor a frame.
    EmptyDatagram,
    /// A datagram frame with a zero length prefix.
    EmptyFrame,
    /// A channel kind code that is not defined.
    UnknownChannelKind,
    /// A variable-length number (compact datagrams) longer than its field allows, not in its
    /// shortest form, or above its type.
    BadVarint,
    /// A Here frame whose node card breaks its rules (section 4.12).
    BadNodeCard,
    /// A compact datagram whose first frame says it shares the header of the frame before it.
    SharedHeaderFirst,
}

impl DecodeError {
    /// The close reason a stream peer sends when it gives up on a connection because of this error.
    pub fn close_reason(&self) -> crate::wire::Reason {
        use crate::wire::Reason;
        match self {
            Self::Truncated | Self::Malformed(_) => Reason::PROTOCOL_ERROR,
            Self::Oversized { .. } => Reason::FRAME_TOO_LARGE,
            Self::BadChecksum { .. } => Reason::BAD_CHECKSUM,
            Self::UnsupportedVersion(_) => Reason::UNSUPPORTED_VERSION,
            Self::UnknownKind(_) => Reason::UNKNOWN_KIND,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("input ended inside a frame"),
            Self::Malformed(m) => write!(f, "malformed input: {m}"),
            Self::Oversized { len, max } => {
                write!(f, "declared length {len} exceeds the limit of {max}")
            }
            Self::BadChecksum { carried, computed } => write!(
                f,
                "checksum mismatch: carried {carried:#010x}, computed {computed:#010x}"
            ),
            Self::UnsupportedVersion(v) => write!(f, "unsupported protocol version {v}"),
            Self::UnknownKind(k) => write!(f, "unknown frame kind {k:#04x}"),
        }
    }
}

impl fmt::Display for Malformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadMagic => "not a framewire datagram (bad magic)",
            Self::LengthTooSmall => "length prefix below the minimum frame size",
            Self::ReservedFlags => "reserved flag bits set",
            Self::InvalidUtf8 => "text is not valid UTF-8",
            Self::NameTooLong => "name longer than the protocol maximum",
            Self::TrailingBytes => "trailing bytes after the frame body",
            Self::VersionRange => "minimum version above maximum version",
            Self::BadOption => "malformed Hello option",
            Self::FragmentRange => "fragment index not below fragment count",
            Self::EmptyDatagram => "datagram carries neither an ack nor a frame",
            Self::EmptyFrame => "zero-length frame in a datagram",
            Self::UnknownChannelKind => "undefined channel kind",
            Self::BadVarint => "variable-length number too long or not in its shortest form",
            Self::BadNodeCard => "a node card that breaks its rules",
            Self::SharedHeaderFirst => "a shared frame header with no frame before it",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

/// Why a value could not be encoded. Always a local mistake, never the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer has room for `available` bytes; `needed` are required.
    BufferTooSmall {
        /// Bytes the encoding needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// A field is longer than its length prefix (or the protocol) allows.
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The most the format carries.
        max: usize,
    },
    /// The whole frame is longer than the frame limit in force.
    FrameTooLarge {
        /// The frame's length as its prefix would state it.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value the format cannot represent (a fragment index not below its count, an empty datagram).
    InvalidValue(&'static str),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => {
                write!(
                    f,
                    "buffer too small: {needed} bytes needed, {available} available"
                )
            }
            Self::FieldTooLong { field, len, max } => {
                write!(f, "{field} is {len} bytes long; at most {max} fit")
            }
            Self::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max}")
            }
            Self::InvalidValue(what) => write!(f, "cannot encode: {what}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}
