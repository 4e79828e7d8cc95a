//! The body of each frame kind: its fields in wire order, how it parses, and how it is written.
//!
//! One file per group of kinds, mirroring docs/PROTOCOL.md: the handshake (section 4.1-4.4), the
//! session's own frames (4.5-4.10), and the hub's (section 5).

mod discovery;
mod handshake;
mod hub;
mod session;

pub use discovery::{Discover, Here};
pub use handshake::{Challenge, Hello, Reject, Welcome};
pub use hub::{
    Message, Publish, QueueAck, QueueDelivery, QueueExtend, QueueFetch, QueueNack, QueuePush,
    Register, Request, Response, Subscribe, Unregister, Unsubscribe,
};
pub use session::{Ack, Close, CloseAck, Data, ErrorFrame, Fragment, Ping, Pong, Reset};

use super::kind::FrameKind;
use super::reader::Reader;
use super::writer::Writer;
use crate::error::{DecodeError, EncodeError};

/// What every frame body type provides to the frame codec.
pub(crate) trait BodyCodec: Sized {
    /// The kind byte this body is sent under.
    const KIND: FrameKind;
    /// The kind-specific flag bits this kind defines (a subset of `0x7F`); others must be zero.
    const FLAG_MASK: u8 = 0;

    /// The kind-specific flag bits of this value.
    fn flags(&self) -> u8 {
        0
    }

    /// Parses the body after the common header. `flags` has passed the `FLAG_MASK` check. Must read
    /// the body to its end: kinds without a payload call [`Reader::finish`].
    fn parse(flags: u8, r: &mut Reader) -> Result<Self, DecodeError>;

    /// The encoded length of the body (without the common header).
    fn body_len(&self) -> usize;

    /// Checks that every field fits its encoding; called before [`BodyCodec::emit`].
    fn check(&self) -> Result<(), EncodeError> {
        Ok(())
    }

    /// Writes the body; `w` has room for exactly [`BodyCodec::body_len`] more bytes.
    fn emit(&self, w: &mut Writer);
}
