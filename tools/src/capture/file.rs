//! Reading pcap and pcapng files (as tcpdump, tshark and Wireshark write them) into packets with
//! their link type and time: all at once from bytes ([`read_capture`]), or one packet at a time
//! from a reader ([`PacketReader`]).

use std::io::{BufRead, Read};
use std::time::Duration;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::PcapNgReader;
use pcap_file::pcapng::blocks::Block;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::{DataLink, TsResolution};

/// One captured packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedPacket {
    /// When it was captured, since the UNIX epoch.
    pub time: Duration,
    /// How its bytes start.
    pub link: DataLink,
    /// The bytes captured.
    pub data: Vec<u8>,
    /// Whether the capture cut it short (its snap length).
    pub cut: bool,
}

/// Why a file could not be read. Packets read before the problem are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError(pub String);

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CaptureError {}

/// Every packet of a pcap or pcapng file's bytes, in file order; a truncated last packet ends
/// the list (with `damaged` saying so) rather than failing the whole file.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    /// The packets.
    pub packets: Vec<CapturedPacket>,
    /// What stopped the reading early, if anything did.
    pub damaged: Option<String>,
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Reads a capture from its bytes, telling pcap from pcapng by the first four.
///
/// # Errors
/// The bytes are neither, or their file header cannot be read.
pub fn read_capture(bytes: &[u8]) -> Result<Capture, CaptureError> {
    let mut reader = PacketReader::new(bytes)?;
    let mut capture = Capture::default();
    for packet in &mut reader {
        capture.packets.push(packet);
    }
    capture.damaged = reader.damaged;
    Ok(capture)
}

/// Packets of a pcap or pcapng file one at a time, in file order, from any reader: a capture
/// larger than memory is read with memory for one packet. A damaged packet ends the iteration,
/// and [`PacketReader::damaged`] says why.
pub struct PacketReader<R: Read> {
    format: Format<R>,
    read: u64,
    damaged: Option<String>,
}

enum Format<R: Read> {
    Pcap(Box<PcapReader<R>>, DataLink, u32),
    PcapNg(Box<PcapNgReader<R>>, Vec<Interface>),
    Done,
}

impl<R: Read> std::fmt::Debug for PacketReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketReader")
            .field("read", &self.read)
            .field("damaged", &self.damaged)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> PacketReader<R> {
    /// Starts reading, telling pcap from pcapng by the first four bytes.
    ///
    /// # Errors
    /// The bytes are neither, or their file header cannot be read.
    pub fn new(mut reader: R) -> Result<Self, CaptureError> {
        let head = reader
            .fill_buf()
            .map_err(|e| CaptureError(format!("cannot read: {e}")))?;
        let format = if head.starts_with(&PCAPNG_MAGIC) {
            let r = PcapNgReader::new(reader)
                .map_err(|e| CaptureError(format!("not a pcapng file: {e}")))?;
            Format::PcapNg(Box::new(r), Vec::new())
        } else {
            let r = PcapReader::new(reader)
                .map_err(|e| CaptureError(format!("not a pcap or pcapng file: {e}")))?;
            let header = r.header();
            let frac_ns = match header.ts_resolution {
                TsResolution::MicroSecond => 1_000,
                TsResolution::NanoSecond => 1,
            };
            Format::Pcap(Box::new(r), header.datalink, frac_ns)
        };
        Ok(Self {
            format,
            read: 0,
            damaged: None,
        })
    }
}

impl<R: Read> PacketReader<R> {
    /// What stopped the reading early, once it has stopped.
    pub fn damaged(&self) -> Option<&str> {
        self.damaged.as_deref()
    }

    fn stop(&mut self, why: String) -> Option<CapturedPacket> {
        self.damaged = Some(why);
        self.format = Format::Done;
        None
    }

