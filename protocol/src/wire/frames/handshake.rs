//! Hello, Challenge, Welcome and Reject: opening a session (docs/PROTOCOL.md sections 4.1-4.4).

use bytes::Bytes;

use super::BodyCodec;
use crate::error::{DecodeError, EncodeError, Malformation};
use crate::wire::code::Reason;
use crate::wire::fields::{check_short, read_short, read_text_rest, short_len, write_short};
use crate::wire::kind::FrameKind;
use crate::wire::options::HelloOptions;
use crate::wire::reader::Reader;
use crate::wire::text::Text;
use crate::wire::writer::Writer;

/// Client opens (or resumes) a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The lowest protocol version the client speaks.
    pub min_version: u8,
    /// The highest protocol version the client speaks.
    pub max_version: u8,
    /// The idle timeout the client wants, in milliseconds; 0 means "the server's choice".
    pub idle_timeout_ms: u32,
    /// The largest frame (length prefix value) the client accepts.
    pub max_frame_len: u32,
    /// A random value the server echoes in its Challenge, so the client can match it.
    pub nonce: u64,
    /// Cookie, resume token, channels, client name, padding, and options of later versions.
    pub options: HelloOptions,
}

impl Hello {
    /// A Hello for this crate's protocol version that leaves the idle timeout to the server (0)
    /// and accepts frames up to [`DEFAULT_MAX_FRAME_LEN`](crate::wire::DEFAULT_MAX_FRAME_LEN).
    pub fn new(nonce: u64, options: HelloOptions) -> Self {
        Self {
            min_version: crate::wire::VERSION,
            max_version: crate::wire::VERSION,
            idle_timeout_ms: 0,
            max_frame_len: crate::wire::DEFAULT_MAX_FRAME_LEN,
            nonce,
            options,
        }
    }
}

impl BodyCodec for Hello {
    const KIND: FrameKind = FrameKind::Hello;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        let min_version = r.u8()?;
        let max_version = r.u8()?;
        if min_version > max_version {
            return Err(DecodeError::Malformed(Malformation::VersionRange));
        }
        Ok(Self {
            min_version,
            max_version,
            idle_timeout_ms: r.u32()?,
            max_frame_len: r.u32()?,
            nonce: r.u64()?,
            options: HelloOptions::parse(r.rest())?,
        })
    }

    fn body_len(&self) -> usize {
        1 + 1 + 4 + 4 + 8 + self.options.len()
    }

    fn check(&self) -> Result<(), EncodeError> {
        if self.min_version > self.max_version {
            return Err(EncodeError::InvalidValue(
                "Hello min_version above max_version",
            ));
        }
        Ok(())
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u8(self.min_version);
        w.put_u8(self.max_version);
        w.put_u32(self.idle_timeout_ms);
        w.put_u32(self.max_frame_len);
        w.put_u64(self.nonce);
        w.put_slice(self.options.as_bytes());
    }
}

/// Server's stateless address check (UDP): the client must echo `cookie` in a second Hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The nonce of the Hello this answers.
    pub nonce: u64,
    /// Opaque to the client; at most 255 bytes.
    pub cookie: Bytes,
}

impl BodyCodec for Challenge {
    const KIND: FrameKind = FrameKind::Challenge;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        let nonce = r.u64()?;
        let cookie = read_short(r)?;
        r.finish()?;
        Ok(Self { nonce, cookie })
    }

    fn body_len(&self) -> usize {
        8 + short_len(&self.cookie)
    }

    fn check(&self) -> Result<(), EncodeError> {
        check_short("Challenge cookie", &self.cookie)
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u64(self.nonce);
        write_short(w, &self.cookie);
    }
}

/// Server accepts the session and states what was agreed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The session resumed an earlier one (flag bit 0).
    pub resumed: bool,
    /// The protocol version chosen for the session.
    pub version: u8,
    /// The connection id the client puts in every datagram's header (UDP); informational on TCP.
    pub connection_id: u64,
    /// The agreed idle timeout in milliseconds.
    pub idle_timeout_ms: u32,
    /// The agreed maximum frame length.
    pub max_frame_len: u32,
    /// How often, when idle, each side sends a Ping, in milliseconds.
    pub heartbeat_interval_ms: u32,
    /// On resume: how many reliable messages were dropped while away because the bound was reached.
    pub missed: u32,
    /// The token that resumes this session later; at most 255 bytes.
    pub session_token: Bytes,
}

impl Welcome {
    const RESUMED: u8 = 0x01;
}

impl BodyCodec for Welcome {
    const KIND: FrameKind = FrameKind::Welcome;
    const FLAG_MASK: u8 = Self::RESUMED;

    fn flags(&self) -> u8 {
        if self.resumed { Self::RESUMED } else { 0 }
    }

    fn parse(flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        let w = Self {
            resumed: flags & Self::RESUMED != 0,
            version: r.u8()?,
            connection_id: r.u64()?,
            idle_timeout_ms: r.u32()?,
            max_frame_len: r.u32()?,
            heartbeat_interval_ms: r.u32()?,
            missed: r.u32()?,
            session_token: read_short(r)?,
        };
        r.finish()?;
        Ok(w)
    }

    fn body_len(&self) -> usize {
        1 + 8 + 4 + 4 + 4 + 4 + short_len(&self.session_token)
    }

    fn check(&self) -> Result<(), EncodeError> {
        check_short("Welcome session_token", &self.session_token)
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u8(self.version);
        w.put_u64(self.connection_id);
        w.put_u32(self.idle_timeout_ms);
        w.put_u32(self.max_frame_len);
        w.put_u32(self.heartbeat_interval_ms);
        w.put_u32(self.missed);
        write_short(w, &self.session_token);
    }
}

/// Server refuses the session. Its layout is the same in every protocol version (section 4.4), so a
/// client of any version can read why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Why.
    pub reason: Reason,
    /// The lowest version the server speaks.
    pub min_version: u8,
    /// The highest version the server speaks.
    pub max_version: u8,
    /// A human-readable explanation.
    pub message: Text,
}

impl BodyCodec for Reject {
    const KIND: FrameKind = FrameKind::Reject;

    fn parse(_flags: u8, r: &mut Reader) -> Result<Self, DecodeError> {
        let reason = Reason(r.u16()?);
        let min_version = r.u8()?;
        let max_version = r.u8()?;
        if min_version > max_version {
            return Err(DecodeError::Malformed(Malformation::VersionRange));
        }
        Ok(Self {
            reason,
            min_version,
            max_version,
            message: read_text_rest(r)?,
        })
    }

    fn body_len(&self) -> usize {
        2 + 1 + 1 + self.message.len()
    }

    fn check(&self) -> Result<(), EncodeError> {
        if self.min_version > self.max_version {
            return Err(EncodeError::InvalidValue(
                "Reject min_version above max_version",
            ));
        }
        Ok(())
    }

    fn emit(&self, w: &mut Writer) {
        w.put_u16(self.reason.0);
        w.put_u8(self.min_version);
        w.put_u8(self.max_version);
        w.put_slice(self.message.as_bytes());
    }
}
