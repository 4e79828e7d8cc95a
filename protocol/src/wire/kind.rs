//! Frame kinds and channel kinds (docs/PROTOCOL.md sections 3.2 and 4).

use core::fmt;

macro_rules! frame_kinds {
    ($( $(#[$meta:meta])* $variant:ident = $code:expr, )*) => {
        /// What a frame is. The byte value is the `kind` field of the frame header.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum FrameKind {
            $( $(#[$meta])* $variant = $code, )*
        }

        impl FrameKind {
            /// Every kind this version defines.
            pub const ALL: &'static [FrameKind] = &[$(FrameKind::$variant),*];

            /// The kind for a header byte, or `None` for a kind this version does not define.
            pub fn from_u8(code: u8) -> Option<Self> {
                match code {
                    $( $code => Some(Self::$variant), )*
                    _ => None,
                }
            }

            /// The kind's name as docs/PROTOCOL.md writes it.
            pub fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => stringify!($variant), )*
                }
            }
        }
    };
}

frame_kinds! {
    /// Client opens a session: versions, limits, options (section 4.1).
    Hello = 0x01,
    /// Server's stateless address check, UDP only (section 4.2).
    Challenge = 0x02,
    /// Server accepts the session (section 4.3).
    Welcome = 0x03,
    /// Server refuses the session, with a reason (section 4.4).
    Reject = 0x04,
    /// LAN discovery: asks servers for their node cards, UDP only (section 4.12).
    Discover = 0x05,
    /// LAN discovery: a server's node card, UDP only (section 4.12).
    Here = 0x06,
    /// Either side ends the session, with a reason (section 4.5).
    Close = 0x08,
    /// Acknowledges a Close (section 4.5).
    CloseAck = 0x09,
    /// Heartbeat with the sender's timestamp (section 4.6).
    Ping = 0x10,
    /// Answer to a Ping, echoing its timestamp (section 4.6).
    Pong = 0x11,
    /// Cumulative acknowledgement of messages on a channel (section 4.7).
    Ack = 0x12,
    /// One piece of a frame too large for a datagram (section 4.8).
    Fragment = 0x13,
    /// UDP only: the server does not know the session a datagram named (section 4.11).
    Reset = 0x14,
    /// Application data on a channel (section 4.9).
    Data = 0x20,
    /// A frame was refused without ending the session (section 4.10).
    Error = 0x21,
    /// Subscribe to a topic filter (section 5.1).
    Subscribe = 0x30,
    /// Remove a subscription (section 5.1).
    Unsubscribe = 0x31,
    /// Publish to a topic (section 5.2).
    Publish = 0x32,
    /// Server push of a published message to a subscriber (section 5.3).
    Message = 0x33,
    /// A request to a built-in method or a registered service (section 5.4).
    Request = 0x40,
    /// The answer to a request or to any operation with a non-zero id (section 5.5).
    Response = 0x41,
    /// Register as a responder for a service name (section 5.6).
    Register = 0x42,
    /// Stop responding for a service name (section 5.6).
    Unregister = 0x43,
    /// Push a message onto a work queue (section 5.7).
    QueuePush = 0x50,
    /// Fetch messages from a queue, optionally waiting (section 5.7).
    QueueFetch = 0x51,
    /// A queue message handed to a consumer (section 5.7).
    QueueDelivery = 0x52,
    /// Acknowledge a queue delivery (section 5.7).
    QueueAck = 0x53,
    /// Give a queue delivery back, to be delivered again now or after a delay (section 5.7).
    QueueNack = 0x54,
    /// Keep a queue delivery longer: restart its visibility timeout (section 5.7).
    QueueExtend = 0x55,
}

impl FrameKind {
    /// Whether a receiver that does not know `code` may skip the frame (the high bit is set).
    /// Unknown kinds without it are a protocol error (docs/PROTOCOL.md section 3.3).
    pub fn is_ignorable(code: u8) -> bool {
        code & 0x80 != 0
    }
}

impl fmt::Debug for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:#04x})", self.name(), *self as u8)
    }
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The delivery guarantee of a channel (docs/PROTOCOL.md section 3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// Every message, exactly once, in the order sent.
    ReliableOrdered = 0,
    /// Every message, exactly once, as soon as it arrives.
    ReliableUnordered = 1,
    /// Some messages, never one older than a message already delivered.
    UnreliableSequenced = 2,
    /// Some messages, in any order, never twice.
    Unreliable = 3,
}

impl ChannelKind {
    /// The kind for a wire code, or `None` for an undefined code.
    pub fn from_u8(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::ReliableOrdered,
            1 => Self::ReliableUnordered,
            2 => Self::UnreliableSequenced,
            3 => Self::Unreliable,
            _ => return None,
        })
    }

    /// Whether every message on the channel must arrive.
    pub fn is_reliable(self) -> bool {
        matches!(self, Self::ReliableOrdered | Self::ReliableUnordered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_are_critical() {
        for &k in FrameKind::ALL {
            assert_eq!(FrameKind::from_u8(k as u8), Some(k));
            assert!(
                !FrameKind::is_ignorable(k as u8),
                "{k:?} must be understood"
            );
        }
        assert_eq!(FrameKind::from_u8(0x00), None);
        assert!(FrameKind::is_ignorable(0x80));
    }

    #[test]
    fn channel_kinds_round_trip() {
        for code in 0..=255u8 {
            if let Some(k) = ChannelKind::from_u8(code) {
                assert_eq!(k as u8, code);
            } else {
                assert!(code > 3);
            }
        }
    }
}
