//! framewire-server: serves the framewire protocol (docs/PROTOCOL.md) to clients.
//!
//! # What it does now
//!
//! One mio event loop per worker thread (`threads`, default the number of cores), each with its
//! own TCP listener and UDP socket on the same address (`SO_REUSEPORT`), so the kernel spreads
//! connections and UDP peers over the workers; a session belongs to one worker, and the workers
//! share the hub, handing each other frames through inboxes woken with `mio::Waker`
//! ([`Server`]). Each TCP connection runs the protocol's
//! stream session (`framewire_protocol::session::StreamSession`): the handshake, heartbeats, the
//! idle timeout, the first-frame deadline, close with a reason, bounded output, and a Close naming
//! the reason for bad bytes. Over UDP, the protocol's stateless handshake endpoint answers Hellos
//! without keeping state, and each connection id gets a datagram session (reliability, channels,
//! migration; a datagram that reaches another worker's socket is handed to the owner). Each loop
//! keeps every deadline in a timing wheel and sleeps until the first.
//!
//! Every established session's frames go to the [`hub`]: publish/subscribe with wildcards and
//! retained messages, request/response to `sys.*` methods and to client-registered services,
//! and work queues with long polls. The hub is sans-IO like the protocol's sessions, and is tested
//! on its own with a virtual clock.
//!
//! On Linux a UDP session's datagrams of one turn leave in one system call where they can
//! (segmentation offload, `udp_segment_send`), a client's back-to-back datagrams of one size arrive
//! in one read (`UDP_GRO`, `udp_segment_receive`), and reads can be fetched many per call
//! (`recvmmsg`, `udp_batch_receive`, off by default); the socket code is the client crate's
//! (`framewire_client::udp_io`), so both ends of a session move datagrams the same way.
//!
//! # What it does not do yet
//!
//! Datagrams to different sessions still take a system call each (no `sendmmsg`).

mod capture;
pub mod cluster;
pub mod config;
mod connection;
pub mod counters;
mod deadlines;
mod event_loop;
pub mod hub;
mod id_map;
mod server;
mod settings;
mod shared;
mod socket_out;
pub mod store;
mod tcp_options;
mod timer_wheel;
pub mod tls;
mod udp;
mod udp_send;
pub mod web;

pub use config::{ServerConfig, UdpOffload};
pub use counters::{CounterSnapshot, DiscoveryCounts};
pub use server::{Server, ServerHandle};
