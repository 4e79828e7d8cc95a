//! LAN discovery's datagrams and node cards (docs/PROTOCOL.md section 4.12): an answer that reads
//! builds again, a request's answer is shorter, a card that reads writes back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    framewire_protocol::harness::discovery(data);
});
