//! Replays the committed fuzz corpora of the capture reader (`protocol/fuzz/corpus/capture` and
//! `pcap`, and the datagram splitter's `datagram_run`, where the fuzz targets live) through the target's check, so its inputs are regression tests on
//! stable; the seeds (`seed-*`, built from the spec's test vectors) must also yield frames.

use std::path::Path;

use framewire_tools::capture::{
    FrameScanner, ScanEvent, TcpReassembler, fuzz_check, fuzz_check_file, fuzz_check_run,
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

#[test]
fn datagram_run_corpus_replays_clean() {
    replay("datagram_run", fuzz_check_run);
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

/// The run seeds are UDP payloads of real tcpdump captures (tools/tests/fixtures/offload.pcap):
/// each splits into its datagrams; the single datagram and the garbage do not.
#[test]
fn the_run_seeds_split_and_the_others_do_not() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/fuzz/corpus/datagram_run");
    for (name, splits) in [
        ("seed-run-0", true),
        ("seed-run-1", true),
        ("seed-run-2", true),
        ("seed-one-datagram", false),
        ("seed-garbage", false),
    ] {
        let data = bytes::Bytes::from(std::fs::read(dir.join(name)).unwrap());
        assert_eq!(
            framewire_tools::capture::split_run(&data).is_some(),
            splits,
            "{name}"
        );
    }
}
