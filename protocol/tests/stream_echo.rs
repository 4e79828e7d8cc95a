//! A server's stream session answering Data frames itself (`SessionConfig::echo_data`): the echo is
//! the frame's own bytes, counted; it never overtakes the answer to an earlier frame; and a frame
//! it cannot answer so goes to the application, as without the setting.

use bytes::{Bytes, BytesMut};
use framewire_protocol::session::{Event, Instant, SessionConfig, StreamSession};
use framewire_protocol::sim::Rng;
use framewire_protocol::wire::{
    ChannelKind, Data, Frame, FrameBody, HelloOptions, Subscribe, Text, encode_stream_frame_into,
};

const NOW: Instant = Instant::ZERO;

/// A client (echo off: a client never answers Data) and an echoing server, handshake done.
fn connected(server: SessionConfig) -> (StreamSession, StreamSession) {
    let mut client = StreamSession::client(
        SessionConfig {
            hello_options: HelloOptions::builder()
                .channels(&[ChannelKind::ReliableUnordered, ChannelKind::Unreliable])
                .build()
                .unwrap(),
            ..SessionConfig::default()
        },
        NOW,
    );
    let mut server = StreamSession::server(
        SessionConfig {
            echo_data: true,
            ..server
        },
        7,
        NOW,
    );
    server.handle_bytes(NOW, &take_output(&mut client));
    client.handle_bytes(NOW, &take_output(&mut server));
    assert!(matches!(server.poll_event(), Some(Event::Connected { .. })));
    assert!(matches!(client.poll_event(), Some(Event::Connected { .. })));
    (client, server)
}

fn take_output(s: &mut StreamSession) -> Vec<u8> {
    let out = s.pending_output().to_vec();
    s.consume_output(out.len());
    out
}

fn data(tag: u8, len: usize, channel: u8) -> Frame {
    Frame::new(Data {
        payload: Bytes::from(vec![tag; len]),
    })
    .on_channel(channel)
}

fn stream_bytes(frames: &[Frame]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for f in frames {
        encode_stream_frame_into(f, &mut out).unwrap();
    }
    out.to_vec()
}

