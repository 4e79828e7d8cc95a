//! Captures made by real tcpdump (`-i lo`: Ethernet; `-i any`: Linux cooked v2) of one session
//! against a real server, by `fixtures/make-captures.sh`: TCP ping, subscribe, publish, request,
//! then UDP ping and request. Both must read back as the same conversation, frame for frame.

use std::collections::BTreeMap;
use std::path::Path;

use framewire_tools::capture::{
    Carrier, DataLink, Direction, Inspection, Inspector, Seen, read_capture,
};

fn inspect(name: &str) -> (DataLink, Inspection) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let capture = read_capture(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(capture.damaged, None, "{name}");
    let link = capture.packets[0].link;
    let mut inspector = Inspector::new(7400, 65_536);
    for p in &capture.packets {
        inspector.packet(p);
    }
    (link, inspector.finish())
}

fn check(name: &str, link: DataLink) {
    let (got_link, inspection) = inspect(name);
    assert_eq!(got_link, link, "{name}");
    let tcp = inspection
        .connections
        .iter()
        .filter(|c| c.carrier == Carrier::Tcp)
        .count();
    let udp = inspection.connections.len() - tcp;
    assert_eq!((tcp, udp), (4, 2), "{name}");
    assert!(inspection.connections.iter().all(|c| c.from_start));
    let s = &inspection.summary;
    assert_eq!(
        (
            s.bad_frames,
            s.skipped_bytes,
            s.missing_bytes,
            s.undecodable_packets
        ),
        (0, 0, 0, 0),
        "{name}: {s:?}"
    );
    let expected: BTreeMap<String, u64> = [
        // 6 sessions, each opened and closed; the 2 UDP ones with a cookie round trip.
        ("Hello", 8),
        ("Challenge", 2),
        ("Welcome", 6),
        ("Close", 6),
        ("CloseAck", 6),
        // What these captures hold, which tests the reader, not the sessions: TCP 3 pings and a
        // sys.ping, the subscribe and the publish each answered; UDP 3 pings and a sys.ping,
        // each request and each response sent twice: a small datagram whose reliable messages
        // are the only ones in flight is copied at once (SessionConfig::lone_redundancy_max).
        ("Request", 12),
        ("Response", 14),
        ("Subscribe", 1),
        ("Publish", 1),
        ("Message", 1),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(s.frames_by_kind, expected, "{name}");
}

#[test]
fn tcpdump_on_the_loopback_interface() {
    check("lo.pcap", DataLink::ETHERNET);
}

#[test]
fn tcpdump_on_any_interface() {
    check("any.pcap", DataLink::LINUX_SLL2);
}

/// `fixtures/record-session.sh`: the project's clients and server on loopback, each sending runs
/// of same-size datagrams in one call (`UDP_SEGMENT`). tcpdump on the sending host records a run as
/// one UDP packet; every such packet must split into datagrams that each verify.
#[test]
fn tcpdump_of_datagram_runs_sent_in_one_call() {
    let (link, inspection) = inspect("offload.pcap");
    assert_eq!(link, DataLink::ETHERNET);
    let s = &inspection.summary;
    assert_eq!(
        (s.bad_frames, s.skipped_bytes, s.missing_bytes, s.runs),
        (0, 0, 0, 12),
        "{s:?}"
    );
    let runs = |direction| {
        inspection
            .records
            .iter()
            .filter(|r| r.direction == direction)
            .filter_map(|r| match r.what {
                Seen::Run {
                    datagrams,
                    segment_len,
                } => Some((datagrams, segment_len)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // Both ends send runs: the clients their publishes and requests (each reliable message alone
    // in flight goes twice), the server its answers.
    let (to_server, to_client) = (runs(Direction::ToServer), runs(Direction::ToClient));
    assert!(!to_server.is_empty() && !to_client.is_empty());
    assert!(
        to_server
            .iter()
            .chain(&to_client)
            .all(|&(n, len)| n >= 2 && len > 20),
        "{to_server:?} {to_client:?}"
    );
    let carriers: Vec<Carrier> = inspection.connections.iter().map(|c| c.carrier).collect();
    assert_eq!(
        carriers.iter().filter(|&&c| c == Carrier::Tcp).count(),
        2,
        "{carriers:?}"
    );
    assert_eq!(carriers.len(), 6);
    let expected: BTreeMap<String, u64> = [
        ("Hello", 10),
        ("Challenge", 4),
        ("Welcome", 6),
        ("Subscribe", 3),
        ("Publish", 3),
        ("Message", 6),
        ("Request", 8),
        ("Response", 14),
        ("Close", 6),
        ("CloseAck", 6),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(s.frames_by_kind, expected);
}

/// `fixtures/shared.pcap`: real tcpdump of a short `framewire --udp bench` (one client, 8-byte
/// messages, three in flight) against a real server: a version-3 session, whose coalesced frames
/// share headers (docs/PROTOCOL.md section 2.4). Each comes back whole: every Data frame with its
/// payload, and each direction's sequence numbers without a gap.
#[test]
fn tcpdump_of_frames_that_share_headers() {
    let (_, inspection) = inspect("shared.pcap");
    let s = &inspection.summary;
    assert_eq!(
        (s.bad_frames, s.skipped_bytes, s.missing_bytes),
        (0, 0, 0),
        "{s:?}"
    );
    let expected: BTreeMap<String, u64> = [
        ("Hello", 2),
        ("Challenge", 1),
        ("Welcome", 1),
        ("Data", 162),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(s.frames_by_kind, expected);
    for direction in [Direction::ToServer, Direction::ToClient] {
        let mut seqs: Vec<u32> = inspection
            .records
            .iter()
            .filter(|r| r.direction == direction)
            .filter_map(|r| match &r.what {
                Seen::Frame { frame, .. } => match &frame.body {
                    framewire_protocol::wire::FrameBody::Data(d) => {
                        assert_eq!(d.payload.len(), 8);
                        frame.seq
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert!(seqs.len() > 20, "{direction:?}: {seqs:?}");
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "{direction:?}: a gap in {seqs:?}"
        );
    }
}
