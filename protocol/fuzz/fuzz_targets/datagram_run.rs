//! A captured UDP payload that may hold a run of datagrams sent in one call (segmentation
//! offload): the capture reader's splitter on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    framewire_tools::capture::fuzz_check_run(data);
});
