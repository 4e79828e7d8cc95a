//! framewire-server: serves the framewire protocol (docs/PROTOCOL.md) to clients.
//!
//! # What it does now
//!
//! One mio event loop on one thread, over TCP and UDP. Each TCP connection runs the protocol's
//! stream session
//! (`framewire_protocol::session::StreamSession`): the handshake, heartbeats, the idle timeout,
//! the first-frame deadline, close with a reason, bounded output, and a Close naming the reason for
//! bad bytes. Until the hub lands, [`app`] answers `sys.ping`, echoes Data frames, and refuses the
//! rest. The loop keeps every connection's next deadline in one ordered set and sleeps until the
//! first.
//!
//! Over UDP, the protocol's stateless handshake endpoint answers Hellos without keeping state, and
//! each connection id gets a datagram session (reliability, channels, migration) served by the
//! same [`app`].
//!
//! # What it does not do yet
//!
//! Worker threads and `SO_REUSEPORT`, the hub (topics, services, queues), signal handling and the
//! operational limits are the work of the server and hub issues.

pub mod app;
pub mod config;
mod connection;
pub mod counters;
mod event_loop;
mod tcp_options;
mod udp;

pub use config::ServerConfig;
pub use counters::CounterSnapshot;
pub use event_loop::{Server, ServerHandle};
