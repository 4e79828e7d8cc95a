//! docs/PROTOCOL.md section 8 and the code agree: every hex vector parses to the sample value it is
//! named after and re-encodes to the same bytes, and every frame kind has a vector.

use std::collections::BTreeMap;

use bytes::Bytes;
use framewire_protocol::samples;
use framewire_protocol::wire::{
    DEFAULT_MAX_FRAME_LEN, Datagram, Frame, FrameKind, decode_stream_frame, encode_stream_frame,
    stream_frame_len,
};

/// The ```` ```hex NAME ```` blocks of the spec, by name.
fn spec_vectors() -> BTreeMap<String, Vec<u8>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");
    let doc = std::fs::read_to_string(path).expect("docs/PROTOCOL.md is readable");
    let mut vectors = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("```hex ") else {
            continue;
        };
        let mut bytes = Vec::new();
        for l in lines.by_ref().take_while(|l| !l.starts_with("```")) {
            for tok in l.split_whitespace() {
                bytes.push(
                    u8::from_str_radix(tok, 16)
                        .unwrap_or_else(|_| panic!("vector {name}: {tok:?} is not a hex byte")),
                );
            }
        }
        let previous = vectors.insert(name.trim().to_owned(), bytes);
        assert!(previous.is_none(), "vector {name} appears twice");
    }
    vectors
}

#[test]
fn every_stream_vector_parses_to_its_sample_and_re_encodes() {
    let vectors = spec_vectors();
    for s in samples::frames() {
        let bytes = vectors
            .get(s.name)
            .unwrap_or_else(|| panic!("docs/PROTOCOL.md has no vector {}", s.name));
        let parsed = decode_stream_frame(bytes, DEFAULT_MAX_FRAME_LEN)
            .unwrap_or_else(|e| panic!("vector {}: {e}", s.name));
        assert_eq!(
            parsed, s.frame,
            "vector {} does not say what its sample says",
            s.name
        );
        let mut out = vec![0u8; stream_frame_len(&parsed)];
        encode_stream_frame(&parsed, &mut out).unwrap();
        assert_eq!(&out, bytes, "vector {} re-encodes differently", s.name);
    }
}

#[test]
fn every_datagram_vector_parses_to_its_sample_and_re_encodes() {
    let vectors = spec_vectors();
    for s in samples::datagrams() {
        let bytes = vectors
            .get(s.name)
            .unwrap_or_else(|| panic!("docs/PROTOCOL.md has no vector {}", s.name));
        let d = Datagram::parse(Bytes::copy_from_slice(bytes))
            .unwrap_or_else(|e| panic!("vector {}: {e}", s.name));
        assert_eq!(d.header, s.header, "vector {}", s.name);
        assert_eq!(d.ack_now(), s.ack_now, "vector {}: ACK_NOW flag", s.name);
        let frames: Vec<Frame> = d.frames().map(|b| Frame::parse(b).unwrap()).collect();
        assert_eq!(frames, s.frames, "vector {}", s.name);
        assert_eq!(
            &s.encode(),
            bytes,
            "vector {} re-encodes differently",
            s.name
        );
    }
}

#[test]
fn the_spec_has_no_vector_without_a_sample_and_every_kind_has_one() {
    let vectors = spec_vectors();
    let frames = samples::frames();
    let datagrams = samples::datagrams();
    // Checked by `the_sealed_datagram_and_token_vectors_agree_with_the_code` and
    // `the_compact_vectors_restore_to_what_they_say_and_build_again`.
    let sealed = [
        "session-key-c2s",
        "session-key-s2c",
        "udp-data-sealed",
        "compact-data-sealed",
        "token-sealed",
        "compact-data",
        "compact-ack",
        "compact-shared",
    ];
    for name in vectors.keys() {
        assert!(
            frames.iter().any(|s| s.name == name)
                || datagrams.iter().any(|s| s.name == name)
                || sealed.contains(&name.as_str()),
            "docs/PROTOCOL.md vector {name} has no sample in protocol/src/samples.rs"
        );
    }
    for &kind in FrameKind::ALL {
        assert!(
            frames.iter().any(|s| s.frame.kind() == kind),
            "no sample (and so no spec vector) for {kind:?}"
        );
    }
}

#[test]
fn the_kind_table_lists_every_kind_with_its_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .unwrap();
    for &kind in FrameKind::ALL {
        let row = format!("| `{:#04x}` | {} |", kind as u8, kind.name());
        assert!(doc.contains(&row), "section 3.2 lacks the row {row}");
    }
}

#[test]
fn the_code_tables_match_the_constants() {
    use framewire_protocol::wire::{Reason, Status};
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .unwrap();
    for s in Status::ALL {
        let row = format!("| `{:#06X}` | {} |", s.0, s.name().unwrap()).replace("0X", "0x");
        assert!(doc.contains(&row), "section 6.1.1 lacks the row {row}");
    }
    for r in Reason::ALL {
        let row = format!("| `{:#06X}` | {} |", r.0, r.name().unwrap()).replace("0X", "0x");
        assert!(doc.contains(&row), "section 6.1.2 lacks the row {row}");
    }
}

