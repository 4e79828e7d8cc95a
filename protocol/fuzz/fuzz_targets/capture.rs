//! The capture reader's TCP reassembly and frame resynchronisation on arbitrary segments.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    framewire_tools::capture::fuzz_check(data);
});
