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
//! # A game loop
//!
//! [`Connection`] in a frame loop over UDP, with named channels: positions on a sequenced channel
//! (the newest wins), events reliable on channel 0; `update` reads and sends, `flush` sends what
//! the frame queued at once.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use framewire_client::{Channel, ClientEvent, ClientOptions, Connection, PublishOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let options = ClientOptions::builder("127.0.0.1:7400".parse()?)
//!     .udp()
//!     .channels(&[Channel::Sequenced])
//!     .build()?;
//! let mut conn = Connection::new(options, Instant::now())?;
//! let position = PublishOptions { channel: 1, ack: false, ..PublishOptions::default() };
//! for frame in 0u32.. {
//!     let now = Instant::now();
//!     conn.update(now);
//!     while let Some(event) = conn.poll_event() {
//!         match event {
//!             ClientEvent::Connected { .. } => { conn.subscribe(now, "room/1/#")?; }
//!             ClientEvent::Message(m) => { /* move the other player */ let _ = m; }
//!             _ => {}
//!         }
//!     }
//!     if conn.is_connected() {
//!         conn.publish(now, "room/1/me", frame.to_be_bytes().to_vec().into(), position)?;
//!         conn.flush(now);
//!     }
//!     std::thread::sleep(Duration::from_micros(16_667)); // render
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # A connected device
//!
//! [`Client`] with a last will, a retained state, telemetry and a command service; a reconnect
//! policy that gives up after an hour down, and a token fetched afresh before every attempt.
//!
//! ```no_run
//! use std::time::Duration;
//! use framewire_client::{
//!     Client, ClientOptions, LastWill, PublishOptions, Reconnect, Status, Text, TokenRefresh,
//! };
//!
//! # fn fetch_token() -> Option<bytes::Bytes> { None }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let options = ClientOptions::builder("127.0.0.1:7400".parse()?)
//!     .name("lamp-3")
//!     .last_will(LastWill {
//!         retain: true,
//!         channel: 0,
//!         topic: Text::from("lamps/3/online"),
//!         payload: "false".into(),
//!     })
//!     .reconnect(Reconnect { give_up_after: Some(Duration::from_secs(3600)), ..Reconnect::default() })
//!     .token_refresh(TokenRefresh::new(fetch_token))
//!     .build()?;
//! let mut lamp = Client::connect(options)?;
//! let retained = PublishOptions { retain: true, ..PublishOptions::default() };
//! lamp.publish_with("lamps/3/online", "true", retained)?;
//! lamp.register("lamp.3")?;
//! loop {
//!     lamp.publish("lamps/3/watts", "7.5")?;
//!     if let Some(cmd) = lamp.next_request(Duration::from_secs(10))? {
//!         lamp.respond(&cmd, Status::OK, "done")?;
//!     }
//! }
//! # }
//! ```
//!
//! # An async service
//!
//! `AsyncClient` (feature `tokio`): a service answering as a task, next to a watcher of a
//! subscription as a `Stream`.
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn service() -> Result<(), Box<dyn std::error::Error>> {
//! use framewire_client::{AsyncClient, ClientOptions, Status, Transport};
//!
//! let client = AsyncClient::connect(ClientOptions::new("127.0.0.1:7400".parse()?, Transport::Tcp)).await?;
//! let prices = client.register("price").await?;
//! while let Some(request) = prices.next().await {
//!     prices.respond(&request, Status::OK, "42").await?;
//! }
//! # Ok(())
//! # }
//! # fn main() {}
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
mod discover;
mod error;
mod event;
mod frame_stream;
mod link;
mod options;
mod shared;
pub mod tls_io;
pub mod udp_io;

pub use blocking::{CONNECTION_EVENTS_KEPT, Client, Messages};
pub use connection::{Connection, DEFAULT_REQUEST_WAIT, PublishOptions};
pub use discover::{DiscoverOptions, Discovered, discover};
pub use error::{ClientError, Error, IoError};
pub use event::{ClientEvent, Delivery, IncomingRequest, Message};
pub use frame_stream::{FrameStream, RecvError, read_some};
pub use link::Link;
pub use options::{
    Channel, ClientOptions, ClientOptionsBuilder, FreshToken, Reconnect, Timeouts, TlsOptions,
    TlsOptionsBuilder, TokenRefresh, Transport, read_certificates, read_private_key,
};
#[cfg(feature = "tokio")]
pub use shared::{AsyncClient, AsyncService, AsyncSubscription, QueueStream};
pub use shared::{DEFAULT_INBOX, Service, SharedClient, Subscription};

pub use framewire_protocol::session::SessionConfig;
pub use framewire_protocol::wire::{ChannelKind, LastWill, NodeCard, Reason, Status, Text};
pub use mio;
pub use rustls;
