//! Prints the hex test vectors of docs/PROTOCOL.md from the crate's samples, in the form the spec
//! uses. `tests/spec_vectors.rs` checks that the document and the code agree; run this after a
//! deliberate change to the format and paste its output into the spec.
//!
//! `cargo run -p framewire-protocol --example vectors`

use framewire_protocol::samples;
use framewire_protocol::wire::{encode_stream_frame, stream_frame_len};

fn hex_block(name: &str, bytes: &[u8]) {
    println!("```hex {name}");
    for line in bytes.chunks(16) {
        let words: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
        println!("{}", words.join(" "));
    }
    println!("```");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for s in samples::frames() {
        let mut out = vec![0u8; stream_frame_len(&s.frame)];
        encode_stream_frame(&s.frame, &mut out)?;
        println!("{}: {:?}", s.name, s.frame.body);
        hex_block(s.name, &out);
    }
    for d in samples::datagrams() {
        println!("{}: {:?}, ack now: {}", d.name, d.header, d.ack_now);
        hex_block(d.name, &d.encode());
    }
    let seal = samples::seal_sample();
    let client = seal.session_keys(false);
    hex_block("session-key-c2s", &client.send);
    hex_block("session-key-s2c", &client.receive);
    println!("udp-data sealed by the client");
    hex_block("udp-data-sealed", &seal.sealed_udp_data());
    println!("a compact datagram (version 4) sealed by the client");
    hex_block("compact-data-sealed", &seal.sealed_compact_data());
    let claims = &samples::token_sample();
    let token = claims.sign_with_keys(seal.server_key, &seal.keys, seal.token_nonce)?;
    println!("{claims:?}, with the keys sealed");
    hex_block("token-sealed", &token);
    Ok(())
}
