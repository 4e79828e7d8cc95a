//! Replays the committed fuzz corpora (`protocol/fuzz/corpus`) through the same checks the fuzz
//! targets run, so every seed and every past crash input is a regression test on stable.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    framewire_protocol::harness::replay_corpus(&dir, check);
}

#[test]
fn stream_corpus_replays_clean() {
    replay("stream", framewire_protocol::harness::stream);
}

#[test]
fn datagram_corpus_replays_clean() {
    replay("datagram", framewire_protocol::harness::datagram);
}

#[test]
fn compact_corpus_replays_clean() {
    replay("compact", framewire_protocol::harness::compact_datagram);
}

#[test]
fn discovery_corpus_replays_clean() {
    replay("discovery", framewire_protocol::harness::discovery);
}

#[test]
fn session_corpus_replays_clean() {
    replay("session", framewire_protocol::harness::session_ops);
}

#[test]
fn token_corpus_replays_clean() {
    replay("token", framewire_protocol::harness::token);
}

#[test]
fn sealed_corpus_replays_clean() {
    replay("sealed", framewire_protocol::harness::sealed);
}
