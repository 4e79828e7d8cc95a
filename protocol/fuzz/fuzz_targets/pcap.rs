//! The capture reader on arbitrary files: pcap and pcapng parsing, link, IP and transport
//! headers, and the inspection of what they carry.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    framewire_tools::capture::fuzz_check_file(data);
});
