//! A server's datagram session answering Data frames itself (`SessionConfig::echo_data`), through
//! the seeded simulated network: each channel's answers come back in the order of the frames they
//! answer, an echo never overtaking the application's answer to an earlier frame; a frame the
//! session cannot answer so (no room, not yet resumed, closing) goes to the application as before.

use bytes::Bytes;
use framewire_protocol::session::{Event, Instant, SessionConfig};
use framewire_protocol::sim::{LinkConfig, Pair};
use framewire_protocol::wire::{Data, Frame, FrameBody, Request, Response, Status, Text};

fn data(tag: u16, channel: u8) -> Frame {
    Frame::new(Data {
        payload: Bytes::from(tag.to_be_bytes().to_vec()),
    })
    .on_channel(channel)
}

fn request(id: u32, channel: u8) -> Frame {
    Frame::new(Request {
        id,
        timeout_ms: 0,
        target: Text::from("sys.ping"),
        payload: Bytes::new(),
    })
    .on_channel(channel)
}

/// What a frame says, as a test reads it back: `d<tag>` for Data, `r<id>` for a Response.
fn label(f: &Frame) -> String {
    match &f.body {
        FrameBody::Data(d) => format!("d{}", u16::from_be_bytes([d.payload[0], d.payload[1]])),
        FrameBody::Request(r) => format!("r{}", r.id),
        FrameBody::Response(r) => format!("r{}", r.id),
        other => panic!("unexpected {other:?}"),
    }
}

/// Runs `pair` (`b` the server) until `a` has `want` frames, answering what `b` hands over as
/// the server's hub does (Data echoed, a Request answered, both on their channel) after each
/// step and then telling `b` its answers are queued. Returns `a`'s frames by channel.
fn serve(pair: &mut Pair, want: usize) -> [Vec<String>; 4] {
    let frames = |p: &Pair| {
        p.events_a
            .iter()
            .filter(|e| matches!(e, Event::Frame(_)))
            .count()
    };
    let deadline = Instant::from_millis(60_000);
    while frames(pair) < want {
        assert!(
            pair.now < deadline && pair.step(),
            "stalled: {:?}",
            pair.b.stats()
        );
        for e in pair.events_b.drain(..) {
            let Event::Frame(f) = e else { continue };
            let answer = match f.body {
                FrameBody::Data(d) => Frame::new(Data { payload: d.payload }),
                FrameBody::Request(r) => Frame::new(Response {
                    id: r.id,
                    status: Status::OK,
                    payload: Bytes::from_static(b"pong"),
                }),
                other => panic!("unexpected {other:?}"),
            };
            pair.b.send(answer.on_channel(f.channel)).unwrap();
        }
        pair.b.resume_echo();
    }
    let mut by_channel: [Vec<String>; 4] = Default::default();
    for e in &pair.events_a {
        if let Event::Frame(f) = e {
            by_channel[usize::from(f.channel)].push(label(f));
        }
    }
    by_channel
}

fn echoing() -> SessionConfig {
    SessionConfig {
        echo_data: true,
        ..SessionConfig::default()
    }
}

/// A client and an echoing server over `link`.
fn echo_pair(link: &LinkConfig, seed: u64) -> Pair {
    Pair::new(SessionConfig::default(), echoing(), link, seed)
}

/// A client's frames on channels 0 (reliable-ordered) and 1 (reliable-unordered): Data with a
/// Request every seventh; 600 in all.
fn send_mix(pair: &mut Pair) -> Vec<String> {
    let mut sent = Vec::new();
    for i in 0..300u16 {
        for channel in [0, 1] {
            let f = if i % 7 == 3 {
                request(u32::from(i) + 1, channel)
            } else {
                data(i, channel)
            };
            if channel == 0 {
                sent.push(label(&f));
            }
            pair.a.send(f).unwrap();
        }
    }
    sent
}

