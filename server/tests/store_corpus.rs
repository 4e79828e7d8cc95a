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
