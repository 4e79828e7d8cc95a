//! What a node reads from NATS on arbitrary bytes (`framewire_server::cluster::fuzz_check`): a
//! subject read as a topic, a payload as an envelope; replayed by `server/tests/cluster_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    framewire_server::cluster::fuzz_check(data);
});
