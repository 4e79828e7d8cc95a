//! The value of the Hello option `LAST_WILL` (docs/PROTOCOL.md section 4.1.1): a message the
//! server publishes for the client when its session ends without a Close (MQTT 3.1.2.5).
//!
//! ```text
//! flags (u8: bit 0 RETAIN) | channel (u8) | topic (name) | payload (to the end of the value)
//! ```

use alloc::vec;
use alloc::vec::Vec;

use bytes::Bytes;

use super::fields::{check_name, name_len, read_name, write_name};
use super::reader::Reader;
use super::text::Text;
use super::writer::Writer;
use crate::error::{DecodeError, EncodeError, Malformation};

const RETAIN: u8 = 0x01;

/// A last-will message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Publish it as the topic's retained message.
    pub retain: bool,
    /// The channel it is published on.
    pub channel: u8,
    /// The topic (no wildcards).
    pub topic: Text,
    /// The message.
    pub payload: Bytes,
}

impl LastWill {
    /// Parses an option value.
    ///
    /// # Errors
    /// A value that ends inside a field, a reserved flag bit set, or a bad topic encoding.
    pub fn parse(value: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(value);
        let flags = r.u8()?;
        if flags & !RETAIN != 0 {
            return Err(DecodeError::Malformed(Malformation::ReservedFlags));
        }
        Ok(Self {
            retain: flags & RETAIN != 0,
            channel: r.u8()?,
            topic: read_name(&mut r)?,
            payload: r.rest(),
        })
    }

    /// Encodes it as an option value.
    ///
    /// # Errors
    /// A topic longer than the protocol allows.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        check_name("last-will topic", &self.topic)?;
        let mut out = vec![0u8; 2 + name_len(&self.topic) + self.payload.len()];
        let mut w = Writer::new(&mut out);
        w.put_u8(if self.retain { RETAIN } else { 0 });
        w.put_u8(self.channel);
        write_name(&mut w, &self.topic);
        w.put_slice(&self.payload);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let will = LastWill {
            retain: true,
            channel: 1,
            topic: Text::from("dev/7/online"),
            payload: Bytes::from_static(b"0"),
        };
        let bytes = will.encode().unwrap();
        assert_eq!(&bytes[..4], &[0x01, 0x01, 0x00, 0x0c]);
        assert_eq!(LastWill::parse(Bytes::from(bytes.clone())).unwrap(), will);
        for cut in 0..4 {
            assert!(LastWill::parse(Bytes::copy_from_slice(&bytes[..cut])).is_err());
        }
        let mut reserved = bytes;
        reserved[0] = 0x02;
        assert!(LastWill::parse(Bytes::from(reserved)).is_err());
    }
}
