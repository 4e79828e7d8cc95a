//! Queues and retained messages kept in a log (docs/PROTOCOL.md section 10), with a journal in
//! memory whose durability the test moves by hand.

use std::sync::Mutex;

use super::*;
use crate::store::{Journal, Record, State, StoredMessage, StoredRetained, state::Replay};

#[derive(Debug, Default)]
pub(super) struct Disk {
    pub(super) records: Vec<Record>,
    durable: u64,
    failed: bool,
    bytes: u64,
    max: u64,
    wants: bool,
    snapshots: Vec<Vec<Record>>,
    live_seen: u64,
}

#[derive(Debug, Clone, Default)]
pub(super) struct MemoryJournal(Arc<Mutex<Disk>>);

impl MemoryJournal {
    pub(super) fn disk(&self) -> std::sync::MutexGuard<'_, Disk> {
        self.0.lock().unwrap()
    }

    pub(super) fn sync_all(&self) {
        let mut d = self.disk();
        d.durable = d.records.len() as u64;
    }
}

impl Journal for MemoryJournal {
    fn append(&mut self, record: Record) -> u64 {
        let mut d = self.disk();
        d.bytes += record.encoded_len() as u64;
        d.records.push(record);
        d.records.len() as u64
    }
    fn durable(&self) -> u64 {
        self.disk().durable
    }
    fn failed(&self) -> bool {
        self.disk().failed
    }
    fn log_bytes(&self) -> u64 {
        self.disk().bytes
    }
    fn max_bytes(&self) -> u64 {
        let max = self.disk().max;
        if max == 0 { u64::MAX } else { max }
    }
    fn wants_snapshot(&self, live_bytes: u64) -> bool {
        let mut d = self.disk();
        d.live_seen = live_bytes;
        d.wants
    }
    fn snapshot(&mut self, records: Vec<Record>) {
        let mut d = self.disk();
        d.wants = false;
        d.snapshots.push(records);
    }
}

fn durable_hub(state: &State) -> (Hub, MemoryJournal) {
    let mut h = hub();
    let journal = MemoryJournal::default();
    h.keep_in(t(0), Box::new(journal.clone()), state, TokenKey([9; 16]));
    (h, journal)
}

#[test]
fn a_push_and_an_ack_are_confirmed_only_once_their_records_are_durable() {
    let (mut h, journal) = durable_hub(&State::default());
    push(&mut h, t(0), A, 1, b"job");
    assert_eq!(status_of(&drain(&mut h), A, 1), None, "held for the disk");
    assert_eq!(journal.disk().records.len(), 1);
    // The message is served meanwhile: what is not yet durable is not yet confirmed, that is all.
    fetch(&mut h, t(1), B, 2, 10, 0);
    let out = drain(&mut h);
    let got = deliveries(&out, B);
    assert_eq!(got.len(), 1);
    journal.sync_all();
    assert_eq!(status_of(&drain(&mut h), A, 1), Some(Status::OK));
    ack(&mut h, B, 3, got[0].1);
    assert_eq!(status_of(&drain(&mut h), B, 3), None);
    journal.sync_all();
    assert_eq!(status_of(&drain(&mut h), B, 3), Some(Status::OK));
    let records = journal.disk().records.clone();
    let q = Text::from("jobs");
    assert_eq!(
        records,
        vec![
            Record::Queued {
                id: 1,
                queue: q.clone(),
                deliveries: 0,
                payload: Bytes::from_static(b"job"),
            },
            Record::Delivered {
                id: 1,
                queue: q.clone(),
                deliveries: 1,
            },
            Record::Removed { id: 1, queue: q },
        ]
    );
}

#[test]
fn a_retained_publish_is_confirmed_once_durable_and_reaches_subscribers_at_once() {
    let (mut h, journal) = durable_hub(&State::default());
    subscribe(&mut h, B, 1, "dev/#");
    drain(&mut h);
    publish(&mut h, A, 2, "dev/1/online", b"yes", true);
    let out = drain(&mut h);
    assert_eq!(messages_to(&out, B).len(), 1);
    assert_eq!(status_of(&out, A, 2), None);
    // A publish that retains nothing is not recorded and is confirmed at once.
    publish(&mut h, A, 3, "dev/1/temp", b"20", false);
    assert_eq!(status_of(&drain(&mut h), A, 3), Some(Status::OK));
    journal.sync_all();
    assert_eq!(status_of(&drain(&mut h), A, 2), Some(Status::OK));
    // B's subscription (its session, then the filter), then the retained message.
    let records = journal.disk().records.clone();
    assert_eq!(records.len(), 3, "{records:?}");
    assert!(matches!(records[2], Record::Retained { .. }));
}

