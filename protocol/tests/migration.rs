//! A session follows its peer to a new address (NAT rebinding, a phone changing networks) only
//! after that address echoes a path-check token, and sends an address that has not proved itself
//! no more than 3 times what it received from it.

use std::net::SocketAddr;

use bytes::Bytes;
use framewire_protocol::session::{Event, Instant, Session, SessionConfig, Transmit};
use framewire_protocol::sim::{ADDR_A, ADDR_B};
use framewire_protocol::wire::{Data, Datagram, Frame, FrameBody};

fn pair() -> (Session, Session) {
    let a = Session::established(
        SessionConfig {
            seed: 1,
            ..SessionConfig::default()
        },
        9,
        ADDR_B,
        Instant::ZERO,
    );
    let b = Session::established(
        SessionConfig {
            seed: 2,
            ..SessionConfig::default()
        },
        9,
        ADDR_A,
        Instant::ZERO,
    );
    (a, b)
}

/// Every datagram `s` wants to send now, with its destination.
fn drain(s: &mut Session, now: Instant) -> Vec<(Transmit, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some(t) = s.poll_transmit(now, &mut buf) {
        out.push((t, buf[..t.len].to_vec()));
    }
    out
}

fn has_ping(datagram: &[u8]) -> bool {
    let d = Datagram::parse(Bytes::copy_from_slice(datagram)).unwrap();
    d.frames()
        .any(|b| matches!(Frame::parse(b).unwrap().body, FrameBody::Ping(_)))
}

fn data(tag: u8) -> Frame {
    Frame::new(Data {
        payload: Bytes::from(vec![tag]),
    })
}

#[test]
fn the_session_moves_only_after_the_new_address_answers() {
    let (mut a, mut b) = pair();
    let new_addr: SocketAddr = "10.0.0.77:4444".parse().unwrap();
    let mut now = Instant::from_millis(10);

    // `a`'s NAT rebinds: its datagrams now reach `b` from `new_addr`.
    a.send(data(1)).unwrap();
    for (_, d) in drain(&mut a, now) {
        b.handle_datagram(now, new_addr, Bytes::from(d));
    }
    assert!(
        matches!(b.poll_event(), Some(Event::Frame(_))),
        "data is still delivered"
    );
    assert_eq!(b.remote(), ADDR_A, "not moved before validation");
    b.send(data(2)).unwrap();
    let out = drain(&mut b, now);
    let to_new: Vec<_> = out
        .iter()
        .filter(|(t, _)| t.destination == new_addr)
        .collect();
    let to_old: Vec<_> = out
        .iter()
        .filter(|(t, _)| t.destination == ADDR_A)
        .collect();
    assert_eq!(to_new.len(), 1, "one path check to the new address");
    assert!(has_ping(&to_new[0].1));
    assert!(
        !to_old.is_empty(),
        "data still goes to the validated address"
    );

    // The check reaches `a` (it comes from `b`'s usual address); `a`'s Pong comes from new_addr.
    now = Instant::from_millis(20);
    a.handle_datagram(now, ADDR_B, Bytes::copy_from_slice(&to_new[0].1));
    for (_, d) in drain(&mut a, now) {
        b.handle_datagram(now, new_addr, Bytes::from(d));
    }
    assert_eq!(b.remote(), new_addr, "moved once the token came back");
    assert_eq!(b.stats().migrations, 1);
    b.send(data(3)).unwrap();
    assert!(
        drain(&mut b, now)
            .iter()
            .all(|(t, _)| t.destination == new_addr)
    );
}

#[test]
fn a_spoofer_cannot_take_the_session_or_be_amplified_at() {
    let (mut a, mut b) = pair();
    let spoofer: SocketAddr = "10.6.6.6:666".parse().unwrap();
    let now = Instant::from_millis(10);
    // Datagrams of this session arrive with a forged source address (a victim's, for a reflection
    // attack): the path check goes to that address, whose owner knows nothing of the session and
    // never answers, and the attacker, who does not receive the check, can only guess the token.
    // (An attacker that does receive at the new address can answer; stopping that takes
    // encryption, which the wire format reserves room for.)
    a.send(data(1)).unwrap();
    let captured = drain(&mut a, now).remove(0).1;
    let mut received = 0;
    let mut sent_to_spoofer = 0;
    for i in 0..50 {
        // A replayed datagram is a duplicate packet: dropped before it can start anything...
        b.handle_datagram(now, spoofer, Bytes::copy_from_slice(&captured));
        received += captured.len();
        // ...but a fresh-looking one (the spoofer bumps the packet number) is processed.
        let mut forged = captured.clone();
        forged[12..16].copy_from_slice(&(1000u32 + i).to_be_bytes());
        let crc = framewire_protocol::wire::crc32(&forged[..forged.len() - 4]);
        let n = forged.len();
        forged[n - 4..].copy_from_slice(&crc.to_be_bytes());
        b.handle_datagram(now, spoofer, Bytes::copy_from_slice(&forged));
        received += forged.len();
        for (t, d) in drain(&mut b, now) {
            if t.destination == spoofer {
                sent_to_spoofer += d.len();
            }
        }
        // The spoofer answers with a Pong carrying a guessed token.
        let guess = Frame::new(framewire_protocol::wire::Pong {
            timestamp_us: u64::from(i),
        });
        let mut buf = vec![0u8; 256];
        let header = framewire_protocol::wire::PacketHeader {
            connection_id: 9,
            packet_number: 5000 + i,
            ack: None,
        };
        let mut builder =
            framewire_protocol::wire::DatagramBuilder::new(&mut buf, &header).unwrap();
        assert!(builder.push(&guess).unwrap());
        let len = builder.finish().unwrap();
        b.handle_datagram(now, spoofer, Bytes::copy_from_slice(&buf[..len]));
        received += len;
    }
    assert_eq!(
        b.remote(),
        ADDR_A,
        "the session stayed with the validated address"
    );
    assert_eq!(b.stats().migrations, 0);
    assert!(sent_to_spoofer > 0, "the spoofer's address was checked");
    assert!(
        sent_to_spoofer <= 3 * received,
        "sent {sent_to_spoofer} for {received}"
    );
}
