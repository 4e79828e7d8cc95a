//! Replays the committed corpus of the `cluster` fuzz target (`protocol/fuzz/corpus/cluster`)
//! through the same check, so every seed and past crash input is a regression test on stable.

use std::path::Path;

#[test]
fn cluster_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/fuzz/corpus/cluster");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        framewire_server::cluster::fuzz_check(&data);
        count += 1;
    }
    assert!(count >= 2, "only {count} inputs");
}
