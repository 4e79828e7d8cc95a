//! HTTP request heads at the web listener (`framewire_server::web::fuzz_check_http_head`): a head
//! within the limits, a wait for more, or an error with its status; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| framewire_server::web::fuzz_check_http_head(data));
