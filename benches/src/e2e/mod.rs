//! End-to-end comparisons: framewire against the servers its users would pick instead, started as
//! processes of their own on loopback and driven the same way in the same run.
//!
//! - [`fanout`]: one publisher to many subscribers (framewire, nats-server, mosquitto).
//! - [`idle`]: server memory per idle connection.

pub mod fanout;
pub mod idle;
pub mod pubsub_wire;
pub mod systems;
