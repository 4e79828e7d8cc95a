//! framewire-client: connects to a framewire server.
//!
//! # What it does now
//!
//! [`FrameStream`]: a blocking TCP connection that sends and receives whole frames of
//! `framewire-protocol`, waits for each with a deadline, and performs the Hello/Welcome handshake.
//! It is the layer the full client is built on, and what tests and tools use to speak the wire
//! format directly.
//!
//! # What it does not do yet
//!
//! UDP, the session engine (heartbeats, idle timeouts, reliability over UDP), reconnects and
//! session resume, and the publish/subscribe, request and queue APIs: those come with the client
//! issue. It starts no threads and keeps no hidden timers.

mod frame_stream;

pub use frame_stream::{FrameStream, RecvError};
