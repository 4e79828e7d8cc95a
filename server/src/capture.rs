//! `--capture FILE.pcapng`: what the server receives and sends, written as a pcapng file that
//! Wireshark, tshark and `framewire inspect` read, without root and without a packet socket.
//!
//! Each TCP read and write and each UDP datagram becomes one packet of link type RAW (IPv4 or
//! IPv6) with synthetic IP and TCP/UDP headers: a TCP connection opens with a SYN pair and ends
//! with FINs, and its sequence numbers count the bytes really carried, so the stream reassembles.
//! The file is bounded: past `max_bytes` it is renamed `FILE.1` (the older `FILE.1` to `FILE.2`,
//! and so on up to `files - 1`; the oldest is dropped) and a new `FILE` begins.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etherparse::{IpHeaders, PacketBuilder, PacketBuilderStep};
use log::warn;

/// pcapng block types and the link type written.
const SECTION_HEADER: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION: u32 = 1;
const ENHANCED_PACKET: u32 = 6;
const LINKTYPE_RAW: u16 = 101;
/// The most TCP payload put into one synthetic packet (an IPv4 packet holds at most 65,535).
const MAX_SEGMENT: usize = 65_000;

/// Which way bytes went, seen from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Way {
    In,
    Out,
}

/// A TCP connection's server address and next sequence numbers, the client's and the server's.
#[derive(Debug, Clone, Copy)]
struct TcpSeq {
    server: SocketAddr,
    client: u32,
    server_seq: u32,
}

/// The capture file being written.
#[derive(Debug)]
pub(crate) struct PacketCapture {
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
    max_bytes: u64,
    files: u32,
    /// Open TCP connections by client address.
    tcp: HashMap<SocketAddr, TcpSeq>,
    scratch: Vec<u8>,
    /// Set by the first write that fails (a full disk, say): the capture stops, logged once,
    /// rather than warn for every packet.
    failed: bool,
}

impl PacketCapture {
    /// Creates (or truncates) `path` and writes the file's header.
    pub(crate) fn create(path: PathBuf, max_bytes: u64, files: u32) -> io::Result<Self> {
        let out = BufWriter::new(File::create(&path)?);
        let mut capture = Self {
            path,
            out,
            written: 0,
            max_bytes: max_bytes.max(4096),
            files: files.max(1),
            tcp: HashMap::new(),
            scratch: Vec::with_capacity(2048),
            failed: false,
        };
        capture.header()?;
        Ok(capture)
    }

