//! framewire-server: serves the framewire protocol (docs/PROTOCOL.md) to clients.
//!
//! # What it does now
//!
//! One mio event loop on one thread, over TCP and UDP. Each TCP connection runs the protocol's
//! stream session (`framewire_protocol::session::StreamSession`): the handshake, heartbeats, the
//! idle timeout, the first-frame deadline, close with a reason, bounded output, and a Close naming
//! the reason for bad bytes. Over UDP, the protocol's stateless handshake endpoint answers Hellos
//! without keeping state, and each connection id gets a datagram session (reliability, channels,
//! migration). The loop keeps every deadline in one ordered set and sleeps until the first.
//!
//! Every established session's frames go to the [`hub`]: publish/subscribe with wildcards and
//! retained messages, request/response to `sys.*` methods and to client-registered services,
//! and work queues with long polls. The hub is sans-IO like the protocol's sessions, and is tested
//! on its own with a virtual clock.
//!
//! # What it does not do yet
//!
//! Worker threads and `SO_REUSEPORT`, a configuration file, session resume and last-will
//! messages are the work of the server and hub issues.

pub mod config;
mod connection;
pub mod counters;
mod deadlines;
mod event_loop;
pub mod hub;
mod settings;
mod tcp_options;
mod timer_wheel;
mod udp;

pub use config::ServerConfig;
pub use counters::CounterSnapshot;
pub use event_loop::{Server, ServerHandle};
