//! A fixed loop of two sessions' engines, for counting instructions (`valgrind --tool=callgrind`)
//! rather than timing: a client session sends 32 reliable 64 B messages a turn, a server session
//! that answers Data itself (`echo_data`) echoes them, every datagram handed straight across, for
//! 2,000 turns (64,000 echoes). Both ends' engines are in the count: framing, acks, the inbox and
//! the outbox, and with `sealed` the AEAD both ways.
//!
//! ```sh
//! cargo build --release -p framewire-benches --example engine_loop
//! valgrind --tool=callgrind target/release/examples/engine_loop sealed 4   # or: plain 3, sealed 1
//! ```
//!
//! The arguments: `plain` or `sealed`, then the version both sessions speak (1 to 4; sealed
//! sessions speak 1 or 4).

use std::time::Duration;

use bytes::Bytes;
use framewire_protocol::session::{Event, Instant, Session, SessionConfig};
use framewire_protocol::sim::{ADDR_A, ADDR_B, seal_pair};
use framewire_protocol::wire::{Data, Frame};

const TURNS: usize = 2000;
const IN_FLIGHT: usize = 32;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let sealed = match args.next().as_deref() {
        Some("sealed") => true,
        Some("plain") | None => false,
        Some(other) => return Err(format!("{other}: expected plain or sealed")),
    };
    let version: u8 = match args.next() {
        Some(v) => v.parse().map_err(|e| format!("version {v}: {e}"))?,
        None if sealed => 4,
        None => 3,
    };
    let config = SessionConfig {
        idle_timeout: Duration::from_secs(1_000_000),
        heartbeat_interval: Duration::from_secs(1_000_000),
        ..SessionConfig::default()
    };
    let echo = SessionConfig {
        echo_data: true,
        ..config.clone()
    };
    let mut client = Session::established(config, 1, ADDR_B, Instant::ZERO);
    let mut server = Session::established(echo, 1, ADDR_A, Instant::ZERO);
    if sealed {
        seal_pair(&mut client, &mut server, version);
    } else {
        client.use_version(version);
        server.use_version(version);
    }
    let payload = Bytes::from(vec![0x5a; 64]);
    let mut now = Instant::ZERO;
    let mut buf = vec![0u8; 2048];
    let mut echoes = 0u64;
    for _ in 0..TURNS {
        now += Duration::from_micros(100);
        for _ in 0..IN_FLIGHT {
            client
                .send(Frame::new(Data {
                    payload: payload.clone(),
                }))
                .map_err(|e| e.to_string())?;
        }
        while let Some(t) = client.poll_transmit(now, &mut buf) {
            server.handle_datagram(now, ADDR_A, Bytes::copy_from_slice(&buf[..t.len]));
        }
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            client.handle_datagram(now, ADDR_B, Bytes::copy_from_slice(&buf[..t.len]));
        }
        while let Some(e) = client.poll_event() {
            if matches!(e, Event::Frame(_)) {
                echoes += 1;
            }
        }
        while server.poll_event().is_some() {}
    }
    let expected = (TURNS * IN_FLIGHT) as u64;
    if echoes != expected {
        return Err(format!("{echoes} echoes of {expected}"));
    }
    println!(
        "{echoes} echoes, version {}{}",
        client.version(),
        if sealed { ", sealed" } else { "" }
    );
    Ok(())
}
