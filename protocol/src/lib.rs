//! framewire-protocol: the framewire wire format and session engine, with no I/O.
//!
//! # What it does
//!
//! - [`wire`]: the frame format of docs/PROTOCOL.md. Frames of every kind (handshake, heartbeats,
//!   data on channels, publish/subscribe, request/response, queues, close and errors), their framing
//!   on a TCP stream (length prefix, version, CRC32) and in UDP datagrams (packet header with
//!   connection id, packet number and acks; coalesced frames; CRC32). Parsers take bytes split
//!   anywhere and hostile bytes alike and answer with a value or a typed [`DecodeError`]; encoders
//!   write into buffers the caller owns.
//! - [`session`]: the session engine the server and clients share, driven by the caller
//!   (`handle_*` in, `poll_*` out). Over UDP ([`session::Session`], [`session::Endpoint`]): a
//!   stateless, non-amplifying handshake, acks, RTT estimation, loss detection and retransmission
//!   as RFC 9002, four kinds of channels, fragmentation, congestion control, address migration,
//!   heartbeats, idle timeout and close. Over TCP ([`session::StreamSession`]): the handshake,
//!   heartbeats, idle timeout, first-frame deadline and close on a byte stream.
//! - [`auth`]: connect tokens (HMAC-SHA256 signed identities and permissions, optionally with a UDP
//!   session's keys sealed in) and the rules that say what a permission list allows; [`seal`]:
//!   sealed datagrams (ChaCha20-Poly1305, a replay window); [`topic`]: the topic-filter matching
//!   rule.
//!
//! # What it does not do
//!
//! It opens no socket, starts no thread, never reads a clock and has no random source: the server
//! and client crates move the bytes and pass the time and random values in (which is what lets the
//! tests run the engine in a simulated network on a virtual clock, deterministically). A plain
//! datagram's CRC32 catches corruption, not forgery; [`seal`] encrypts and authenticates a UDP
//! session's datagrams under keys its connect token carried (TLS, for TCP, is the client's and
//! server's business, not this crate's). It has no `unsafe` code. It builds without `std` (with `alloc`) when
//! the default `std` feature is off.
//!
//! # Example
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use framewire_protocol::wire::{
//!     encode_stream_frame_into, Frame, Publish, StreamDeframer, Text, DEFAULT_MAX_FRAME_LEN,
//! };
//!
//! // Encode a publish into a send buffer...
//! let publish = Frame::new(Publish {
//!     retain: false,
//!     id: 7,
//!     topic: Text::from("room/1/pos"),
//!     payload: Bytes::from_static(b"x=3,y=4"),
//! })
//! .on_channel(1);
//! let mut wire = BytesMut::new();
//! encode_stream_frame_into(&publish, &mut wire)?;
//!
//! // ...and take it out of a receive buffer that got the bytes in two pieces.
//! let mut deframer = StreamDeframer::new(DEFAULT_MAX_FRAME_LEN);
//! let mut received = BytesMut::new();
//! received.extend_from_slice(&wire[..5]);
//! assert!(deframer.decode(&mut received)?.is_none());
//! received.extend_from_slice(&wire[5..]);
//! let body = deframer.decode(&mut received)?.expect("a whole frame");
//! assert_eq!(Frame::parse(body)?, publish);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

extern crate alloc;

pub mod auth;
pub mod discovery;
pub mod error;
#[doc(hidden)]
pub mod harness;
#[doc(hidden)]
pub mod samples;
pub mod seal;
pub mod session;
#[doc(hidden)]
pub mod sim;
mod splitmix;
pub mod topic;
pub mod wire;

pub use error::{DecodeError, EncodeError, Malformation};
