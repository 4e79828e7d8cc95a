//! Sealed datagrams (docs/PROTOCOL.md section 2.3) on arbitrary bytes: opening never panics and
//! never opens a forgery; what is sealed opens to itself, once.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    framewire_protocol::harness::sealed(data);
});
