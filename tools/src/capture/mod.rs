//! Turning captured TCP segments back into framewire frames.
//!
//! [`TcpReassembler`] puts one direction of a TCP connection back in order (retransmissions,
//! out-of-order segments, overlaps, sequence wrap-around), and says where bytes were never
//! captured. [`FrameScanner`] cuts the reassembled bytes into framewire stream frames, and after a
//! gap, or in a connection captured mid-stream, finds the next valid frame by its structure (a
//! length in bounds, the version, a matching CRC, a body that parses).
//!
//! [`read_capture`] and [`PacketReader`] read pcap and pcapng files and [`decode_packet`] finds
//! each packet's TCP or UDP segment, and [`split_run`] opens a UDP packet that holds a run of
//! datagrams sent in one call (segmentation offload); [`Inspector`] puts it all together, connection by
//! connection, and [`inspect_capture`] runs it over a whole file ([`scan_capture`] hands the
//! records on as they are made). Nothing here touches the file system or the network: the caller
//! hands the file's bytes in.

mod coalesced;
mod compact_flow;
mod file;
mod frame_scanner;
mod inspector;
mod packet;
mod sealed;
mod tcp_reassembly;

pub use coalesced::{Run, split_run};
pub use compact_flow::CompactFlow;
pub use file::{Capture, CaptureError, CapturedPacket, PacketReader, read_capture};
pub use frame_scanner::{FrameScanner, ScanEvent};
pub use inspector::{
    Carrier, Connection, Direction, Inspection, Inspector, Record, Seen, Summary, frame_status,
    frame_subject,
};
pub use packet::{NotASegment, Segment, Transport, decode_packet};
pub use pcap_file::DataLink;
pub use sealed::sealed_headers;
pub use tcp_reassembly::{StreamPiece, TcpReassembler};

/// Reads a capture from `reader` packet by packet and inspects it for framewire traffic on
/// `port`, frames up to `max_frame_len`: the inspection, and what stopped the reading early if
/// anything did.
///
/// # Errors
/// The bytes are not a pcap or pcapng file.
pub fn inspect_capture<R: std::io::BufRead>(
    reader: R,
    port: u16,
    max_frame_len: u32,
) -> Result<(Inspection, Option<String>), CaptureError> {
    let mut records = Vec::new();
    let (mut inspection, damaged) = scan_capture(reader, port, max_frame_len, &mut |made, _| {
        records.extend_from_slice(made);
    })?;
    inspection.records = records;
    Ok((inspection, damaged))
}

/// As [`inspect_capture`], but hands each packet's records to `each` as soon as they are made
/// (with the connections they name) instead of keeping them: memory is what reassembly holds,
/// however long the capture. The inspection returned has no records.
///
/// # Errors
/// The bytes are not a pcap or pcapng file.
pub fn scan_capture<R: std::io::BufRead>(
    reader: R,
    port: u16,
    max_frame_len: u32,
    each: &mut dyn FnMut(&[Record], &[Connection]),
) -> Result<(Inspection, Option<String>), CaptureError> {
    let mut packets = PacketReader::new(reader)?;
    let mut inspector = Inspector::new(port, max_frame_len);
    for packet in &mut packets {
        inspector.packet(&packet);
        if !inspector.records().is_empty() {
            each(inspector.records(), inspector.connections());
            inspector.clear_records();
        }
    }
    let mut inspection = inspector.finish();
    each(&inspection.records, &inspection.connections);
    inspection.records.clear();
    Ok((inspection, packets.damaged().map(str::to_string)))
}

/// The fuzz target's check (and the corpus replay's): `data` is read as TCP segments, each
/// `seq (u32) | flags (u8, bit 0 SYN) | length (u8) | payload`, fed through a [`TcpReassembler`]
/// and a [`FrameScanner`].
///
/// # Panics
/// If either panics, holds more than its bound, or reports stream offsets out of order.
pub fn fuzz_check(data: &[u8]) {
    const HELD: usize = 4096;
    let mut reassembler = TcpReassembler::new(HELD);
    let mut scanner = FrameScanner::new(1024, data.first().is_some_and(|b| b & 1 == 1));
    let mut pieces = Vec::new();
    let mut events = Vec::new();
    let mut rest = data.get(1..).unwrap_or_default();
    while let [a, b, c, d, flags, len, tail @ ..] = rest {
        let take = usize::from(*len).min(tail.len());
        let seq = u32::from_be_bytes([*a, *b, *c, *d]);
        reassembler.segment(seq, flags & 1 == 1, &tail[..take], &mut pieces);
        assert!(reassembler.buffered() <= HELD);
        rest = &tail[take..];
    }
    reassembler.finish(&mut pieces);
    let total: u64 = pieces
        .iter()
        .map(|p| match p {
            StreamPiece::Data(d) => d.len() as u64,
            StreamPiece::Gap(n) => *n,
        })
        .sum();
    assert_eq!(total, reassembler.offset());
    for piece in pieces {
        scanner.push(piece, &mut events);
    }
    scanner.finish(&mut events);
    let mut at = 0;
    for event in &events {
        let (offset, len) = match event {
            ScanEvent::Frame {
                offset, wire_len, ..
            } => (*offset, *wire_len as u64),
            ScanEvent::BadFrame { offset, .. } => (*offset, 0),
            ScanEvent::Skipped { offset, len } | ScanEvent::Gap { offset, len } => (*offset, *len),
        };
        assert!(offset >= at, "{event:?} before offset {at}");
        at = offset + len;
    }
    assert!(at <= total);
}

/// The `pcap` fuzz target's check: `data` as a capture file, read and inspected on port 7400, and
/// the replay's script read out of it. A file that is not a capture is an error value.
///
/// # Panics
/// If reading, inspecting or scripting panics, a packet goes uncounted, or the script refers to a
/// session it does not have.
pub fn fuzz_check_file(data: &[u8]) {
    if let Ok(capture) = read_capture(data) {
        let (inspection, _) = inspect_capture(data, 7400, 65_536).expect("read once already");
        assert!(inspection.summary.packets == capture.packets.len() as u64);
        let script = crate::replay::Script::from_inspection(&inspection);
        assert!(
            script
                .steps
                .iter()
                .all(|s| s.session < script.sessions.len())
        );
        assert!(script.skipped_connections <= inspection.connections.len());
    }
}

/// The `datagram_run` fuzz target's check (and its corpus replay's): `data` as one captured UDP
/// payload, split into the run of datagrams it may hold.
///
/// # Panics
/// If splitting panics, or a run it returns is not what [`split_run`] promises: two datagrams or
/// more, all but the last of the segment length, the last no longer, tiling the payload; the same
/// for [`sealed_headers`].
pub fn fuzz_check_run(data: &[u8]) {
    let payload = bytes::Bytes::copy_from_slice(data);
    if let Some(run) = split_run(&payload) {
        assert!(run.datagrams.len() >= 2);
        assert!(run.segment_len > 0 && run.segment_len < payload.len());
        let pieces = payload.len().div_ceil(run.segment_len);
        assert_eq!(pieces, run.datagrams.len());
    }
    // The same payload read as sealed datagrams: their lengths tile it, one session, numbers
    // one apart.
    if let Some(sealed) = sealed_headers(data) {
        assert!(!sealed.is_empty());
        assert_eq!(sealed.iter().map(|s| s.2).sum::<usize>(), data.len());
        for pair in sealed.windows(2) {
            assert_eq!(pair[0].0, pair[1].0);
            assert_eq!(pair[0].1.wrapping_add(1), pair[1].1);
            assert!(pair[1].2 <= pair[0].2);
        }
    }
}
