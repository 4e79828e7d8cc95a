//! The UDP datagram parser and the frame parser on arbitrary datagrams.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    framewire_protocol::harness::datagram(data);
});
