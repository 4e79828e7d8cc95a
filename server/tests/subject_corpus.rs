//! Replays the committed corpus of the `subject` fuzz target (`protocol/fuzz/corpus/subject`):
//! every input gives a common name or an error, never a panic; the seed, a certificate made by
//! openssl, gives the name it was made with.

use std::path::Path;

use framewire_server::tls::common_name;

#[test]
fn subject_corpus_replays_clean_and_the_seed_names_its_subject() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/fuzz/corpus/subject");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| common_name(&data));
        assert!(outcome.is_ok(), "corpus input {} panics", path.display());
        count += 1;
    }
    assert!(count >= 1, "no inputs");
    let seed = std::fs::read(dir.join("seed-cert")).unwrap();
    assert_eq!(common_name(&seed).unwrap(), "sensor-12");
}
