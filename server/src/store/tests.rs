use std::time::{Duration, Instant};

use bytes::Bytes;
use framewire_protocol::wire::Text;

use super::*;

/// A fresh directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("fw-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }

    fn config(&self) -> StoreConfig {
        StoreConfig::new(&self.0)
    }

    fn segments(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(&self.0)
            .expect("the directory")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == segment::EXTENSION))
            .collect();
        out.sort();
        out
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn queued(id: u64, payload: &str) -> Record {
    Record::Queued {
        id,
        queue: Text::from("jobs"),
        deliveries: 0,
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    }
}

fn removed(id: u64) -> Record {
    Record::Removed {
        id,
        queue: Text::from("jobs"),
    }
}

fn wait_durable(log: &Log, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.durable() < seq {
        assert!(
            Instant::now() < deadline,
            "record {seq} never became durable"
        );
        std::thread::yield_now();
    }
}

fn ids(state: &State) -> Vec<u64> {
    state.queues.values().flatten().map(|m| m.id).collect()
}

#[test]
fn records_survive_a_reopen_and_the_writer_says_when_they_are_durable() {
    let dir = TempDir::new("reopen");
    let mut opened = Log::open(dir.config()).expect("opens");
    assert_eq!(opened.state, State::default());
    let notified = Arc::new(AtomicU64::new(0));
    let n = Arc::clone(&notified);
    opened.log.on_durable(move || {
        n.fetch_add(1, Ordering::SeqCst);
    });
    let mut last = 0;
    for id in 1..=100 {
        last = opened.log.append(queued(id, &format!("m{id}")));
    }
    for id in (1..=100).step_by(2) {
        last = opened.log.append(removed(id));
    }
    last = last.max(opened.log.append(Record::Retained {
        channel: 1,
        topic: Text::from("dev/1"),
        payload: Bytes::from_static(b"online"),
    }));
    wait_durable(&opened.log, last);
    // The writer says so after it has marked the records durable.
    let deadline = Instant::now() + Duration::from_secs(10);
    while notified.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "never notified");
        std::thread::yield_now();
    }
    drop(opened);
    let again = Log::open(dir.config()).expect("reopens");
    assert_eq!(ids(&again.state), (2..=100).step_by(2).collect::<Vec<_>>());
    assert_eq!(again.state.last_id, 100);
    assert_eq!(again.state.retained.len(), 1);
    assert_eq!(again.report.records, 151);
    assert!(again.report.torn.is_none());
}

#[test]
fn a_second_server_on_the_same_directory_is_refused() {
    let dir = TempDir::new("locked");
    let _first = Log::open(dir.config()).expect("opens");
    let err = Log::open(dir.config()).expect_err("locked");
    assert!(matches!(err, OpenError::Locked(_)), "{err}");
    assert!(err.to_string().contains("in use by another server"));
}

/// Writes `n` queued records and closes the log; the one segment's path.
fn written(dir: &TempDir, n: u64) -> PathBuf {
    let mut opened = Log::open(dir.config()).expect("opens");
    for id in 1..=n {
        opened.log.append(queued(id, "payload"));
    }
    drop(opened);
    dir.segments().pop().expect("a segment")
}

#[test]
fn a_torn_tail_is_cut_at_the_last_good_record_reported_and_the_file_mended() {
    let dir = TempDir::new("torn");
    let path = written(&dir, 10);
    let len = std::fs::metadata(&path).expect("meta").len();
    let record = queued(10, "payload").encoded_len() as u64;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("opens");
    file.set_len(len - 5).expect("cut");
    drop(file);
    let opened = Log::open(dir.config()).expect("a torn tail is not fatal");
    assert_eq!(ids(&opened.state), (1..=9).collect::<Vec<_>>());
    let (torn_path, damage) = opened.report.torn.clone().expect("reported");
    assert_eq!(torn_path, path);
    assert_eq!(damage.at as u64, len - record);
    assert_eq!(damage.len as u64, record - 5);
    drop(opened);
    assert_eq!(
        std::fs::metadata(&path).expect("meta").len(),
        len - record,
        "cut back to the last good record"
    );
    // Appending after the cut continues a clean log.
    let mut opened = Log::open(dir.config()).expect("reopens");
    assert!(opened.report.torn.is_none());
    let seq = opened.log.append(queued(11, "after"));
    wait_durable(&opened.log, seq);
    drop(opened);
    let opened = Log::open(dir.config()).expect("reopens");
    assert_eq!(ids(&opened.state).last(), Some(&11));
}