#[test]
fn a_restored_hub_serves_what_the_directory_held_and_numbers_after_it() {
    let state = State {
        queues: [(
            Text::from("jobs"),
            vec![
                StoredMessage {
                    id: 4,
                    deliveries: 0,
                    payload: Bytes::from_static(b"four"),
                },
                StoredMessage {
                    id: 9,
                    deliveries: 2,
                    payload: Bytes::from_static(b"nine"),
                },
            ],
        )]
        .into(),
        retained: [(
            Text::from("dev/1/online"),
            StoredRetained {
                channel: 2,
                payload: Bytes::from_static(b"yes"),
            },
        )]
        .into(),
        last_id: 12,
        ..State::default()
    };
    let (mut h, _journal) = durable_hub(&state);
    fetch(&mut h, t(0), A, 1, 10, 0);
    let got = deliveries(&drain(&mut h), A);
    assert_eq!(
        got,
        vec![
            (1, 4, Bytes::from_static(b"four"), false),
            (1, 9, Bytes::from_static(b"nine"), true),
        ]
    );
    push(&mut h, t(1), A, 2, b"new");
    fetch(&mut h, t(1), B, 3, 10, 0);
    assert_eq!(
        deliveries(&drain(&mut h), B)[0].1,
        13,
        "numbered after the largest id used"
    );
    subscribe(&mut h, C, 4, "dev/#");
    let retained = messages_to(&drain(&mut h), C);
    assert_eq!(retained.len(), 1);
    assert_eq!((retained[0].2, retained[0].3), (true, 2));
}

#[test]
fn a_full_log_refuses_durable_operations_and_a_failed_one_fails_what_it_held() {
    let (mut h, journal) = durable_hub(&State::default());
    journal.disk().max = 60;
    push(&mut h, t(0), A, 1, &[7; 40]);
    assert_eq!(status_of(&drain(&mut h), A, 1), Some(Status::STORAGE_FULL));
    assert!(journal.disk().records.is_empty());
    fetch(&mut h, t(0), B, 2, 10, 0);
    assert!(
        deliveries(&drain(&mut h), B).is_empty(),
        "nothing was queued"
    );
    journal.disk().max = 0;
    push(&mut h, t(0), A, 3, b"kept?");
    drain(&mut h);
    journal.disk().failed = true;
    let out = drain(&mut h);
    assert_eq!(status_of(&out, A, 3), Some(Status::STORAGE_FULL));
    push(&mut h, t(0), A, 4, b"after");
    assert_eq!(status_of(&drain(&mut h), A, 4), Some(Status::STORAGE_FULL));
}

#[test]
fn when_the_log_asks_the_hub_hands_it_a_snapshot_of_every_message_ready_or_delivered() {
    let (mut h, journal) = durable_hub(&State::default());
    for (id, p) in [(1, &b"a"[..]), (2, b"b"), (3, b"c")] {
        push(&mut h, t(0), A, id, p);
    }
    fetch(&mut h, t(0), B, 4, 1, 0);
    let first = deliveries(&drain(&mut h), B)[0].1;
    ack(&mut h, B, 5, first);
    fetch(&mut h, t(0), B, 6, 1, 0);
    publish(&mut h, A, 7, "t", b"on", true);
    drain(&mut h);
    journal.disk().wants = true;
    publish(&mut h, A, 8, "u", b"", false);
    let disk = journal.disk();
    assert_eq!(disk.snapshots.len(), 1);
    let mut replay = Replay::default();
    for r in disk.snapshots[0].clone() {
        replay.apply(r);
    }
    let state = replay.finish();
    let ids: Vec<(u64, u32)> = state.queues[&Text::from("jobs")]
        .iter()
        .map(|m| (m.id, m.deliveries))
        .collect();
    assert_eq!(
        ids,
        vec![(2, 1), (3, 0)],
        "the delivered one with its count"
    );
    assert_eq!(state.retained.len(), 1);
    assert_eq!(state.last_id, 3);
    let live: u64 = disk.snapshots[0]
        .iter()
        .filter(|r| !matches!(r, Record::Removed { .. }))
        .map(|r| r.encoded_len() as u64)
        .sum();
    assert_eq!(
        disk.live_seen, live,
        "the hub's count of live bytes is exact"
    );
}

#[test]
fn a_move_to_the_dead_letter_queue_is_recorded_and_replays_there() {
    let mut h = hub_with(HubConfig {
        max_deliveries: 1,
        ..HubConfig::default()
    });
    let journal = MemoryJournal::default();
    h.keep_in(
        t(0),
        Box::new(journal.clone()),
        &State::default(),
        TokenKey([9; 16]),
    );
    push(&mut h, t(0), A, 0, b"poison");
    fetch(&mut h, t(0), B, 1, 1, 0);
    drain(&mut h);
    h.session_ended(t(10), B, false);
    let mut replay = Replay::default();
    for r in journal.disk().records.clone() {
        replay.apply(r);
    }
    let state = replay.finish();
    assert!(!state.queues.contains_key(&Text::from("jobs")));
    let dead = &state.queues[&Text::from("jobs.dead")];
    assert_eq!((dead[0].id, dead[0].deliveries), (1, 1));
}
