//! The common name read from a client certificate's DER (mutual TLS) on arbitrary bytes: a name or
//! an error value, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(name) = framewire_server::tls::common_name(data) {
        assert!(!name.is_empty() && name.len() <= 64);
    }
});