#[test]
fn the_sealed_datagram_and_token_vectors_agree_with_the_code() {
    use framewire_protocol::auth::ConnectToken;
    use framewire_protocol::seal::Sealer;
    let vectors = spec_vectors();
    let seal = samples::seal_sample();
    let client = seal.session_keys(false);
    assert_eq!(&client.send[..], &vectors["session-key-c2s"][..]);
    assert_eq!(&client.receive[..], &vectors["session-key-s2c"][..]);
    assert_eq!(&seal.sealed_udp_data()[..], &vectors["udp-data-sealed"][..]);
    // The server opens it back into the plain vector.
    let plain = samples::datagrams()[0].encode();
    let opened = Sealer::new(&seal.session_keys(true))
        .open(&vectors["udp-data-sealed"])
        .unwrap();
    assert_eq!(&opened[..], &plain[..]);
    // Version 4: the compact form sealed; a fresh receiver restores number 5 from its one byte
    // and opens it into the compact datagram it stands for.
    let sealed = &vectors["compact-data-sealed"];
    assert_eq!(&seal.sealed_compact_data()[..], &sealed[..]);
    let mut opened = sealed.clone();
    let (n, pn) = Sealer::new(&seal.session_keys(true))
        .open_compact_in_place(&mut opened)
        .unwrap();
    assert_eq!(pn, 5);
    opened.truncate(n + 4);
    let d = Datagram::parse_compact_opened(
        Bytes::from(opened),
        &framewire_protocol::wire::CompactContext::default(),
        pn,
    )
    .unwrap();
    assert_eq!(
        (d.header.connection_id, d.header.packet_number),
        (0x0102_0304, 5)
    );
    let frames: Vec<Frame> = d
        .frames()
        .map(|b| Frame::parse_compact(b, |_, low| u32::from(low)).unwrap())
        .collect();
    let mut hi = Frame::new(framewire_protocol::wire::Data {
        payload: Bytes::from_static(b"hi"),
    });
    hi.seq = Some(0x0102);
    assert_eq!(frames, [hi]);
    let token = &vectors["token-sealed"];
    assert_eq!(
        ConnectToken::verify(token, seal.server_key, 0),
        Ok(samples::token_sample())
    );
    assert_eq!(
        ConnectToken::open_keys(token, seal.server_key),
        Ok(Some(seal.keys.clone()))
    );
}

/// Section 8's compact datagram vectors (section 2.4): each restores, under the context the spec
/// states, to what it says, and builds again to the same bytes.
#[test]
fn the_compact_vectors_restore_to_what_they_say_and_build_again() {
    use framewire_protocol::wire::numbers::expand_nearest;
    use framewire_protocol::wire::{AckBlock, CompactContext, Data, DatagramBuilder, PacketHeader};
    let vectors = spec_vectors();
    let data = &vectors["compact-data"];
    let context = CompactContext {
        largest_received: Some(0x0123_4566),
        largest_sent: 0,
    };
    let d = Datagram::parse_compact(Bytes::copy_from_slice(data), &context).unwrap();
    assert_eq!(
        d.header,
        PacketHeader {
            connection_id: 0x0102_0304,
            packet_number: 0x0123_4567,
            ack: None
        }
    );
    let frames: Vec<Frame> = d
        .frames()
        .map(|b| {
            Frame::parse_compact(b, |_, low| expand_nearest(u32::from(low), 16, 0x0102)).unwrap()
        })
        .collect();
    let mut want = Frame::new(Data {
        payload: Bytes::from_static(b"hi"),
    });
    want.seq = Some(0x0102);
    assert_eq!(frames, [want.clone()]);
    let mut buf = [0u8; 64];
    let mut b = DatagramBuilder::new_compact(&mut buf, &d.header, Some(0x0123_4560)).unwrap();
    assert!(b.push(&want).unwrap());
    let n = b.finish().unwrap();
    assert_eq!(&buf[..n], &data[..]);

    let ack = &vectors["compact-ack"];
    let context = CompactContext {
        largest_received: Some(0x0123_4566),
        largest_sent: 0x89ab_cdef,
    };
    let d = Datagram::parse_compact(Bytes::copy_from_slice(ack), &context).unwrap();
    let block = AckBlock {
        largest: 0x89ab_cdef,
        delay_us: 768,
        bits: 0b111,
    };
    assert_eq!(d.header.ack, Some(block));
    assert_eq!(d.frames().count(), 0);
    let b = DatagramBuilder::new_compact(&mut buf, &d.header, Some(0x0123_4560)).unwrap();
    assert_eq!(b.frame_count(), 0);
    let n = b.finish().unwrap();
    assert_eq!(&buf[..n], &ack[..]);

    // Version 3: the second frame shares the first one's header, and comes out whole.
    let shared = &vectors["compact-shared"];
    let context = CompactContext {
        largest_received: Some(0x0123_4566),
        largest_sent: 0,
    };
    let d = Datagram::parse_compact(Bytes::copy_from_slice(shared), &context).unwrap();
    let frames: Vec<Frame> = d
        .frames()
        .map(|b| {
            Frame::parse_compact(b, |_, low| expand_nearest(u32::from(low), 16, 0x0102)).unwrap()
        })
        .collect();
    let mut next = want.clone();
    next.seq = Some(0x0103);
    assert_eq!(frames, [want.clone(), next.clone()]);
    let mut b = DatagramBuilder::new_compact(&mut buf, &d.header, Some(0x0123_4560)).unwrap();
    b.share_headers();
    for f in [&want, &next] {
        let mut body = vec![0u8; f.encoded_len()];
        f.emit(&mut body).unwrap();
        assert!(b.push_encoded(&body));
    }
    let n = b.finish().unwrap();
    assert_eq!(&buf[..n], &shared[..]);
}
