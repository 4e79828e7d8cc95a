//! Reading one segment's records (docs/PROTOCOL.md section 10.4): every record is checked (its
//! length, CRC, version and frame) before it is believed, and a bad one is told apart as a torn
//! tail (an unfinished last write: nothing valid follows it) or corruption in the middle (valid
//! records follow it, and would be lost by cutting there).
//!
//! Malformed bytes are an error value; nothing is allocated by a length the file claims before the
//! bytes it names are there.

use bytes::Bytes;
use framewire_protocol::DecodeError;
use framewire_protocol::wire::{Frame, LENGTH_PREFIX_LEN, MIN_FRAME_LEN, VERSION, crc32};

use super::record::Record;

/// What is wrong with the bytes at an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The bytes end before the record they begin.
    Truncated,
    /// A length below the smallest frame or above the largest record.
    Length(u32),
    /// The record's CRC does not match.
    Checksum,
    /// A frame version this server does not read.
    Version(u8),
    /// The CRC matches but the frame is malformed.
    Frame(DecodeError),
    /// A well-formed frame of a kind that is not a record.
    NotARecord(u8),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => f.write_str("the file ends inside the record"),
            Self::Length(n) => write!(f, "a record length of {n}"),
            Self::Checksum => f.write_str("the CRC does not match"),
            Self::Version(v) => write!(f, "frame version {v}"),
            Self::Frame(e) => write!(f, "a malformed frame ({e:?})"),
            Self::NotARecord(k) => write!(f, "a frame of kind {k:#04x}, which is not a record"),
        }
    }
}

/// Bytes that were not records, at an offset of the scanned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Where the bad bytes begin.
    pub at: usize,
    /// How many there are.
    pub len: usize,
    /// What was wrong with the first of them.
    pub fault: Fault,
}

/// A segment's records, read.
#[derive(Debug, Default)]
pub struct Scan {
    /// The records, in order.
    pub records: Vec<Record>,
    /// The length of the good part: where the next record is to be written.
    pub end: usize,
    /// A torn tail: bytes after the last good record that no valid record follows.
    pub tail: Option<Damage>,
    /// Corruption in the middle that was dropped (only when salvaging).
    pub salvaged: Vec<Damage>,
}

/// Corruption in the middle: bad bytes with valid records after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    /// The bad bytes.
    pub damage: Damage,
    /// Records read before them.
    pub good_records: usize,
}

/// Reads the record at `pos`: the record and the offset after it.
///
/// # Errors
/// The [`Fault`] found there.
pub fn record_at(bytes: &[u8], pos: usize, max_len: u32) -> Result<(Record, usize), Fault> {
    let rest = bytes.get(pos..).unwrap_or_default();
    let Some(prefix) = rest.get(..LENGTH_PREFIX_LEN) else {
        return Err(Fault::Truncated);
    };
    let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if len < MIN_FRAME_LEN || len > max_len {
        return Err(Fault::Length(len));
    }
    let total = LENGTH_PREFIX_LEN + len as usize;
    let Some(whole) = rest.get(..total) else {
        return Err(Fault::Truncated);
    };
    let (covered, carried) = whole[LENGTH_PREFIX_LEN..].split_at(len as usize - 4);
    // Under `cfg(fuzzing)` a mismatch passes, so the fuzzer reaches the frame parser behind it.
    if crc32(covered).to_be_bytes() != carried && !cfg!(fuzzing) {
        return Err(Fault::Checksum);
    }
    if covered[0] != VERSION {
        return Err(Fault::Version(covered[0]));
    }
    // The body is copied out, so a record kept for long does not hold the whole file's buffer.
    let frame = Frame::parse(Bytes::copy_from_slice(&covered[1..])).map_err(Fault::Frame)?;
    let record = Record::from_frame(frame).map_err(|e| Fault::NotARecord(e.0))?;
    Ok((record, pos + total))
}

/// Whether valid records run from `pos` exactly to the end of `bytes`.
fn chain_reaches_end(bytes: &[u8], mut pos: usize, max_len: u32) -> bool {
    while pos < bytes.len() {
        match record_at(bytes, pos, max_len) {
            Ok((_, next)) => pos = next,
            Err(_) => return false,
        }
    }
    true
}

/// The first offset after `pos` from which valid records run to the end, if any.
fn resync(bytes: &[u8], pos: usize, max_len: u32) -> Option<usize> {
    (pos + 1..bytes.len()).find(|&q| chain_reaches_end(bytes, q, max_len))
}

/// Reads the records of `bytes` (a segment after its header), each at most `max_len` long after
/// its length prefix. A bad record with nothing valid after it is a torn tail, cut in the answer.
///
/// # Errors
/// [`Corrupt`]: a bad record followed by valid ones, unless `salvage`, which drops the bad bytes
/// (reported in [`Scan::salvaged`]) and reads on.
pub fn scan(bytes: &[u8], max_len: u32, salvage: bool) -> Result<Scan, Corrupt> {
    let mut out = Scan::default();
    let mut pos = 0;
    while pos < bytes.len() {
        match record_at(bytes, pos, max_len) {
            Ok((record, next)) => {
                out.records.push(record);
                pos = next;
                out.end = pos;
            }
            Err(fault) => {
                let Some(next) = resync(bytes, pos, max_len) else {
                    out.tail = Some(Damage {
                        at: pos,
                        len: bytes.len() - pos,
                        fault,
                    });
                    return Ok(out);
                };
                let damage = Damage {
                    at: pos,
                    len: next - pos,
                    fault,
                };
                if !salvage {
                    return Err(Corrupt {
                        damage,
                        good_records: out.records.len(),
                    });
                }
                out.salvaged.push(damage);
                pos = next;
            }
        }
    }
    out.end = pos;
    Ok(out)
}

/// Runs arbitrary bytes through the data directory's readers: a segment header, then a scan of
/// the records, strict and salvaging. Whatever the input, an answer and never a panic; the records
/// of a scan encode to bytes that scan back to the same records. Shared by the `store` fuzz target
/// and the test that replays its corpus.
#[doc(hidden)]
pub fn fuzz_check(data: &[u8]) {
    let _ = super::segment::Header::parse(data);
    for salvage in [false, true] {
        match scan(data, 1 << 16, salvage) {
            Ok(s) => {
                assert!(s.end <= data.len());
                let mut again = bytes::BytesMut::new();
                for r in &s.records {
                    r.encode_into(&mut again)
                        .expect("a record read back encodes");
                }
                let back = scan(&again, 1 << 16, false).expect("re-encoded records scan clean");
                assert_eq!(back.records, s.records);
                assert_eq!(back.end, again.len());
            }
            Err(c) => assert!(c.damage.at + c.damage.len <= data.len()),
        }
    }
}

#[cfg(test)]
mod tests;
