//! The compact datagram parser (version 2) and the frame parser on arbitrary datagrams, under an
//! arbitrary receiver's context.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    framewire_protocol::harness::compact_datagram(data);
});
