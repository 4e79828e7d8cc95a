//! `framewire inspect DIR` on a data directory the server wrote: every record listed, read-only,
//! and a damaged one named with its offset (exit status 1).

use std::process::Command;

use bytes::Bytes;
use framewire_protocol::wire::Text;
use framewire_server::store::{Journal, Log, Record, SessionRecord, StoreConfig};

#[test]
fn a_data_directory_is_listed_record_by_record_and_damage_is_named() {
    let dir = std::env::temp_dir().join(format!("fw-inspect-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut opened = Log::open(StoreConfig::new(&dir)).expect("opens");
    let q = Text::from("jobs");
    for record in [
        Record::Session(SessionRecord::Opened {
            key: 0xab,
            identity: Some(Text::from("dev-1")),
            will: None,
        }),
        Record::Session(SessionRecord::Subscribed {
            key: 0xab,
            filters: vec![Text::from("cmd/1"), Text::from("news/#")],
        }),
        Record::Queued {
            id: 1,
            queue: q.clone(),
            deliveries: 0,
            payload: Bytes::from_static(b"work"),
        },
        Record::Delivered {
            id: 1,
            queue: q.clone(),
            deliveries: 1,
        },
        Record::Removed { id: 1, queue: q },
        Record::Retained {
            channel: 2,
            topic: Text::from("dev/1/online"),
            payload: Bytes::from_static(b"yes"),
        },
    ] {
        opened.log.append(record);
    }
    drop(opened);
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_framewire"))
            .arg("inspect")
            .arg(&dir)
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = run();
    assert_eq!(code, Some(0), "{text}");
    for line in [
        "0000000000000001.fwlog: format version 1",
        "queued     queue jobs id 1, 0 deliveries, 4 B payload",
        "delivered  queue jobs id 1, 1 deliveries so far",
        "removed    queue jobs id 1",
        "retained   topic dev/1/online (channel 2), 3 B payload",
        "session    00000000000000ab opened, identity dev-1",
        "session    00000000000000ab subscribed cmd/1 news/#",
        "1 segments",
        "6 records",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    // A flipped bit in the second record.
    let path = dir.join("0000000000000001.fwlog");
    let mut bytes = std::fs::read(&path).expect("reads");
    let len = bytes.len();
    bytes[len - 40] ^= 0x01;
    std::fs::write(&path, &bytes).expect("writes");
    let (code, text) = run();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("bad record (the CRC does not match)"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(&path).expect("reads"),
        bytes,
        "inspect changed nothing"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
