//! A segment file of the data directory: a 16-byte header, then records (docs/PROTOCOL.md
//! section 10.2).
//!
//! ```text
//! magic "FWLOG\r\n\x1a" (8) | format version (u16) | flags (u16) | crc32 of the 12 bytes before (u32)
//! ```
//!
//! The magic's `\r\n` and `\x1a` catch a file mangled by a text-mode copy, as PNG's do. Flag bit 0
//! (`SNAPSHOT`) says the segment begins with the whole state: recovery starts at the newest such
//! segment and anything older is left over from a compaction that was cut short.

use std::path::{Path, PathBuf};

use framewire_protocol::wire::crc32;

/// The first bytes of every segment.
pub const MAGIC: [u8; 8] = *b"FWLOG\r\n\x1a";
/// The format this server writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes of a segment's header.
pub const HEADER_LEN: usize = 16;
/// Header flag: the segment begins with a snapshot of the whole state.
pub const SNAPSHOT: u16 = 0x0001;
/// What a segment file's name ends with.
pub const EXTENSION: &str = "fwlog";

/// What a segment's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The format version that wrote it.
    pub version: u16,
    /// Whether the segment begins with a snapshot.
    pub snapshot: bool,
}

/// Why a segment's header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Shorter than a header.
    Short(usize),
    /// Not a framewire segment.
    BadMagic,
    /// The header's own checksum does not match.
    BadChecksum,
    /// Written by a format this server does not read.
    Version(u16),
    /// Flags this server does not know.
    Flags(u16),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Short(n) => write!(f, "{n} bytes, shorter than a segment header"),
            Self::BadMagic => f.write_str("not a framewire log segment (bad magic)"),
            Self::BadChecksum => f.write_str("the segment header's checksum does not match"),
            Self::Version(v) => write!(
                f,
                "written in data format version {v}; this server reads version {FORMAT_VERSION}"
            ),
            Self::Flags(x) => write!(f, "header flags {x:#06x} this server does not know"),
        }
    }
}

impl Header {
    /// The header's bytes.
    pub fn encode(self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&self.version.to_be_bytes());
        let flags = if self.snapshot { SNAPSHOT } else { 0 };
        out[10..12].copy_from_slice(&flags.to_be_bytes());
        let crc = crc32(&out[..12]);
        out[12..].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Reads the header at the start of `bytes`.
    ///
    /// # Errors
    /// A [`HeaderError`] saying what is wrong with it.
    pub fn parse(bytes: &[u8]) -> Result<Self, HeaderError> {
        let Some(h) = bytes.get(..HEADER_LEN) else {
            return Err(HeaderError::Short(bytes.len()));
        };
        if h[..8] != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        if crc32(&h[..12]).to_be_bytes() != h[12..16] {
            return Err(HeaderError::BadChecksum);
        }
        let version = u16::from_be_bytes([h[8], h[9]]);
        if version != FORMAT_VERSION {
            return Err(HeaderError::Version(version));
        }
        let flags = u16::from_be_bytes([h[10], h[11]]);
        if flags & !SNAPSHOT != 0 {
            return Err(HeaderError::Flags(flags));
        }
        Ok(Self {
            version,
            snapshot: flags & SNAPSHOT != 0,
        })
    }
}

/// The file of segment `number` in `dir`: 16 hex digits, so names sort in order.
pub fn path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:016x}.{EXTENSION}"))
}

/// The segment number a file name stands for, if it is a segment's.
pub fn number_of(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(EXTENSION)?.strip_suffix('.')?;
    if stem.len() != 16 {
        return None;
    }
    u64::from_str_radix(stem, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_reads_back_and_every_damage_is_named() {
        let h = Header {
            version: FORMAT_VERSION,
            snapshot: true,
        };
        let bytes = h.encode();
        assert_eq!(Header::parse(&bytes), Ok(h));
        assert_eq!(Header::parse(&bytes[..9]), Err(HeaderError::Short(9)));
        let mut bad = bytes;
        bad[0] = b'X';
        assert_eq!(Header::parse(&bad), Err(HeaderError::BadMagic));
        let mut bad = bytes;
        bad[11] ^= 0x04;
        assert_eq!(Header::parse(&bad), Err(HeaderError::BadChecksum));
        let mut other = Header {
            version: 2,
            snapshot: false,
        }
        .encode();
        assert_eq!(Header::parse(&other), Err(HeaderError::Version(2)));
        other[9] = 1;
        other[11] = 0x02;
        let crc = crc32(&other[..12]);
        other[12..].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(Header::parse(&other), Err(HeaderError::Flags(2)));
    }

    #[test]
    fn the_spec_gives_both_headers() {
        let spec = include_str!("../../../docs/PROTOCOL.md");
        for snapshot in [false, true] {
            let hex = crate::web::form::to_hex(
                &Header {
                    version: FORMAT_VERSION,
                    snapshot,
                }
                .encode(),
            );
            assert!(
                spec.contains(&format!("`{hex}`")),
                "section 10.2 lacks {hex}"
            );
        }
    }

    #[test]
    fn segment_names_sort_in_order_and_read_back() {
        let dir = Path::new("d");
        let p = path(dir, 0x2a);
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(name, "000000000000002a.fwlog");
        assert_eq!(number_of(name), Some(0x2a));
        assert_eq!(number_of("2a.fwlog"), None);
        assert_eq!(number_of("000000000000002a.tmp"), None);
    }
}
