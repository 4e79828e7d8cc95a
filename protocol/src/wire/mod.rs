//! The wire format: frames, their two framings (TCP streams and UDP datagrams), and the codes and
//! limits they carry. docs/PROTOCOL.md is the specification this module implements; section
//! numbers in the docs here refer to it.
//!
//! # Two levels (STYLE.md 6)
//!
//! Received bytes pass a *checked* step that establishes their structure without interpreting it
//! ([`StreamDeframer`] for a stream, [`PacketView`] and [`Datagram`] for a datagram), then a
//! *parse* into the validated representation [`Frame`]. The session engine consumes `Frame`s, never
//! raw bytes. Every failure on the way is a [`DecodeError`](crate::DecodeError), never a panic, and nothing is
//! allocated in proportion to a length the peer claims.
//!
//! # Writing
//!
//! Encoders write into a caller-supplied buffer: [`Frame::emit`] for a frame body,
//! [`encode_stream_frame`] for a TCP frame, [`DatagramBuilder`] for a datagram that coalesces
//! several frames, [`SharedFrame`] for one frame sent to many peers.

mod builder;
mod code;
pub mod compact;
mod crc;
mod datagram;
pub(crate) mod fields;
mod frame;
mod frames;
mod kind;
pub mod node_card;
pub mod numbers;
mod options;
pub(crate) mod reader;
mod shared;
mod stream;
mod text;
mod will;
mod writer;

pub use builder::DatagramBuilder;
pub use code::{Reason, Status};
pub use compact::{CompactContext, is_compact};
pub(crate) use crc::check_even_when_fuzzing;
pub use crc::crc32;
pub use datagram::{
    ACK_BLOCK_LEN, ACK_FLAG, ACK_NOW_FLAG, AckBlock, CRC_LEN, Datagram, DatagramFrames,
    FRAME_LEN_PREFIX, FramePart, FrameParts, PACKET_HEADER_LEN, PacketHeader, PacketView,
    peek_connection_id,
};
pub use frame::{FRAME_HEADER_LEN, Frame, FrameBody, SEQ_FLAG, SEQ_LEN};
pub use frames::{
    Ack, Challenge, Close, CloseAck, Data, Discover, ErrorFrame, Fragment, Hello, Here, Message,
    Ping, Pong, Publish, QueueAck, QueueDelivery, QueueExtend, QueueFetch, QueueNack, QueuePush,
    Register, Reject, Request, Reset, Response, Subscribe, Unregister, Unsubscribe, Welcome,
};
pub use kind::{ChannelKind, FrameKind};
pub use node_card::NodeCard;
pub use options::{
    HelloOption, HelloOptionIter, HelloOptions, HelloOptionsBuilder, OPTION_HEADER_LEN, option,
};
pub use shared::{NumberedMessage, SCRATCH_BLOCK, SharedFrame};
pub use stream::{
    FrameSpan, LENGTH_PREFIX_LEN, STREAM_OVERHEAD, StreamDeframer, decode_stream_frame,
    encode_stream_frame, encode_stream_frame_into, stream_frame_len,
};
pub use text::Text;
pub use will::LastWill;

/// The protocol version of every frame's and datagram's version field, and the lowest this crate
/// speaks (section 1.2).
pub const VERSION: u8 = 1;
/// Version 1 with, on UDP, compact datagrams for an established plaintext session (section 2.4).
pub const COMPACT_VERSION: u8 = 2;
/// Version 2 whose coalesced frames may share a header with the frame before them (section 2.4):
/// the highest a plaintext UDP session speaks.
pub const SHARED_HEADERS_VERSION: u8 = 3;
/// The highest version this crate speaks: version 3 whose sealed sessions send compact datagrams
/// too, sealed (section 2.5). Only a sealed session offers it or is given it.
pub const SEALED_COMPACT_VERSION: u8 = 4;
/// The first bytes of every datagram: "FW" (section 2.2).
pub const MAGIC: [u8; 2] = *b"FW";
/// The smallest possible stream frame length prefix: version, frame header, CRC (section 2.1).
pub const MIN_FRAME_LEN: u32 = 1 + FRAME_HEADER_LEN as u32 + 4;
/// The smallest frame length limit a session agrees (section 6.2): a Hello asking for less is
/// refused. Every frame a side must be able to send (a Close or an Error with a short reason, a
/// Response refusing an operation, the handshake's answers) fits in it.
pub const MIN_AGREED_FRAME_LEN: u32 = 512;
/// What a frame body adds to become a stream frame's `length` (section 2.1): the version byte and
/// the CRC. A message's frame length is the same over both transports: over UDP it is its body
/// without the SEQ field, plus this.
pub const FRAME_LEN_OVERHEAD: usize = 5;
/// The frame length limit before the handshake agrees one (section 6.2).
pub const DEFAULT_MAX_FRAME_LEN: u32 = 64 * 1024;
/// The largest frame length any peer may agree to (section 6.2).
pub const MAX_FRAME_LEN_CEILING: u32 = 16 * 1024 * 1024;
/// The longest name (topic, filter, target, service, queue) in bytes (section 6.2).
pub const MAX_NAME_LEN: usize = 1024;
/// The datagram size a UDP session uses unless configured otherwise (section 6.2).
pub const DEFAULT_DATAGRAM_SIZE: usize = 1200;
/// The largest UDP payload over IPv4 (section 6.2).
pub const MAX_DATAGRAM_SIZE: usize = 65_507;
/// The least size of a UDP datagram carrying a Hello (section 4.1.2): the server's reply is never
/// larger, so a spoofed Hello never amplifies.
pub const MIN_HELLO_DATAGRAM: usize = 1200;
