//! The server's configuration readers (TOML file and flags) on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    framewire_server::config::fuzz_check(data);
});
