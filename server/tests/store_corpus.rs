//! Replays the committed corpus of the `store` fuzz target (`protocol/fuzz/corpus/store`)
//! through the same check, so every seed and past crash input is a regression test on stable.

use std::path::Path;

#[test]
fn store_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/fuzz/corpus/store");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| framewire_server::store::scan::fuzz_check(&data));
        assert!(outcome.is_ok(), "corpus input {} panics", path.display());
        count += 1;
    }
    assert!(count >= 3, "only {count} inputs");
}

/// A segment holding one of each session record (docs/PROTOCOL.md section 10.3), as the
/// writer lays it out.
fn session_segment() -> Vec<u8> {
    use bytes::{Bytes, BytesMut};
    use framewire_protocol::wire::{LastWill, Text};
    use framewire_server::store::segment::{FORMAT_VERSION, Header};
    use framewire_server::store::{KeptMessage, Record, SessionRecord};
    let key = 0x1122_3344_5566_7788;
    let records = [
        SessionRecord::Opened {
            key,
            identity: Some(Text::from("dev-7")),
            will: Some(LastWill {
                retain: true,
                channel: 0,
                topic: Text::from("dev/7/online"),
                payload: Bytes::from_static(b"offline"),
            }),
        },
        SessionRecord::Subscribed {
            key,
            filters: vec![Text::from("cmd/7"), Text::from("news/#")],
        },
        SessionRecord::Unsubscribed {
            key,
            filters: vec![Text::from("news/#")],
        },
        SessionRecord::Parked {
            key,
            at_ms: 1_796_000_000_000,
        },
        SessionRecord::Kept {
            key,
            message: KeptMessage {
                channel: 1,
                topic: Text::from("cmd/7"),
                payload: Bytes::from_static(b"reboot"),
            },
        },
        SessionRecord::Ended { key },
    ];
    let mut out = BytesMut::new();
    out.extend_from_slice(
        &Header {
            version: FORMAT_VERSION,
            snapshot: false,
        }
        .encode(),
    );
    for r in records {
        Record::Session(r).encode_into(&mut out).expect("encodes");
    }
    out.to_vec()
}

#[test]
fn the_session_seed_is_the_current_encoding_and_reads_clean() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/fuzz/corpus/store/seed-sessions");
    let bytes = session_segment();
    assert_eq!(
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        bytes,
        "the committed seed is the records' current encoding"
    );
    let mut records = Vec::new();
    let mut at = framewire_server::store::segment::HEADER_LEN;
    while let Ok((record, next)) = framewire_server::store::scan::record_at(
        &bytes,
        at,
        framewire_protocol::wire::MAX_FRAME_LEN_CEILING,
    ) {
        records.push(record);
        at = next;
    }
    assert_eq!((records.len(), at), (6, bytes.len()), "{records:?}");
}
