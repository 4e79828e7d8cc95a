//! framewire-client: connects to a framewire server over TCP or UDP with one API.
//!
//! # Ways to drive it
//!
//! - [`Client`], blocking: each call sends an operation and waits for its answer (publish,
//!   subscribe, request with a timeout, queue push/fetch/ack, register a service and answer it).
//!   Messages that arrive meanwhile wait for [`Client::next_message`] or [`Client::messages`].
//! - [`SharedClient`], blocking and shared by threads: a thread of its own drives the connection;
//!   every clone publishes, subscribes and requests at once with the others, and each
//!   [`Subscription`] is a bounded inbox of its own (when its reader falls behind, the oldest
//!   message goes, counted).
//! - `AsyncClient` (feature `tokio`): the same connection thread, with calls that are futures
//!   (a request resolves with its answer or at its deadline; a dropped future takes its operation
//!   back if it has not left) and an `AsyncSubscription` per filter.
//! - [`Connection`], poll-driven, for game loops and embedded main loops: call
//!   [`Connection::update`] with the time, then [`Connection::poll_event`] until `None`. It starts
//!   no threads and reads no clock; [`Connection::poll_timeout`] says when it needs to run next.
//!
//! Both run the protocol's session engine (`framewire_protocol::session`): heartbeats, idle
//! timeouts, and over UDP the handshake, acks, retransmission, ordering and fragmentation. Both
//! reconnect after a failure with exponential backoff and jitter, resuming the session (the server
//! keeps subscriptions and reliable messages for a while) or, if the server kept nothing,
//! subscribing and registering again by themselves.
//!
//! Every call drives the connection, reconnects included. An operation sent while the client is
//! reconnecting waits in a bounded offline buffer ([`ClientOptions::offline_buffer`]) and goes
//! out, in order, once it is back; past the bound it fails with [`ClientError::Backpressure`].
//!
//! Errors are typed: [`ClientError`] for the connection (unreachable, with the operating
//! system's error as its source; rejected with the reason; timed out; closed with the reason,
//! `CONNECTION_LOST` for a connection that ended without a Close; backpressure; a frame above the
//! agreed limit, [`ClientError::TooLarge`]), and [`Error::Status`] for an operation the server
//! refused. [`Error::is_timeout`] answers for both ways a timeout comes. A refusal the server
//! sends for an operation that asked for no answer arrives as [`ClientEvent::Refused`].
//!
//! Everything the API takes or gives is reachable from this crate: the wire types it uses
//! ([`Status`], [`Reason`], [`Text`], [`LastWill`], [`ChannelKind`]), the session settings
//! ([`SessionConfig`]) and [`mio`] for [`Connection::register_socket`].
//!
//! ```no_run
//! use std::time::Duration;
//! use framewire_client::{Client, ClientOptions, Transport};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = "127.0.0.1:7400".parse()?;
//! let mut client = Client::connect(ClientOptions::new(server, Transport::Tcp))?;
//! client.subscribe("chat/#")?;
//! client.publish("chat/lobby", "hello")?;
//! if let Some(m) = client.next_message(Duration::from_secs(1))? {
//!     println!("{}: {}", m.topic, String::from_utf8_lossy(&m.payload));
//! }
//! let pong = client.request("sys.ping", "", Duration::from_secs(1))?;
//! assert_eq!(&pong[..], b"pong");
//! # Ok(())
//! # }
//! ```
//!
//! # What it does not do
//!
//! It does not retry an operation whose connection failed after it was sent (its caller hears
//! the failure; a blocking call whose operation never left the offline buffer takes it back, so a
//! retry cannot send it twice). (A reliable message the server wrote to a connection that then
//! failed is sent again on resume and delivered once: [`ClientOptions::confirm_delivery`].)
//! [`FrameStream`] is the frame-level TCP connection that tests and tools use to speak the wire
//! format directly; [`Link`] is a non-blocking session over TCP or UDP that sends and yields whole
//! frames, for tools that drive many connections from one loop.
//!
//! [`udp_io`] is framewire's UDP socket code, which the server uses too: a session's datagrams of
//! one size leave in one system call and arrive in one read where the kernel offers segmentation
//! offload (Linux), and one datagram per call elsewhere.

mod blocking;
mod connection;
mod error;
mod event;
mod frame_stream;
mod link;
mod options;
mod shared;
pub mod udp_io;

pub use blocking::{CONNECTION_EVENTS_KEPT, Client, Messages};
pub use connection::{Connection, DEFAULT_REQUEST_WAIT, PublishOptions};
pub use error::{ClientError, Error, IoError};
pub use event::{ClientEvent, Delivery, IncomingRequest, Message};
pub use frame_stream::{FrameStream, RecvError};
pub use link::Link;
pub use options::{
    Channel, ClientOptions, ClientOptionsBuilder, Reconnect, Timeouts, TokenRefresh, Transport,
};
#[cfg(feature = "tokio")]
pub use shared::{AsyncClient, AsyncService, AsyncSubscription, QueueStream};
pub use shared::{DEFAULT_INBOX, Service, SharedClient, Subscription};

pub use framewire_protocol::session::SessionConfig;
pub use framewire_protocol::wire::{ChannelKind, LastWill, Reason, Status, Text};
pub use mio;
