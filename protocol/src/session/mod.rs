//! The session engine: what happens between a connected pair of peers, with no I/O.
//!
//! A [`Session`] takes datagrams and `now`, and hands back datagrams to send, events and the next
//! instant it needs to run (STYLE.md 1-3; the call order is on [`Session`]). It provides, over
//! datagrams: packet acknowledgement with a 64-bit ack bitfield and delayed acks; RTT estimation
//! and retransmission of reliable messages in new packets (RFC 9002 loss detection with packet
//! and time thresholds, exponential backoff); the four channel kinds of docs/PROTOCOL.md section
//! 3.4 with no head-of-line blocking between channels; fragmentation and bounded reassembly;
//! coalescing of small messages; `NewReno` congestion control; heartbeats, the idle timeout and an
//! acknowledged close.
//!
//! Over TCP, [`StreamSession`] runs the same handshake, heartbeats, idle timeout and close on a
//! byte stream, without packet numbers, acks or retransmission (the stream provides those).
//!
//! The server's application decides what the Welcome says about resuming a session
//! ([`Admission`]); keeping sessions to resume is the server's.
//!
//! Not here yet: pacing within the congestion window.

mod config;
mod congestion;
mod cookie;
mod echo;
mod endpoint;
mod engine;
mod error;
mod event;
mod inbox;
mod outbox;
mod received;
mod rtt;
mod sent;
mod stats;
mod stream;
mod terms;
mod time;

pub use config::{MIN_DATAGRAM_SIZE, SessionConfig};
pub use cookie::{COOKIE_LEN, CookieError, CookieJar};
pub use endpoint::{DropReason, Endpoint, EndpointConfig, EndpointStats, Outcome};
pub use engine::Session;
pub use error::SendError;
pub use event::{Closer, Event, Oversized, Transmit};
pub use rtt::{GRANULARITY, RttEstimator};
pub use stats::Stats;
pub use stream::StreamSession;
pub use terms::{Admission, Admit, MIN_IDLE_TIMEOUT, Refusal};
pub use time::Instant;
