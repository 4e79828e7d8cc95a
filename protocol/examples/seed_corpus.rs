//! Writes the seed corpora of the fuzz targets (`protocol/fuzz/corpus/{stream,datagram,token,sealed}`)
//! from the samples: every frame kind alone, all of them in one stream, the sample datagrams, and
//! connect tokens signed with the harness's key.
//!
//! `cargo run -p framewire-protocol --example seed_corpus`

use std::path::Path;

use framewire_protocol::samples;
use framewire_protocol::wire::{
    DatagramBuilder, MAX_DATAGRAM_SIZE, encode_stream_frame, stream_frame_len,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let stream_dir = root.join("stream");
    let datagram_dir = root.join("datagram");
    std::fs::create_dir_all(&stream_dir)?;
    std::fs::create_dir_all(&datagram_dir)?;

    let mut all = vec![7u8]; // first byte: the harness's chunk size
    for s in samples::frames() {
        let mut frame = vec![0u8; stream_frame_len(&s.frame)];
        encode_stream_frame(&s.frame, &mut frame)?;
        all.extend_from_slice(&frame);
        let mut one = vec![63u8];
        one.extend_from_slice(&frame);
        std::fs::write(stream_dir.join(format!("seed-{}", s.name)), one)?;
    }
    std::fs::write(stream_dir.join("seed-all-kinds"), all)?;

    for d in samples::datagrams() {
        std::fs::write(datagram_dir.join(format!("seed-{}", d.name)), d.encode())?;
    }
    // One datagram with a frame of every kind that fits, coalesced.
    let header = samples::datagrams()[1].header;
    let mut buf = vec![0u8; MAX_DATAGRAM_SIZE];
    let mut b = DatagramBuilder::new(&mut buf, &header)?;
    for s in samples::frames() {
        b.push(&s.frame)?;
    }
    let n = b.finish()?;
    std::fs::write(datagram_dir.join("seed-all-kinds"), &buf[..n])?;
    let token_dir = root.join("token");
    std::fs::create_dir_all(&token_dir)?;
    let t = |s: &str| framewire_protocol::wire::Text::from(s);
    let claims = framewire_protocol::auth::ConnectToken {
        client_id: t("sensor-7"),
        expires: 2_000_000_000,
        permissions: framewire_protocol::auth::Permissions {
            publish: vec![t("sensors/7/#")],
            subscribe: vec![t("cmd/7/+"), t("broadcast/#")],
            request: vec![t("time.*")],
            serve: vec![t("sensor.7")],
            queue: vec![t("jobs")],
        },
    };
    let signed = claims.sign(framewire_protocol::harness::TOKEN_KEY)?;
    let body = &signed[..signed.len() - framewire_protocol::auth::MAC_LEN];
    for (name, mode, bytes) in [("signed", 3u8, &signed[..]), ("claims", 17, body)] {
        let mut seed = vec![mode];
        seed.extend_from_slice(bytes);
        std::fs::write(token_dir.join(format!("seed-{name}")), seed)?;
    }
    // A version-2 token: the UDP session keys sealed into it.
    let keys = framewire_protocol::seal::TokenKeys {
        client_to_server: [0x11; 32],
        server_to_client: [0x22; 32],
    };
    let with_keys =
        claims.sign_with_keys(framewire_protocol::harness::TOKEN_KEY, &keys, [7; 24])?;
    let mut seed = vec![5u8];
    seed.extend_from_slice(&with_keys);
    std::fs::write(token_dir.join("seed-sealed-keys"), seed)?;
    let empty = framewire_protocol::auth::ConnectToken {
        client_id: t(""),
        expires: 0,
        permissions: framewire_protocol::auth::Permissions::default(),
    }
    .sign(framewire_protocol::harness::TOKEN_KEY)?;
    let mut seed = vec![200u8];
    seed.extend_from_slice(&empty);
    std::fs::write(token_dir.join("seed-empty"), seed)?;
    // Sealed datagrams: the plain samples (sealed and opened by the harness) and the spec's
    // sealed vector (opened as it is).
    let sealed_dir = root.join("sealed");
    std::fs::create_dir_all(&sealed_dir)?;
    let seal = framewire_protocol::samples::seal_sample();
    let mut sealer = framewire_protocol::seal::Sealer::new(&seal.session_keys(false));
    for d in framewire_protocol::samples::datagrams() {
        let mut bytes = d.encode();
        std::fs::write(sealed_dir.join(format!("seed-{}", d.name)), &bytes)?;
        let len = bytes.len();
        bytes.resize(len + framewire_protocol::seal::SEAL_OVERHEAD, 0);
        let n = sealer.seal(&mut bytes, len).ok_or("cannot seal")?;
        std::fs::write(
            sealed_dir.join(format!("seed-{}-sealed", d.name)),
            &bytes[..n],
        )?;
    }
    println!("seed corpus written under {}", root.display());
    Ok(())
}
