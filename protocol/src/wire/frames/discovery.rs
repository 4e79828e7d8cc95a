//! LAN discovery's frames, UDP only (docs/PROTOCOL.md section 4.12): a client's Discover, padded
//! to the size of answer it will take, and a server's Here, its node card.

use alloc::string::String;

use super::BodyCodec;
use crate::error::{DecodeError, Malformation};
use crate::wire::kind::FrameKind;
use crate::wire::node_card::NodeCard;
use crate::wire::reader::Reader;
use crate::wire::writer::Writer;

/// Asks every server that hears it for its node card. Sent alone in a handshake datagram,
/// usually broadcast; an answer is never longer than the datagram that asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discover {
    /// Chosen at random by the client; a Here echoes it.
    pub nonce: u64,
    /// Bytes of zero after the nonce, making the datagram as large as the answer it will take.
    pub padding: usize,
}

impl BodyCodec for Discover {
    const KIND: FrameKind = FrameKind::Discover;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        let nonce = r.u64()?;
        // Their values are not looked at (section 4.12): only their number.
        let padding = r.rest().len();
        Ok(Self { nonce, padding })
    }

    fn body_len(&self) -> usize {
        8 + self.padding
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u64(self.nonce);
        for _ in 0..self.padding {
            w.put_u8(0);
        }
    }
}

/// A server's answer to a [`Discover`]: its name and the addresses it serves clients on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Here {
    /// The Discover's nonce.
    pub nonce: u64,
    /// Address lines were left out to stay within the Discover's size (flag bit 0).
    pub truncated: bool,
    /// The node's card.
    pub card: NodeCard,
}

/// Here's flag: lines left out.
const TRUNCATED: u8 = 0x01;

impl BodyCodec for Here {
    const KIND: FrameKind = FrameKind::Here;
    const FLAG_MASK: u8 = TRUNCATED;

    fn flags(&self) -> u8 {
        if self.truncated { TRUNCATED } else { 0 }
    }

    fn parse(flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        let nonce = r.u64()?;
        let rest = r.rest();
        let text = core::str::from_utf8(&rest)
            .map_err(|_| DecodeError::Malformed(Malformation::InvalidUtf8))?;
        let card =
            NodeCard::parse(text).map_err(|_| DecodeError::Malformed(Malformation::BadNodeCard))?;
        Ok(Self {
            nonce,
            truncated: flags & TRUNCATED != 0,
            card,
        })
    }

    fn body_len(&self) -> usize {
        8 + self.card.encode().len()
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u64(self.nonce);
        let text: String = self.card.encode();
        w.put_slice(text.as_bytes());
    }
}