    fn header(&mut self) -> io::Result<()> {
        // Section header: byte-order magic, version 1.0, section length unknown.
        let mut shb = Vec::with_capacity(16);
        shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&u64::MAX.to_le_bytes());
        self.block(SECTION_HEADER, &[&shb])?;
        // Interface: RAW, no snap length, nanosecond timestamps (if_tsresol = 9).
        let mut idb = Vec::with_capacity(20);
        idb.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        idb.extend_from_slice(&9u16.to_le_bytes());
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&[9, 0, 0, 0]);
        idb.extend_from_slice(&[0, 0, 0, 0]);
        self.block(INTERFACE_DESCRIPTION, &[&idb])
    }

    /// Writes one block whose body is `parts`, one after another.
    fn block(&mut self, kind: u32, parts: &[&[u8]]) -> io::Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let padded = len.next_multiple_of(4);
        let total = (12 + padded) as u32;
        self.out.write_all(&kind.to_le_bytes())?;
        self.out.write_all(&total.to_le_bytes())?;
        for part in parts {
            self.out.write_all(part)?;
        }
        self.out.write_all(&[0; 3][..padded - len])?;
        self.out.write_all(&total.to_le_bytes())?;
        self.written += u64::from(total);
        Ok(())
    }

    /// A TCP connection accepted: the SYN and SYN-ACK that opened it.
    pub(crate) fn tcp_open(&mut self, client: SocketAddr, server: SocketAddr) {
        let seq = TcpSeq {
            server,
            client: 1_000,
            server_seq: 5_000,
        };
        self.tcp.insert(client, seq);
        self.tcp_packet(client, server, Way::In, seq.client - 1, true, false, &[]);
        self.tcp_packet(
            client,
            server,
            Way::Out,
            seq.server_seq - 1,
            true,
            false,
            &[],
        );
    }

    /// Bytes read from (`In`) or written to (`Out`) the TCP connection of `client`.
    pub(crate) fn tcp_data(&mut self, client: SocketAddr, way: Way, data: &[u8]) {
        let Some(mut seq) = self.tcp.get(&client).copied() else {
            return;
        };
        for chunk in data.chunks(MAX_SEGMENT) {
            let n = match way {
                Way::In => &mut seq.client,
                Way::Out => &mut seq.server_seq,
            };
            let at = *n;
            *n = n.wrapping_add(chunk.len() as u32);
            self.tcp_packet(client, seq.server, way, at, false, false, chunk);
        }
        self.tcp.insert(client, seq);
    }

    /// The TCP connection of `client` closed: a FIN each way.
    pub(crate) fn tcp_close(&mut self, client: SocketAddr) {
        if let Some(seq) = self.tcp.remove(&client) {
            self.tcp_packet(client, seq.server, Way::In, seq.client, false, true, &[]);
            self.tcp_packet(
                client,
                seq.server,
                Way::Out,
                seq.server_seq,
                false,
                true,
                &[],
            );
        }
    }

    /// A UDP datagram received (`In`) or sent (`Out`).
    pub(crate) fn udp(&mut self, peer: SocketAddr, server: SocketAddr, way: Way, data: &[u8]) {
        let (src, dst) = match way {
            Way::In => (peer, server),
            Way::Out => (server, peer),
        };
        let Some(builder) = ip_builder(src.ip(), dst.ip()) else {
            return;
        };
        self.scratch.clear();
        let built = builder
            .udp(src.port(), dst.port())
            .write(&mut self.scratch, data);
        if built.is_ok() {
            self.packet();
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp_packet(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        way: Way,
        seq: u32,
        syn: bool,
        fin: bool,
        payload: &[u8],
    ) {
        let (src, dst) = match way {
            Way::In => (client, server),
            Way::Out => (server, client),
        };
        let Some(builder) = ip_builder(src.ip(), dst.ip()) else {
            return;
        };
        let mut tcp = builder.tcp(src.port(), dst.port(), seq, 65_535);
        if syn {
            tcp = tcp.syn();
        }
        if fin {
            tcp = tcp.fin();
        }
        if !payload.is_empty() {
            tcp = tcp.psh();
        }
        self.scratch.clear();
        if tcp.write(&mut self.scratch, payload).is_ok() {
            self.packet();
        }
    }

    /// Writes `scratch` as an enhanced packet block, then rotates if the file is full.
    fn packet(&mut self) {
        if self.failed {
            return;
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos() as u64;
        let len = self.scratch.len() as u32;
        // Interface 0, the time, captured and original lengths: no copy of the packet itself.
        let mut head = [0u8; 20];
        head[4..8].copy_from_slice(&((nanos >> 32) as u32).to_le_bytes());
        head[8..12].copy_from_slice(&(nanos as u32).to_le_bytes());
        head[12..16].copy_from_slice(&len.to_le_bytes());
        head[16..20].copy_from_slice(&len.to_le_bytes());
        let packet = std::mem::take(&mut self.scratch);
        let result = self
            .block(ENHANCED_PACKET, &[&head, &packet])
            .and_then(|()| self.rotate_if_full());
        self.scratch = packet;
        if let Err(e) = result {
            self.fail(&e);
        }
    }

    fn fail(&mut self, e: &io::Error) {
        warn!("capture {}: {e}; capturing stops", self.path.display());
        self.failed = true;
    }

    fn rotate_if_full(&mut self) -> io::Result<()> {
        if self.written < self.max_bytes {
            return Ok(());
        }
        self.out.flush()?;
        if self.files > 1 {
            for i in (1..self.files - 1).rev() {
                let from = numbered(&self.path, i);
                if from.exists() {
                    std::fs::rename(&from, numbered(&self.path, i + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(&self.path, 1))?;
        }
        self.out = BufWriter::new(File::create(&self.path)?);
        self.written = 0;
        self.header()
    }

    /// Writes out what is buffered.
    pub(crate) fn flush(&mut self) {
        if !self.failed
            && let Err(e) = self.out.flush()
        {
            self.fail(&e);
        }
    }
}

impl Drop for PacketCapture {
    fn drop(&mut self) {
        self.flush();
    }
}

fn numbered(path: &std::path::Path, i: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{i}"));
    PathBuf::from(name)
}

fn ip_builder(src: IpAddr, dst: IpAddr) -> Option<PacketBuilderStep<IpHeaders>> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(PacketBuilder::ipv4(s.octets(), d.octets(), 64)),
        (IpAddr::V6(s), IpAddr::V6(d)) => Some(PacketBuilder::ipv6(s.octets(), d.octets(), 64)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device that refuses every write (as a full disk does): the capture stops once, quietly,
    /// and the server goes on.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_failing_file_stops_the_capture_once() {
        let mut capture = PacketCapture::create("/dev/full".into(), 1 << 20, 1).unwrap();
        let client: SocketAddr = "127.0.0.2:5000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:7400".parse().unwrap();
        capture.tcp_open(client, server);
        capture.tcp_data(client, Way::In, &vec![0; 100_000]);
        assert!(
            capture.failed,
            "100 kB through an 8 KiB buffer reaches the device"
        );
        capture.tcp_data(client, Way::Out, b"more");
        capture.udp(client, server, Way::In, b"datagram");
        capture.flush();
        capture.tcp_close(client);
    }

    #[test]
    fn sequence_numbers_count_the_bytes_each_way() {
        let dir = std::env::temp_dir().join(format!("fw-capture-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut capture = PacketCapture::create(dir.join("c.pcapng"), 1 << 20, 1).unwrap();
        let client: SocketAddr = "[::1]:5000".parse().unwrap();
        let server: SocketAddr = "[::1]:7400".parse().unwrap();
        capture.tcp_open(client, server);
        capture.tcp_data(client, Way::In, &vec![1; 70_000]);
        capture.tcp_data(client, Way::Out, &[2; 10]);
        let seq = capture.tcp[&client];
        assert_eq!(seq.client, 1_000 + 70_000);
        assert_eq!(seq.server_seq, 5_000 + 10);
        capture.tcp_close(client);
        assert!(capture.tcp.is_empty());
        // A client and a server of different families are not written, and nothing breaks.
        capture.udp("127.0.0.1:1".parse().unwrap(), server, Way::In, b"x");
        capture.flush();
        assert!(!capture.failed);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