#[test]
fn a_flipped_bit_in_the_middle_stops_the_start_unless_salvaging() {
    let dir = TempDir::new("flip");
    let path = written(&dir, 10);
    let mut bytes = std::fs::read(&path).expect("reads");
    let record = queued(1, "payload").encoded_len();
    let at = segment::HEADER_LEN + 3 * record + record / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&path, &bytes).expect("writes");
    let err = Log::open(dir.config()).expect_err("corruption in the middle");
    let text = err.to_string();
    assert!(
        text.contains(&format!("offset {}", segment::HEADER_LEN + 3 * record))
            && text.contains("--salvage"),
        "{text}"
    );
    let mut config = dir.config();
    config.salvage = true;
    let opened = Log::open(config).expect("salvaged");
    let mut expected: Vec<u64> = (1..=10).collect();
    expected.remove(3);
    assert_eq!(ids(&opened.state), expected);
    assert_eq!(opened.report.salvaged.len(), 1);
}

#[test]
fn a_directory_of_another_format_version_is_refused_by_name() {
    let dir = TempDir::new("version");
    let path = written(&dir, 1);
    let mut bytes = std::fs::read(&path).expect("reads");
    bytes[..segment::HEADER_LEN].copy_from_slice(
        &segment::Header {
            version: 2,
            snapshot: false,
        }
        .encode(),
    );
    std::fs::write(&path, &bytes).expect("writes");
    let err = Log::open(dir.config()).expect_err("another version");
    assert!(err.to_string().contains("data format version 2"), "{err}");
}

#[test]
fn segments_roll_and_a_snapshot_replaces_them_keeping_the_live_state() {
    let dir = TempDir::new("compact");
    let mut config = dir.config();
    config.segment_bytes = 4096;
    config.compact_above_bytes = 8192;
    let mut opened = Log::open(config.clone()).expect("opens");
    let mut last = 0;
    for id in 1..=400 {
        last = opened.log.append(queued(id, "a message of some length"));
    }
    for id in 1..=390 {
        last = opened.log.append(removed(id));
    }
    wait_durable(&opened.log, last);
    assert!(dir.segments().len() > 3, "{:?}", dir.segments());
    let live: u64 = (391..=400)
        .map(|id| queued(id, "a message of some length").encoded_len() as u64)
        .sum();
    assert!(opened.log.wants_snapshot(live));
    let state = State {
        queues: [(
            Text::from("jobs"),
            (391..=400)
                .map(|id| StoredMessage {
                    id,
                    deliveries: 0,
                    payload: Bytes::from_static(b"a message of some length"),
                })
                .collect(),
        )]
        .into(),
        last_id: 400,
        ..State::default()
    };
    opened.log.snapshot(state.to_records());
    let after = opened.log.append(queued(401, "after the snapshot"));
    wait_durable(&opened.log, after);
    assert_eq!(dir.segments().len(), 1, "{:?}", dir.segments());
    assert!(opened.log.log_bytes() < 2048, "{}", opened.log.log_bytes());
    assert!(!opened.log.wants_snapshot(live));
    drop(opened);
    let again = Log::open(config).expect("reopens");
    assert_eq!(ids(&again.state), (391..=401).collect::<Vec<_>>());
    assert_eq!(again.state.last_id, 401);
}

#[test]
fn a_snapshot_cut_short_leaves_the_old_segments_and_is_removed() {
    let dir = TempDir::new("cut-snapshot");
    written(&dir, 3);
    std::fs::write(segment::path(&dir.0, 2).with_extension("tmp"), b"half").expect("writes");
    let opened = Log::open(dir.config()).expect("opens");
    assert_eq!(ids(&opened.state), vec![1, 2, 3]);
    drop(opened);
    assert!(!segment::path(&dir.0, 2).with_extension("tmp").exists());
}

#[test]
fn the_fsync_policies_parse_and_print_back() {
    for s in ["always", "never", "interval:250"] {
        let p: FsyncPolicy = s.parse().expect("parses");
        assert_eq!(p.to_string(), s);
    }
    for bad in ["sometimes", "interval:", "interval:0", "interval:x"] {
        assert!(bad.parse::<FsyncPolicy>().is_err(), "{bad}");
    }
}
