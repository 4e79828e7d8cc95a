//! Replays the committed fuzz corpora of the capture reader (`protocol/fuzz/corpus/capture` and
//! `pcap`, where the fuzz targets live) through the target's check, so its inputs are regression tests on
//! stable; the seeds (`seed-*`, built from the spec's test vectors) must also yield frames.

use std::path::Path;

use framewire_tools::capture::{
    FrameScanner, ScanEvent, TcpReassembler, fuzz_check, fuzz_check_file,
};

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../protocol/fuzz/corpus")
        .join(target);
    framewire_protocol::harness::replay_corpus(&dir, check);
}

#[test]
fn capture_corpus_replays_clean() {
    replay("capture", fuzz_check);
}

#[test]
fn pcap_corpus_replays_clean() {
    replay("pcap", fuzz_check_file);
}

/// The seeds hold every stream vector of docs/PROTOCOL.md; each seed, whether in order, shuffled
/// across sequence wrap-around, or entered mid-stream, gives back frames.
#[test]
fn the_seeds_decode_to_frames() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/fuzz/corpus/capture");
    for name in ["seed-in-order", "seed-shuffled-wrapping", "seed-mid-stream"] {
        let data = std::fs::read(dir.join(name)).unwrap();
        let mut reassembler = TcpReassembler::new(1 << 20);
        let mut scanner = FrameScanner::new(65_536, data[0] & 1 == 1);
        let (mut pieces, mut events) = (Vec::new(), Vec::new());
        let mut rest = &data[1..];
        while let [a, b, c, d, flags, len, tail @ ..] = rest {
            let n = usize::from(*len);
            let seq = u32::from_be_bytes([*a, *b, *c, *d]);
            reassembler.segment(seq, flags & 1 == 1, &tail[..n], &mut pieces);
            rest = &tail[n..];
        }
        reassembler.finish(&mut pieces);
        for p in pieces {
            scanner.push(p, &mut events);
        }
        scanner.finish(&mut events);
        let frames = events
            .iter()
            .filter(|e| matches!(e, ScanEvent::Frame { .. }))
            .count();
        let bad = events
            .iter()
            .filter(|e| matches!(e, ScanEvent::BadFrame { .. }))
            .count();
        assert!(frames >= 20, "{name}: {frames} frames");
        assert_eq!(bad, 0, "{name}: {events:?}");
    }
}
