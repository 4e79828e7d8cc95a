//! Replays the committed fuzz corpora (`protocol/fuzz/corpus`) through the same checks the fuzz
//! targets run, so every seed and every past crash input is a regression test on stable.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "corpus input {} fails its check",
            path.display()
        );
        count += 1;
    }
    assert!(count >= 3, "corpus {target} has only {count} inputs");
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
fn session_corpus_replays_clean() {
    replay("session", framewire_protocol::harness::session_ops);
}

#[test]
fn token_corpus_replays_clean() {
    replay("token", framewire_protocol::harness::token);
}