/// The tags of the Data frames among a session's events; any other frame event as `None`.
fn events(s: &mut StreamSession) -> Vec<Option<u8>> {
    std::iter::from_fn(|| s.poll_event())
        .map(|e| match e {
            Event::Frame(Frame {
                body: FrameBody::Data(d),
                ..
            }) => Some(d.payload[0]),
            Event::Frame(_) => None,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn data_is_echoed_with_its_own_bytes_however_the_stream_splits_it() {
    let (mut client, mut server) = connected(SessionConfig::default());
    // Channels 0 and 1 reliable, 2 unreliable (as the Hello laid them out).
    let frames: Vec<Frame> = (0..40u8)
        .map(|t| data(t, 1 + usize::from(t) * 37, t % 3))
        .collect();
    let sent = stream_bytes(&frames);
    let mut rng = Rng::new(11);
    let mut at = 0;
    while at < sent.len() {
        let n = (1 + rng.next_u64() as usize % 300).min(sent.len() - at);
        server.handle_bytes(NOW, &sent[at..at + n]);
        at += n;
    }
    assert_eq!(
        server.pending_output(),
        &sent[..],
        "the very bytes, in order"
    );
    assert!(!server.has_events(), "nothing for the application");
    assert_eq!(server.take_echoed(), 40);
    assert_eq!(server.take_echoed(), 0, "taken once");
    let stats = server.stats();
    assert_eq!((stats.packets_received, stats.packets_sent), (41, 41));

    // The client reads them as the frames it sent.
    client.handle_bytes(NOW, &take_output(&mut server));
    let got: Vec<Frame> = std::iter::from_fn(|| client.poll_event())
        .map(|e| match e {
            Event::Frame(f) => f,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, frames);
}

#[test]
fn an_echo_waits_until_the_answers_to_earlier_frames_are_queued() {
    let (_client, mut server) = connected(SessionConfig::default());
    let subscribe = Frame::new(Subscribe {
        id: 1,
        filter: Text::from("a/b"),
    });
    // One read: a Data, a frame for the application, two Data after it.
    server.handle_bytes(
        NOW,
        &stream_bytes(&[data(1, 8, 0), subscribe, data(2, 8, 0), data(3, 8, 1)]),
    );
    assert_eq!(
        server.pending_output(),
        &stream_bytes(&[data(1, 8, 0)])[..],
        "only the Data before the Subscribe is answered at once"
    );
    assert_eq!(
        events(&mut server),
        [None, Some(2), Some(3)],
        "the rest go to the application, which answers them after the Subscribe"
    );
    // Still held in a later read, until the application says its answers are queued.
    server.handle_bytes(NOW, &stream_bytes(&[data(4, 8, 0)]));
    assert_eq!(events(&mut server), [Some(4)]);
    assert_eq!(server.take_echoed(), 1);
    server.resume_echo();
    take_output(&mut server);
    server.handle_bytes(NOW, &stream_bytes(&[data(5, 8, 0)]));
    assert_eq!(server.pending_output(), &stream_bytes(&[data(5, 8, 0)])[..]);
    assert!(!server.has_events());
    assert_eq!(server.take_echoed(), 1);
}

#[test]
fn a_data_frame_with_no_room_goes_to_the_application_as_before() {
    let (_client, mut server) = connected(SessionConfig {
        max_queued_bytes: 4_000,
        ..SessionConfig::default()
    });
    // Each frame is 1,012 bytes: two fit under half the limit, four under the limit.
    let unreliable = |t| data(t, 1_000, 2);
    let reliable = |t| data(t, 1_000, 0);
    server.handle_bytes(
        NOW,
        &stream_bytes(&[unreliable(1), unreliable(2), unreliable(3)]),
    );
    assert_eq!(server.take_echoed(), 2);
    assert_eq!(
        events(&mut server),
        [Some(3)],
        "an unreliable frame above half the output: the application's send drops it"
    );
    server.resume_echo();
    server.handle_bytes(NOW, &stream_bytes(&[reliable(4), reliable(5), reliable(6)]));
    assert_eq!(server.take_echoed(), 2);
    assert_eq!(
        events(&mut server),
        [Some(6)],
        "a reliable one at the limit: its send pushes back"
    );
    assert_eq!(server.pending_output().len(), 4 * 1_012);
}

#[test]
fn frames_in_another_encoding_or_unchecked_are_not_echoed() {
    let (_client, mut server) = connected(SessionConfig::default());
    let mut sequenced = data(1, 8, 0);
    sequenced.seq = Some(9);
    server.handle_bytes(NOW, &stream_bytes(&[sequenced]));
    assert_eq!(
        events(&mut server),
        [Some(1)],
        "a sequence number is not a stream frame's own encoding: the echo would differ"
    );
    server.resume_echo();
    // A rebuilt WebSocket stream: CRCs unchecked, so its bytes are not the client's to echo.
    server.skip_checksums();
    server.handle_bytes(NOW, &stream_bytes(&[data(2, 8, 0)]));
    assert_eq!(events(&mut server), [Some(2)]);
    assert_eq!(server.take_echoed(), 0);
    assert!(server.pending_output().is_empty());

    // Without the setting, nothing is echoed.
    let mut plain = StreamSession::server(SessionConfig::default(), 8, NOW);
    let mut client = StreamSession::client(SessionConfig::default(), NOW);
    plain.handle_bytes(NOW, &take_output(&mut client));
    take_output(&mut plain);
    let _connected = plain.poll_event();
    plain.handle_bytes(NOW, &stream_bytes(&[data(3, 8, 0)]));
    assert_eq!(events(&mut plain), [Some(3)]);
    assert!(plain.pending_output().is_empty());
}
