//! Sessions kept in a log (docs/PROTOCOL.md section 10.3): a client resumes its session, with the
//! messages kept for it, after the server restarted; a will the last run left is published.

use super::durable::MemoryJournal;
use super::sessions::{publish_on, resume_hello, token_of};
use super::*;
use crate::store::{Record, SessionRecord, State, state::Replay};
use framewire_protocol::session::Admission;

const KEY: TokenKey = TokenKey([9; 16]);

fn durable(config: HubConfig, state: &State, seed: u8) -> (Hub, MemoryJournal) {
    let info = ServerInfo {
        session_seed: [seed; 16],
        ..ServerInfo::default()
    };
    let mut h = Hub::new(config, info, Arc::default());
    let journal = MemoryJournal::default();
    h.keep_in(t(0), Box::new(journal.clone()), state, KEY);
    (h, journal)
}

/// What the log holds, replayed: the state the next run starts from.
fn replayed(journal: &MemoryJournal) -> State {
    replayed_after(&State::default(), journal)
}

/// What a log that held `before` holds once `journal`'s records follow.
fn replayed_after(before: &State, journal: &MemoryJournal) -> State {
    let mut replay = Replay::default();
    for r in before.to_records() {
        replay.apply(r);
    }
    for r in journal.disk().records.clone() {
        replay.apply(r);
    }
    replay.finish()
}

fn admit(h: &mut Hub, c: ClientId, options: HelloOptions) -> Admission {
    h.admit(t(0), c, &hello(options), LOCAL).unwrap()
}

#[test]
fn a_session_resumes_after_a_restart_with_its_subscriptions_and_the_messages_kept_for_it() {
    let (mut h, journal) = durable(HubConfig::default(), &State::default(), 1);
    admit(&mut h, A, HelloOptions::new());
    admit(&mut h, B, HelloOptions::new());
    subscribe(&mut h, B, 1, "dev/#");
    assert_eq!(status_of(&drain(&mut h), B, 1), None, "held for the disk");
    journal.sync_all();
    assert_eq!(status_of(&drain(&mut h), B, 1), Some(Status::OK));
    let token = token_of(&h, B);
    // B's connection drops; a reliable message is kept for it; then the server dies.
    h.session_ended(t(10), B, false);
    publish_on(
        &mut h,
        A,
        "dev/1",
        b"while away",
        ChannelKind::ReliableOrdered,
    );
    publish_on(&mut h, A, "dev/2", b"lost", ChannelKind::Unreliable);
    drain(&mut h);
    let state = replayed(&journal);
    assert_eq!(state.sessions.len(), 1, "{:?}", state.sessions);

    // The next run (other session keys, the same token key): B's token resumes it.
    let (mut h, _journal) = durable(HubConfig::default(), &state, 2);
    admit(&mut h, A, HelloOptions::new());
    let welcome = h.admit(t(20), C, &resume_hello(&token), LOCAL).unwrap();
    assert!(welcome.resumed);
    let out = drain(&mut h);
    assert_eq!(
        messages_to(&out, C)
            .iter()
            .map(|m| m.1.clone())
            .collect::<Vec<_>>(),
        vec![Bytes::from_static(b"while away")]
    );
    publish_on(&mut h, A, "dev/3", b"after", ChannelKind::ReliableOrdered);
    assert_eq!(messages_to(&drain(&mut h), C).len(), 1, "subscribed again");
    // The token is spent: the session lives on under C's key.
    let again = h.admit(t(30), ClientId::Tcp(99), &resume_hello(&token), LOCAL);
    assert!(!again.unwrap().resumed);
}

#[test]
fn a_will_the_last_run_left_is_published_at_start_and_its_session_parked() {
    let will = LastWill {
        retain: true,
        channel: 0,
        topic: Text::from("dev/7/online"),
        payload: Bytes::from_static(b"no"),
    };
    let (mut h, journal) = durable(HubConfig::default(), &State::default(), 1);
    admit(
        &mut h,
        A,
        HelloOptions::builder().last_will(&will).build().unwrap(),
    );
    subscribe(&mut h, A, 0, "cmd/7");
    drain(&mut h);
    // The server dies with A live: its will was never published.
    let state = replayed(&journal);
    assert_eq!(state.sessions.values().next().unwrap().will, Some(will));

    let (h, journal) = durable(HubConfig::default(), &state, 2);
    let after = replayed_after(&state, &journal);
    assert_eq!(
        after.retained[&Text::from("dev/7/online")].payload,
        Bytes::from_static(b"no"),
        "the will, retained"
    );
    let session = after.sessions.values().next().unwrap();
    assert_eq!(session.will, None, "published once, not at every start");
    assert_eq!(session.filters, vec![Text::from("cmd/7")]);
    assert!(session.parked_at_ms.is_some());
    assert_eq!(h.pubsub.parked(), 1);
}

#[test]
fn a_session_closed_or_expired_is_gone_from_the_log_and_an_expired_one_is_not_restored() {
    let config = HubConfig {
        session_expiry: Duration::from_secs(60),
        ..HubConfig::default()
    };
    let (mut h, journal) = durable(config.clone(), &State::default(), 1);
    for c in [A, B, C] {
        admit(&mut h, c, HelloOptions::new());
        subscribe(&mut h, c, 0, "x");
    }
    h.session_ended(t(0), A, true);
    h.session_ended(t(0), B, false);
    h.handle_timeout(t(60_001));
    drain(&mut h);
    let state = replayed(&journal);
    assert_eq!(
        state.sessions.len(),
        1,
        "only C, live: {:?}",
        state.sessions
    );
    assert!(matches!(
        journal.disk().records.last(),
        Some(Record::Session(SessionRecord::Ended { .. }))
    ));
    // C was live until the crash; parked an hour before a restart, it has expired.
    let mut old = state.clone();
    for s in old.sessions.values_mut() {
        s.parked_at_ms = Some(0);
    }
    let info = ServerInfo {
        unix_micros_at_zero: 3_600_000_000,
        ..ServerInfo::default()
    };
    let mut h = Hub::new(config, info, Arc::default());
    let journal = MemoryJournal::default();
    h.keep_in(t(0), Box::new(journal.clone()), &old, KEY);
    assert_eq!(h.pubsub.parked(), 0);
    assert!(replayed_after(&old, &journal).sessions.is_empty());
}

#[test]
fn a_snapshot_keeps_live_and_parked_sessions_with_their_kept_messages() {
    let (mut h, journal) = durable(HubConfig::default(), &State::default(), 1);
    admit(&mut h, A, HelloOptions::new());
    admit(&mut h, B, HelloOptions::new());
    subscribe(&mut h, A, 0, "a/#");
    subscribe(&mut h, B, 0, "b/#");
    h.session_ended(t(5), B, false);
    publish_on(&mut h, A, "b/1", b"kept", ChannelKind::ReliableOrdered);
    drain(&mut h);
    let before = replayed(&journal);
    let mut state = State::default();
    h.snapshot_sessions(&mut state);
    assert_eq!(state.sessions, before.sessions);
}
