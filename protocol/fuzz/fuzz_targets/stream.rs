//! The TCP stream deframer and frame parser on arbitrary bytes fed in arbitrary chunk sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    framewire_protocol::harness::stream(data);
});
