use bytes::{Bytes, BytesMut};
use framewire_protocol::wire::{MAX_FRAME_LEN_CEILING, Text};
use proptest::prelude::*;

use super::*;

const MAX: u32 = MAX_FRAME_LEN_CEILING;

fn queued(id: u64, payload: &[u8]) -> Record {
    Record::Queued {
        id,
        queue: Text::from("jobs"),
        deliveries: 0,
        payload: Bytes::copy_from_slice(payload),
    }
}

/// The records' bytes, and where each record ends.
fn encode(records: &[Record]) -> (Vec<u8>, Vec<usize>) {
    let mut out = BytesMut::new();
    let mut ends = Vec::new();
    for r in records {
        r.encode_into(&mut out).expect("a record that fits");
        ends.push(out.len());
    }
    (out.to_vec(), ends)
}

fn sample() -> Vec<Record> {
    vec![
        queued(1, b"first"),
        Record::Delivered {
            id: 1,
            queue: Text::from("jobs"),
            deliveries: 1,
        },
        queued(2, &[0xAB; 300]),
        Record::Removed {
            id: 1,
            queue: Text::from("jobs"),
        },
        Record::Retained {
            channel: 1,
            topic: Text::from("dev/7/online"),
            payload: Bytes::from_static(b"1"),
        },
        queued(3, b"last"),
    ]
}

/// What the scan reads back, with a Delivered read as the Queued it is encoded as.
fn as_read(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .map(|r| Record::from_frame(r.to_frame()).expect("a record"))
        .collect()
}

#[test]
fn a_clean_segment_reads_back_whole() {
    let records = sample();
    let (bytes, _) = encode(&records);
    let scan = scan(&bytes, MAX, false).expect("clean");
    assert_eq!(scan.records, as_read(&records));
    assert_eq!(scan.end, bytes.len());
    assert_eq!(scan.tail, None);
    assert!(scan.salvaged.is_empty());
}

#[test]
fn a_write_cut_anywhere_in_the_last_record_is_a_torn_tail_cut_at_the_last_good_record() {
    let records = sample();
    let (bytes, ends) = encode(&records);
    let last_start = ends[ends.len() - 2];
    for cut in last_start + 1..bytes.len() {
        let scan = scan(&bytes[..cut], MAX, false).expect("a torn tail is not corruption");
        assert_eq!(
            scan.records,
            as_read(&records[..records.len() - 1]),
            "cut {cut}"
        );
        assert_eq!(scan.end, last_start);
        let tail = scan.tail.expect("a tail");
        assert_eq!((tail.at, tail.len), (last_start, cut - last_start));
    }
}

#[test]
fn a_zero_filled_tail_is_torn_and_a_flipped_last_record_too() {
    let records = sample();
    let (mut bytes, ends) = encode(&records);
    let good = bytes.len();
    bytes.extend_from_slice(&[0u8; 4096]);
    let s = scan(&bytes, MAX, false).expect("torn");
    assert_eq!(s.end, good);
    assert_eq!(s.tail.map(|t| t.fault), Some(Fault::Length(0)));
    let (mut bytes, _) = encode(&records);
    let at = bytes.len() - 3;
    bytes[at] ^= 0x10;
    let s = scan(&bytes, MAX, false).expect("torn");
    assert_eq!(s.end, ends[ends.len() - 2]);
    assert_eq!(s.tail.map(|t| t.fault), Some(Fault::Checksum));
}

#[test]
fn a_flip_in_the_middle_stops_the_scan_unless_salvaging_which_drops_that_record_alone() {
    let records = sample();
    let (mut bytes, ends) = encode(&records);
    // A bit in the payload of the third record.
    bytes[ends[1] + 20] ^= 0x01;
    let err = scan(&bytes, MAX, false).expect_err("corruption in the middle");
    assert_eq!(err.damage.at, ends[1]);
    assert_eq!(err.damage.len, ends[2] - ends[1]);
    assert_eq!(err.damage.fault, Fault::Checksum);
    assert_eq!(err.good_records, 2);
    let s = scan(&bytes, MAX, true).expect("salvaged");
    let mut expected = as_read(&records);
    expected.remove(2);
    assert_eq!(s.records, expected);
    assert_eq!(s.salvaged.len(), 1);
    assert_eq!(s.end, bytes.len());
}

#[test]
fn a_flipped_length_that_runs_past_the_end_is_still_found_to_be_in_the_middle() {
    let records = sample();
    let (mut bytes, ends) = encode(&records);
    bytes[ends[0]] = 0x7F;
    let err = scan(&bytes, MAX, false).expect_err("corruption in the middle");
    assert_eq!(err.damage.at, ends[0]);
    assert!(matches!(err.damage.fault, Fault::Length(n) if n > 0x7F00_0000));
    assert_eq!(err.damage.len, ends[1] - ends[0]);
}

#[test]
fn a_valid_frame_that_is_not_a_record_is_named_by_its_kind() {
    let mut out = BytesMut::new();
    framewire_protocol::wire::encode_stream_frame_into(
        &framewire_protocol::wire::Frame::new(framewire_protocol::wire::Ping { timestamp_us: 3 }),
        &mut out,
    )
    .expect("encodes");
    let s = scan(&out, MAX, false).expect("alone at the end: a tail");
    assert_eq!(
        s.tail.map(|t| t.fault),
        Some(Fault::NotARecord(
            framewire_protocol::wire::FrameKind::Ping as u8
        ))
    );
}

fn arb_record() -> impl Strategy<Value = Record> {
    prop_oneof![
        (
            1u64..1000,
            0u32..5,
            proptest::collection::vec(any::<u8>(), 0..200)
        )
            .prop_map(|(id, deliveries, payload)| Record::Queued {
                id,
                queue: Text::from("q"),
                deliveries,
                payload: Bytes::from(payload),
            }),
        (1u64..1000).prop_map(|id| Record::Removed {
            id,
            queue: Text::from("q"),
        }),
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..50)).prop_map(|(channel, p)| {
            Record::Retained {
                channel,
                topic: Text::from("t/x"),
                payload: Bytes::from(p),
            }
        }),
    ]
}

proptest! {
    #[test]
    fn any_bytes_scan_to_an_answer_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..2000), salvage: bool) {
        match scan(&bytes, 4096, salvage) {
            Ok(s) => prop_assert!(s.end <= bytes.len()),
            Err(c) => prop_assert!(c.damage.at + c.damage.len <= bytes.len()),
        }
    }

    #[test]
    fn a_cut_keeps_exactly_the_records_wholly_before_it(records in proptest::collection::vec(arb_record(), 1..12), cut_at in any::<prop::sample::Index>()) {
        let (bytes, ends) = encode(&records);
        let cut = cut_at.index(bytes.len());
        let s = scan(&bytes[..cut], MAX, false).expect("a cut is a torn tail");
        let whole = ends.iter().filter(|&&e| e <= cut).count();
        prop_assert_eq!(s.records, as_read(&records[..whole]));
        prop_assert_eq!(s.end, if whole == 0 { 0 } else { ends[whole - 1] });
    }

    #[test]
    fn a_flipped_bit_never_yields_a_record_that_was_not_written(records in proptest::collection::vec(arb_record(), 1..12), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (mut bytes, _) = encode(&records);
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let written = as_read(&records);
        if let Ok(s) = scan(&bytes, MAX, true) {
            for r in &s.records {
                prop_assert!(written.contains(r), "{:?} was never written", r);
            }
            prop_assert!(s.records.len() < records.len() || written == s.records);
        }
    }
}
