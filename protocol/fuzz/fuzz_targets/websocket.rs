//! WebSocket client frames (`framewire_server::web::fuzz_check_websocket`): fed in pieces and
//! whole, messages within the limit or a violation naming a close code; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| framewire_server::web::fuzz_check_websocket(data));
