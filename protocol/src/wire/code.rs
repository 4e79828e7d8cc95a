//! Status codes (in Response frames) and reason codes (in Close, Reject and Error frames).
//!
//! Both are open sets: a code this version does not name is carried as its number, so a newer peer's
//! code never fails to parse. docs/PROTOCOL.md section 6 is the table these constants implement.

use core::fmt;

macro_rules! code_type {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$cmeta:meta])* $konst:ident = $value:expr, $text:expr; )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u16);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($value); )*

            /// Every code this version defines, in table order.
            pub const ALL: &'static [Self] = &[$(Self::$konst),*];

            /// The code's name as the spec writes it, or `None` for a code this version does not define.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($konst)), )*
                    _ => None,
                }
            }

            /// A short human description, or `None` for an undefined code.
            pub fn description(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($text), )*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}({})", n, self.0),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.description() {
                    Some(d) => write!(f, "{d} ({})", self.0),
                    None => write!(f, "code {}", self.0),
                }
            }
        }
    };
}

code_type! {
    /// The outcome of a request-like operation, carried in a Response frame.
    Status {
        /// The operation succeeded.
        OK = 0x0000, "ok";
        /// The request was well-formed frames but its arguments make no sense (an empty queue name, say).
        BAD_REQUEST = 0x0100, "bad request";
        /// The target, queue or delivery named does not exist.
        NOT_FOUND = 0x0101, "not found";
        /// Nobody has registered the service the request names.
        NO_RESPONDER = 0x0102, "no responder";
        /// The request's deadline passed before a response arrived.
        TIMEOUT = 0x0103, "timed out";
        /// The session's permissions do not allow the operation.
        FORBIDDEN = 0x0104, "forbidden";
        /// The topic or filter is not valid (bad wildcard use, empty level rules).
        INVALID_TOPIC = 0x0105, "invalid topic";
        /// A name is longer than the server's configured limit.
        NAME_TOO_LONG = 0x0106, "name too long";
        /// The payload is larger than the server's configured limit.
        PAYLOAD_TOO_LARGE = 0x0107, "payload too large";
        /// The queue is at its depth limit; the message was not accepted.
        QUEUE_FULL = 0x0200, "queue full";
        /// A per-session limit (subscriptions, pending requests, services) was reached.
        LIMIT_REACHED = 0x0201, "limit reached";
        /// The server is shutting down and takes no new work.
        SHUTTING_DOWN = 0x0202, "shutting down";
        /// The responder's session ended before it answered.
        RESPONDER_GONE = 0x0203, "responder gone";
        /// The server's data directory is at its size limit (or cannot be written); nothing was
        /// kept.
        STORAGE_FULL = 0x0204, "storage full";
        /// A fault inside the server.
        INTERNAL = 0x02FF, "internal error";
    }
}

code_type! {
    /// Why a connection was refused (Reject), ended (Close), or a frame was refused (Error).
    Reason {
        /// An orderly close asked for by the application.
        NORMAL = 0x0000, "normal close";
        /// The server is shutting down or restarting.
        GOING_AWAY = 0x0001, "going away";
        /// Nothing was heard from the peer within the idle timeout.
        IDLE_TIMEOUT = 0x0002, "idle timeout";
        /// The peer broke a rule of the protocol with well-formed bytes, or sent malformed bytes.
        PROTOCOL_ERROR = 0x0003, "protocol error";
        /// A frame failed its CRC32.
        BAD_CHECKSUM = 0x0004, "bad checksum";
        /// A frame exceeded the negotiated maximum frame length.
        FRAME_TOO_LARGE = 0x0005, "frame too large";
        /// No protocol version in common.
        UNSUPPORTED_VERSION = 0x0006, "unsupported version";
        /// A frame kind the receiver does not know and may not skip.
        UNKNOWN_KIND = 0x0007, "unknown frame kind";
        /// The handshake did not complete in time (includes the first-frame deadline).
        HANDSHAKE_TIMEOUT = 0x0008, "handshake timeout";
        /// The peer could not keep up: its send queue passed the high-water mark.
        SLOW_CONSUMER = 0x0009, "slow consumer";
        /// The server is at its connection limit.
        SERVER_FULL = 0x000A, "server full";
        /// Too many connections or handshakes from this address.
        ADDRESS_LIMIT = 0x000B, "too many connections from this address";
        /// The server is at its session limit.
        SESSION_LIMIT = 0x000C, "session limit";
        /// A connect token was missing, expired, forged or bound to another address.
        AUTH_FAILED = 0x000D, "authentication failed";
        /// A challenge cookie was forged, expired or replayed.
        BAD_COOKIE = 0x000E, "bad challenge cookie";
        /// The session to resume does not exist or has expired.
        UNKNOWN_SESSION = 0x000F, "unknown session";
        /// Another connection resumed this session.
        SESSION_TAKEN_OVER = 0x0010, "session taken over";
        /// A resource bound of the session was breached (reassembly memory, queued bytes).
        RESOURCE_LIMIT = 0x0011, "resource limit";
        /// The transport ended without a Close: a TCP end of stream or reset from a peer that did
        /// not close its session (it crashed, or the network failed). Never sent: a side reports it
        /// to its application.
        CONNECTION_LOST = 0x0012, "connection lost";
        /// An Error's reason for an operation refused that asked for no Response (its `id` was
        /// 0): the message starts with the status the Response would have carried.
        REFUSED = 0x0013, "operation refused";
        /// A fault inside the sender.
        INTERNAL_ERROR = 0x00FF, "internal error";
    }
}

#[cfg(test)]
mod tests {
    extern crate alloc;
    use alloc::format;

    use super::*;

    #[test]
    fn names_and_unknown_codes() {
        assert_eq!(Status::NO_RESPONDER.name(), Some("NO_RESPONDER"));
        assert_eq!(format!("{:?}", Status(0x7777)), "Status(30583)");
        assert_eq!(format!("{}", Reason::IDLE_TIMEOUT), "idle timeout (2)");
        assert_eq!(Reason(0x9999).description(), None);
    }

    #[test]
    fn codes_are_unique() {
        for (i, a) in Status::ALL.iter().enumerate() {
            assert!(!Status::ALL[i + 1..].contains(a), "{a:?} twice");
        }
        for (i, a) in Reason::ALL.iter().enumerate() {
            assert!(!Reason::ALL[i + 1..].contains(a), "{a:?} twice");
        }
    }
}