    fn next_pcap(&mut self) -> Option<CapturedPacket> {
        let Format::Pcap(reader, link, frac_ns) = &mut self.format else {
            return None;
        };
        let (link, frac_ns) = (*link, *frac_ns);
        // Raw packets: the crate's checked reader refuses an original length above the snap
        // length, which is exactly what a packet cut by `tcpdump -s N` has.
        match reader.next_raw_packet()? {
            Ok(p) if p.ts_frac < 1_000_000_000 / frac_ns => Some(CapturedPacket {
                time: Duration::new(u64::from(p.ts_sec), p.ts_frac * frac_ns),
                link,
                cut: (p.data.len() as u64) < u64::from(p.orig_len),
                data: p.data.into_owned(),
            }),
            Ok(p) => {
                let why = format!(
                    "packet {}: timestamp fraction {} out of range",
                    self.read, p.ts_frac
                );
                self.stop(why)
            }
            Err(e) => self.stop(e.to_string()),
        }
    }

    fn next_pcapng(&mut self) -> Option<CapturedPacket> {
        loop {
            let Format::PcapNg(reader, interfaces) = &mut self.format else {
                return None;
            };
            let block = match reader.next_block()? {
                Ok(b) => b,
                Err(e) => return self.stop(e.to_string()),
            };
            match block {
                Block::SectionHeader(_) => interfaces.clear(),
                Block::InterfaceDescription(idb) => {
                    let resolution = idb.options.iter().find_map(|o| match o {
                        InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                        _ => None,
                    });
                    interfaces.push(Interface {
                        link: idb.linktype,
                        units_per_sec: units_per_sec(resolution.unwrap_or(6)),
                    });
                }
                Block::EnhancedPacket(epb) => {
                    let Some(interface) = interfaces.get(epb.interface_id as usize) else {
                        let why = format!(
                            "a packet names interface {}, which was not described",
                            epb.interface_id
                        );
                        return self.stop(why);
                    };
                    return Some(CapturedPacket {
                        // The reader hands the raw 64-bit count over as nanoseconds; rescale it.
                        time: scale(epb.timestamp.as_nanos(), interface.units_per_sec),
                        link: interface.link,
                        cut: (epb.data.len() as u64) < u64::from(epb.original_len),
                        data: epb.data.into_owned(),
                    });
                }
                Block::SimplePacket(spb) => {
                    let Some(interface) = interfaces.first() else {
                        self.format = Format::Done;
                        return None;
                    };
                    return Some(CapturedPacket {
                        time: Duration::ZERO,
                        link: interface.link,
                        cut: (spb.data.len() as u64) < u64::from(spb.original_len),
                        data: spb.data.into_owned(),
                    });
                }
                _ => {}
            }
        }
    }
}

impl<R: Read> Iterator for PacketReader<R> {
    type Item = CapturedPacket;

    fn next(&mut self) -> Option<CapturedPacket> {
        let packet = match self.format {
            Format::Pcap(..) => self.next_pcap(),
            Format::PcapNg(..) => self.next_pcapng(),
            Format::Done => None,
        };
        if packet.is_some() {
            self.read += 1;
        }
        packet
    }
}

/// An interface of a pcapng section: its link type and the nanoseconds per timestamp unit.
struct Interface {
    link: DataLink,
    /// Timestamp units per second.
    units_per_sec: u64,
}

/// `if_tsresol`: the high bit says a power of two, else of ten; the rest is the exponent.
fn units_per_sec(resolution: u8) -> u64 {
    let exponent = u32::from(resolution & 0x7f);
    if resolution & 0x80 == 0 {
        10u64.checked_pow(exponent).unwrap_or(u64::MAX)
    } else {
        1u64.checked_shl(exponent).unwrap_or(u64::MAX)
    }
}

fn scale(count: u128, units_per_sec: u64) -> Duration {
    let per = u128::from(units_per_sec.max(1));
    let secs = u64::try_from(count / per).unwrap_or(u64::MAX);
    let nanos = (count % per) * 1_000_000_000 / per;
    Duration::new(secs, nanos as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(units_per_sec(6), 1_000_000);
        assert_eq!(units_per_sec(9), 1_000_000_000);
        assert_eq!(units_per_sec(0x8a), 1024);
        assert_eq!(scale(1_500_000, 1_000_000), Duration::from_millis(1500));
        assert_eq!(scale(1_500, 1_000_000_000), Duration::from_nanos(1500));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(read_capture(b"").is_err());
        assert!(read_capture(b"hello, this is not a capture file").is_err());
        assert!(read_capture(&[0x0a, 0x0d, 0x0d, 0x0a, 1, 2]).is_err());
    }
}
