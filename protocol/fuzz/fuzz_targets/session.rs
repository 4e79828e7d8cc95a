//! Sequences of session operations over the simulated network: sends on every channel, large
//! messages, time, loss, duplication, reordering and close; the pair must settle with every
//! delivery guarantee kept.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    framewire_protocol::harness::session_ops(data);
});