#[test]
fn echoes_keep_their_channels_order_among_the_applications_answers_through_loss() {
    for (seed, loss) in [(1, 0.0), (2, 0.05), (3, 0.2)] {
        let link = LinkConfig {
            loss,
            ..LinkConfig::default()
        };
        let mut pair = echo_pair(&link, seed);
        let sent = send_mix(&mut pair);
        let got = serve(&mut pair, 600);
        assert_eq!(got[0], sent, "seed {seed}: channel 0 in the order sent");
        let mut unordered = got[1].clone();
        unordered.sort();
        let mut want = sent.clone();
        want.sort();
        assert_eq!(unordered, want, "seed {seed}: channel 1, each once");
        // Every datagram the client coalesces holds a Request or two: each holds the Data after
        // it until the step's answers are queued.
        let echoed = pair.b.take_echoed();
        assert!(
            echoed > 0 && echoed < 600 - 2 * 43,
            "seed {seed}: the session answered some Data itself and handed the rest: {echoed}"
        );
        assert_eq!(pair.b.take_echoed(), 0, "taken");
    }
}

#[test]
fn without_echo_data_every_data_frame_goes_to_the_application() {
    let mut pair = Pair::new(
        SessionConfig::default(),
        SessionConfig::default(),
        &LinkConfig::default(),
        4,
    );
    let sent = send_mix(&mut pair);
    let got = serve(&mut pair, 600);
    assert_eq!(got[0], sent);
    assert_eq!(pair.b.take_echoed(), 0);
}

#[test]
fn data_alone_is_all_answered_by_the_session_through_loss() {
    let link = LinkConfig {
        loss: 0.1,
        ..LinkConfig::default()
    };
    let mut pair = echo_pair(&link, 8);
    let sent: Vec<String> = (0..500).map(|i| format!("d{i}")).collect();
    for i in 0..500 {
        pair.a.send(data(i, 0)).unwrap();
    }
    let got = serve(&mut pair, 500);
    assert_eq!(got[0], sent);
    assert_eq!(pair.b.take_echoed(), 500);
}

#[test]
fn unreliable_data_is_echoed_on_its_channel() {
    let mut pair = echo_pair(&LinkConfig::default(), 5);
    for i in 0..20 {
        pair.a.send(data(i, 3)).unwrap();
    }
    let got = serve(&mut pair, 20);
    assert_eq!(got[3].len(), 20);
    assert_eq!(pair.b.take_echoed(), 20);
}

#[test]
fn data_goes_to_the_application_while_the_send_queue_has_no_room() {
    // Room for about four echoes of 600 bytes: the rest are handed over, as they were before.
    let server = SessionConfig {
        echo_data: true,
        max_queued_bytes: 2_500,
        ..SessionConfig::default()
    };
    let mut pair = Pair::new(SessionConfig::default(), server, &LinkConfig::default(), 6);
    for _ in 0..20 {
        pair.a
            .send(Frame::new(Data {
                payload: Bytes::from(vec![9u8; 600]),
            }))
            .unwrap();
    }
    let deadline = Instant::from_millis(10_000);
    let (mut handed, mut echoed) = (0, 0);
    while handed + echoed < 20 {
        assert!(pair.now < deadline && pair.step(), "{handed} + {echoed}");
        handed += pair
            .events_b
            .drain(..)
            .filter(|e| matches!(e, Event::Frame(_)))
            .count() as u64;
        echoed += pair.b.take_echoed();
        // The application answers nothing and does not resume.
    }
    assert!(handed > 0 && echoed > 0, "{handed} handed, {echoed} echoed");
}

#[test]
fn a_closing_session_hands_data_over() {
    let mut pair = echo_pair(&LinkConfig::default(), 7);
    pair.a.send(data(1, 0)).unwrap();
    pair.transmit();
    let now = pair.now;
    pair.b
        .close(now, framewire_protocol::wire::Reason::NORMAL, "bye");
    assert!(pair.run_until(Instant::from_millis(5_000), |p| p.b.is_closed()));
    assert_eq!(pair.b.take_echoed(), 0);
    assert!(
        pair.events_b.iter().any(|e| matches!(
            e,
            Event::Frame(Frame {
                body: FrameBody::Data(_),
                ..
            })
        )),
        "{:?}",
        pair.events_b
    );
}
