//! framewire-server: serves the framewire protocol (docs/PROTOCOL.md) to clients.
//!
//! # What it does now
//!
//! One mio event loop on one thread, over TCP: it accepts connections, deframes what they send
//! (bounded by the frame limit), answers a Hello with a Welcome, a Ping with a Pong and a `sys.ping`
//! Request with a Response, echoes Data frames on their channel, answers a Close with a `CloseAck`,
//! and closes a connection that sends bad bytes with a Close frame naming the reason. Each
//! connection's output is bounded; a peer that does not read is disconnected.
//!
//! # What it does not do yet
//!
//! UDP, worker threads, the hub (topics, services, queues), heartbeat timers, idle timeouts and
//! graceful shutdown on signals are the work of the server and hub issues; the session engine of
//! `framewire-protocol` will take over the per-connection protocol logic in [`responder`].

pub mod config;
mod connection;
mod event_loop;
pub mod responder;

pub use config::ServerConfig;
pub use event_loop::{Server, ServerHandle};
