//! The connect-token parser and verifier on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    framewire_protocol::harness::token(data);
});
