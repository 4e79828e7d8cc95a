//! The data directory's readers on arbitrary bytes (`framewire_server::store::scan::fuzz_check`):
//! a segment header, then its records scanned strictly and salvaging; replayed by
//! `server/tests/store_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    framewire_server::store::scan::fuzz_check(data);
});
