//! Reading pcap and pcapng files (as tcpdump, tshark and Wireshark write them) into packets with
//! their link type and time.

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
    if bytes.starts_with(&PCAPNG_MAGIC) {
        read_pcapng(bytes)
    } else {
        read_pcap(bytes)
    }
}

fn read_pcap(bytes: &[u8]) -> Result<Capture, CaptureError> {
    let mut reader = PcapReader::new(bytes)
        .map_err(|e| CaptureError(format!("not a pcap or pcapng file: {e}")))?;
    let header = reader.header();
    let frac_ns = match header.ts_resolution {
        TsResolution::MicroSecond => 1_000,
        TsResolution::NanoSecond => 1,
    };
    let mut capture = Capture::default();
    // Raw packets: the crate's checked reader refuses an original length above the snap length,
    // which is exactly what a packet cut by `tcpdump -s N` has.
    while let Some(packet) = reader.next_raw_packet() {
        match packet {
            Ok(p) if p.ts_frac < 1_000_000_000 / frac_ns => capture.packets.push(CapturedPacket {
                time: Duration::new(u64::from(p.ts_sec), p.ts_frac * frac_ns),
                link: header.datalink,
                cut: (p.data.len() as u64) < u64::from(p.orig_len),
                data: p.data.into_owned(),
            }),
            Ok(p) => {
                capture.damaged = Some(format!(
                    "packet {}: timestamp fraction {} out of range",
                    capture.packets.len(),
                    p.ts_frac
                ));
                break;
            }
            Err(e) => {
                capture.damaged = Some(e.to_string());
                break;
            }
        }
    }
    Ok(capture)
}

/// An interface of a pcapng section: its link type and the nanoseconds per timestamp unit.
struct Interface {
    link: DataLink,
    /// Timestamp units per second.
    units_per_sec: u64,
}

fn read_pcapng(bytes: &[u8]) -> Result<Capture, CaptureError> {
    let mut reader =
        PcapNgReader::new(bytes).map_err(|e| CaptureError(format!("not a pcapng file: {e}")))?;
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut capture = Capture::default();
    while let Some(block) = reader.next_block() {
        let block = match block {
            Ok(b) => b,
            Err(e) => {
                capture.damaged = Some(e.to_string());
                break;
            }
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
                    capture.damaged = Some(format!(
                        "a packet names interface {}, which was not described",
                        epb.interface_id
                    ));
                    break;
                };
                capture.packets.push(CapturedPacket {
                    // The reader hands the raw 64-bit count over as nanoseconds; rescale it.
                    time: scale(epb.timestamp.as_nanos(), interface.units_per_sec),
                    link: interface.link,
                    cut: (epb.data.len() as u64) < u64::from(epb.original_len),
                    data: epb.data.into_owned(),
                });
            }
            Block::SimplePacket(spb) => {
                let Some(interface) = interfaces.first() else {
                    break;
                };
                capture.packets.push(CapturedPacket {
                    time: Duration::ZERO,
                    link: interface.link,
                    cut: (spb.data.len() as u64) < u64::from(spb.original_len),
                    data: spb.data.into_owned(),
                });
            }
            _ => {}
        }
    }
    Ok(capture)
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
