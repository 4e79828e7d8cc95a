//! Replays the committed corpora of the `http_head` and `websocket` fuzz targets
//! (`protocol/fuzz/corpus/`) through their checks: every input gives a value or an error, never a
//! panic, and the checks' own assertions hold.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../protocol/fuzz/corpus")
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
    assert!(count >= 3, "{target}: {count} inputs");
}

#[test]
fn http_head_corpus_replays_clean() {
    replay("http_head", framewire_server::web::fuzz_check_http_head);
}

#[test]
fn websocket_corpus_replays_clean() {
    replay("websocket", framewire_server::web::fuzz_check_websocket);
}
