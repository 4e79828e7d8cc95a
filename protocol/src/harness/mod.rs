//! Checks shared by the fuzz targets (`protocol/fuzz`) and the stable tests that replay their
//! corpora, so both run the same assertions. Not part of the public API.

mod session_ops;

pub use session_ops::session_ops;

use alloc::vec;
use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};

use crate::wire::{Datagram, DatagramBuilder, Frame, StreamDeframer, encode_stream_frame};

/// Feeds `data` to a stream deframer in chunks whose sizes come from the first byte; every frame
/// that comes out must parse or fail cleanly, and a parsed frame must re-encode to the bytes it
/// came from. Panics (for the fuzzer) on a broken invariant.
pub fn stream(data: &[u8]) {
    let (chunk, data) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c % 64) + 1, rest),
        None => return,
    };
    // Three deframers over the same chunks: one hands out owned bodies, one verifies in place,
    // one reads the bytes where the caller holds them. They must agree frame by frame, and on the
    // error that ends the stream.
    let mut owned = StreamDeframer::new(64 * 1024);
    let mut in_place = StreamDeframer::new(64 * 1024);
    let mut borrowed = StreamDeframer::new(64 * 1024);
    let mut buf = BytesMut::new();
    let mut buf2 = BytesMut::new();
    let mut held: Vec<u8> = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        buf2.extend_from_slice(piece);
        held.extend_from_slice(piece);
        loop {
            let a = owned.decode(&mut buf);
            let b = in_place.decode_span(&mut buf2);
            assert_eq!(
                b,
                borrowed.decode_span_in(&held),
                "reading in place and from a slice disagree"
            );
            match (a, b) {
                (Ok(Some(body)), Ok(Some(span))) => {
                    assert_eq!(&body[..], &buf2[span.body.clone()], "span and body differ");
                    bytes::Buf::advance(&mut buf2, span.total);
                    held.drain(..span.total);
                    check_body_round_trip(&body);
                }
                (Ok(None), Ok(None)) => break,
                (Err(x), Err(y)) => {
                    assert_eq!(x, y, "the two paths fail differently");
                    return stream_echo(chunk, data);
                }
                (a, b) => panic!("the two paths disagree: {a:?} vs {b:?}"),
            }
        }
    }
    stream_echo(chunk, data);
}

/// The same stream after a handshake, to two server sessions: one that echoes Data itself
/// (`SessionConfig::echo_data`, told after each chunk that its answers are queued, as the server
/// does each turn) and one that hands every frame to the application. What the echoing one
/// answers itself and what it hands over must together be the other's Data frames, in order
/// within each part; its other output, and how the session ends, must be the same.
fn stream_echo(chunk: usize, data: &[u8]) {
    use crate::session::{Event, Instant, SessionConfig, StreamSession};
    use crate::wire::FrameBody;

    let now = Instant::ZERO;
    let client = StreamSession::client(SessionConfig::default(), now);
    let hello = client.pending_output().to_vec();
    let mut echoing = StreamSession::server(
        SessionConfig {
            echo_data: true,
            ..SessionConfig::default()
        },
        1,
        now,
    );
    let mut plain = StreamSession::server(SessionConfig::default(), 1, now);
    let (mut echo_out, mut plain_out) = (Vec::new(), Vec::new());
    let (mut handed, mut all) = (Vec::new(), Vec::new());
    for piece in core::iter::once(&hello[..]).chain(data.chunks(chunk)) {
        echoing.handle_bytes(now, piece);
        plain.handle_bytes(now, piece);
        echoing.resume_echo();
        for (s, out, frames) in [
            (&mut echoing, &mut echo_out, &mut handed),
            (&mut plain, &mut plain_out, &mut all),
        ] {
            out.extend_from_slice(s.pending_output());
            let n = s.pending_output().len();
            s.consume_output(n);
            while let Some(e) = s.poll_event() {
                if let Event::Frame(f) = e {
                    frames.push(f);
                }
            }
        }
    }
    assert_eq!(echoing.is_closed(), plain.is_closed(), "one session ended");
    // Split the echoing session's output into its echoes and the rest.
    let (mut echoed, mut said) = (Vec::new(), Vec::new());
    let mut deframer = StreamDeframer::new(64 * 1024);
    let mut out = BytesMut::from(&echo_out[..]);
    while let Ok(Some(body)) = deframer.decode(&mut out) {
        match Frame::parse(body) {
            Ok(f) if matches!(f.body, FrameBody::Data(_)) => echoed.push(f),
            Ok(f) => said.push(f),
            Err(e) => panic!("a session wrote a frame it cannot read back: {e:?}"),
        }
    }
    assert!(out.is_empty(), "the output ends in a whole frame");
    let plain_said: Vec<Frame> = {
        let mut d = StreamDeframer::new(64 * 1024);
        let mut out = BytesMut::from(&plain_out[..]);
        core::iter::from_fn(|| d.decode(&mut out).ok().flatten())
            .filter_map(|b| Frame::parse(b).ok())
            .collect()
    };
    assert_eq!(said, plain_said, "the rest of the output differs");
    let data_frames = |fs: &[Frame]| -> Vec<Frame> {
        fs.iter()
            .filter(|f| matches!(f.body, FrameBody::Data(_)))
            .cloned()
            .collect()
    };
    let all = data_frames(&all);
    let handed = data_frames(&handed);
    assert_eq!(
        echoed.len() + handed.len(),
        all.len(),
        "a Data frame was lost or doubled"
    );
    assert!(
        is_subsequence(&echoed, &all) && is_subsequence(&handed, &all),
        "a Data frame out of order"
    );
}

fn is_subsequence(part: &[Frame], whole: &[Frame]) -> bool {
    let mut whole = whole.iter();
    part.iter()
        .all(|p| whole.any(|w| w.channel == p.channel && w.body == p.body))
}

/// Parses `data` as a datagram; if it is accepted, every frame must parse or fail cleanly, parsed
/// frames must re-encode to their bytes, and rebuilding the datagram from its header and frame
/// bodies must give back the input (outside `cfg(fuzzing)`, where the CRC is not checked).
pub fn datagram(data: &[u8]) {
    let Ok(d) = Datagram::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut out = vec![0u8; data.len()];
    let Ok(mut builder) = DatagramBuilder::new(&mut out, &d.header) else {
        panic!("an accepted header must fit the buffer it came in");
    };
    for body in d.frames() {
        check_body_round_trip(&body);
        assert!(
            builder.push_encoded(&body),
            "an accepted frame must fit again"
        );
    }
    if d.ack_now() {
        builder.ask_ack_now();
    }
    let n = builder
        .finish()
        .expect("an accepted datagram has an ack or a frame");
    assert_eq!(n, data.len());
    if !cfg!(fuzzing) {
        assert_eq!(&out[..], data, "datagram did not re-encode to its bytes");
    }
}

/// LAN discovery (docs/PROTOCOL.md section 4.12) on arbitrary bytes: as a server's answer, an
/// accepted one must build again from its card and read back the same, never longer than a
/// request of its length plus one allows; as a request, the answer to it must be shorter; as a
/// node card's text, one that reads must write back the same text.
pub fn discovery(data: &[u8]) {
    use crate::discovery::{answer, read_answer};
    use crate::wire::NodeCard;
    let mut out = vec![0u8; crate::wire::DEFAULT_DATAGRAM_SIZE];
    if let Ok(here) = read_answer(data) {
        let n = answer(here.nonce, &here.card, data.len() + 1, &mut out)
            .expect("an answer read builds again in as many bytes");
        let again = read_answer(&out[..n]).expect("an answer built reads back");
        assert_eq!(again.card, here.card);
        assert_eq!(again.nonce, here.nonce);
    }
    if let Ok(d) = Datagram::parse(Bytes::copy_from_slice(data))
        && let Some(Ok(Frame {
            body: crate::wire::FrameBody::Discover(discover),
            ..
        })) = d.frames().next().map(Frame::parse)
    {
        let card = crate::samples::here_sample().card;
        if let Some(n) = answer(discover.nonce, &card, data.len(), &mut out) {
            assert!(n < data.len(), "an answer is shorter than its request");
        }
    }
    if let Ok(text) = core::str::from_utf8(data)
        && let Ok(card) = NodeCard::parse(text)
    {
        assert_eq!(card.encode(), text);
    }
}

/// Parses `data[8..]` as a compact datagram (docs/PROTOCOL.md section 2.4) under the context its
/// first 8 bytes give (largest received, largest sent); if it is accepted, every frame must parse
/// or fail cleanly, and a datagram whose frames all parse must build again (its packet number in
/// the fewest bytes) and parse back to the same header and frames.
pub fn compact_datagram(data: &[u8]) {
    use crate::wire::CompactContext;
    use crate::wire::numbers::expand_nearest;
    let Some((head, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let number = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let context = CompactContext {
        largest_received: Some(number(&head[..4])),
        largest_sent: number(&head[4..]),
    };
    let Ok(d) = Datagram::parse_compact(Bytes::copy_from_slice(rest), &context) else {
        return;
    };
    let restore = |_: u8, low: u16| expand_nearest(u32::from(low), 16, 0x8000_0000);
    let frames: Vec<Frame> = d
        .frames()
        .filter_map(|b| Frame::parse_compact(b, restore).ok())
        .collect();
    if frames.len() != d.frames().count() {
        return;
    }
    let mut out = vec![0u8; crate::wire::MAX_DATAGRAM_SIZE];
    let pn = d.header.packet_number;
    let Ok(mut builder) =
        DatagramBuilder::new_compact(&mut out, &d.header, Some(pn.wrapping_sub(1)))
    else {
        panic!("an accepted header must build again");
    };
    for f in &frames {
        assert!(
            builder.push(f).expect("a parsed frame encodes"),
            "an accepted frame must fit again"
        );
    }
    if d.ack_now() {
        builder.ask_ack_now();
    }
    let n = builder
        .finish()
        .expect("an accepted datagram has an ack or a frame");
    let again = CompactContext {
        largest_received: Some(pn.wrapping_sub(1)),
        ..context
    };
    let back = Datagram::parse_compact(Bytes::copy_from_slice(&out[..n]), &again)
        .expect("a rebuilt datagram parses");
    assert_eq!(back.header, d.header, "the header came back changed");
    assert_eq!(back.ack_now(), d.ack_now());
    let back_frames: Vec<Frame> = back
        .frames()
        .map(|b| Frame::parse_compact(b, restore).expect("a rebuilt frame parses"))
        .collect();
    assert_eq!(back_frames, frames, "the frames came back changed");

    // Built once more as version 3 builds it, each frame that may share the header of the one
    // before it: no longer, and the same frames.
    let Ok(mut shared) =
        DatagramBuilder::new_compact(&mut out, &d.header, Some(pn.wrapping_sub(1)))
    else {
        panic!("an accepted header must build again");
    };
    shared.share_headers();
    for f in &frames {
        let mut body = vec![0u8; f.encoded_len()];
        f.emit(&mut body).expect("a parsed frame encodes");
        assert!(
            shared.push_encoded(&body),
            "an accepted frame must fit again"
        );
    }
    if d.ack_now() {
        shared.ask_ack_now();
    }
    let m = shared.finish().expect("an ack or a frame");
    assert!(m <= n, "sharing headers made a datagram longer");
    let back = Datagram::parse_compact(Bytes::copy_from_slice(&out[..m]), &again)
        .expect("a datagram of shared headers parses");
    let back_frames: Vec<Frame> = back
        .frames()
        .map(|b| Frame::parse_compact(b, restore).expect("a rebuilt frame parses"))
        .collect();
    assert_eq!(back_frames, frames, "shared headers changed the frames");
    // Read where they lie, as a session reads them: the same frames.
    let in_place: Vec<Frame> = back
        .frame_parts()
        .map(|p| Frame::parse_compact_part(p, restore).expect("a frame part parses"))
        .collect();
    assert_eq!(
        in_place, frames,
        "reading in place and put together disagree"
    );
}

fn check_body_round_trip(body: &Bytes) {
    let Ok(frame) = Frame::parse(body.clone()) else {
        return;
    };
    let mut out: Vec<u8> = vec![0u8; frame.encoded_len()];
    frame.emit(&mut out).expect("a parsed frame must encode");
    assert_eq!(&out[..], &body[..], "frame did not re-encode to its bytes");
    let mut stream = vec![0u8; crate::wire::stream_frame_len(&frame)];
    encode_stream_frame(&frame, &mut stream).expect("a parsed frame must stream-encode");
}

/// The key the token harness signs and verifies with (the seed corpus signs with it too).
pub const TOKEN_KEY: &[u8] = b"framewire fuzzing key, 32+ bytes";

/// Runs `data` through the connect-token checks (the first byte picks how): verified as it is
/// (must fail cleanly: the fuzzer cannot forge a signature), parsed as claims (an accepted one must
/// sign and verify back to itself), and signed then verified after one byte is flipped (must be
/// refused). Panics (for the fuzzer) on a broken invariant.
pub fn token(data: &[u8]) {
    use crate::auth::{ConnectToken, TokenError};
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    if let Ok(t) = ConnectToken::verify(data, TOKEN_KEY, 0) {
        // Only a signature made with the key verifies; a fuzzer that finds one has broken HMAC.
        let again = match ConnectToken::open_keys(data, TOKEN_KEY) {
            Ok(Some(keys)) => {
                let mut nonce = [0u8; 24];
                nonce.copy_from_slice(&data[1..25]);
                t.sign_with_keys(TOKEN_KEY, &keys, nonce).ok()
            }
            _ => t.sign(TOKEN_KEY).ok(),
        };
        assert_eq!(again.as_deref(), Some(data), "an unsigned token verified");
    }
    // Keys open only from a token whose signature verifies.
    if let Ok(keys) = ConnectToken::open_keys(data, TOKEN_KEY) {
        assert!(
            ConnectToken::verify(data, TOKEN_KEY, 0).is_ok() || keys.is_none(),
            "keys opened from a token that does not verify"
        );
    }
    let Ok(claims) = ConnectToken::parse_claims(data) else {
        return;
    };
    let signed = claims.sign(TOKEN_KEY).expect("parsed claims re-encode");
    // A version-2 token's claims are a version-1 token's, after the sealed keys.
    let claims_at = match data.first() {
        Some(&crate::auth::TOKEN_VERSION_SEALED) => crate::auth::SEALED_KEYS_LEN,
        _ => 0,
    };
    assert_eq!(
        &signed[1..signed.len() - crate::auth::MAC_LEN],
        &data[1 + claims_at..],
        "claims re-encode differently"
    );
    let keys = crate::seal::TokenKeys {
        client_to_server: [mode; 32],
        server_to_client: [!mode; 32],
    };
    let sealed = claims
        .sign_with_keys(TOKEN_KEY, &keys, [mode; 24])
        .expect("parsed claims re-encode with keys");
    assert_eq!(
        ConnectToken::open_keys(&sealed, TOKEN_KEY),
        Ok(Some(keys)),
        "sealed keys open"
    );
    let mut altered = sealed;
    let at = usize::from(mode) % altered.len();
    altered[at] ^= 1 << (mode % 8);
    assert!(
        ConnectToken::open_keys(&altered, TOKEN_KEY).is_err(),
        "a changed token's keys opened"
    );
    assert_eq!(
        ConnectToken::verify(&signed, TOKEN_KEY, 0),
        Ok::<_, TokenError>(claims),
        "a signed token verifies"
    );
    let mut flipped = signed;
    let at = usize::from(mode) % flipped.len();
    flipped[at] ^= 1 << (mode % 8);
    assert!(
        ConnectToken::verify(&flipped, TOKEN_KEY, 0).is_err(),
        "a changed token verified"
    );
}

/// Runs `data` through the sealed-datagram checks (docs/PROTOCOL.md sections 2.3 and 2.5, of both
/// forms: see `sealed_compact` for the compact one): opened as it is
/// by a server with the spec vector's keys (it must not open, or open only to what the matching
/// client sealed: the fuzzer cannot forge a tag), then, when it parses as a plain datagram, sealed
/// by the client and opened by the server back into the same bytes, once and never twice. Panics
/// (for the fuzzer) on a broken invariant.
pub fn sealed(data: &[u8]) {
    use crate::seal::{OpenError, SEAL_OVERHEAD, Sealer};
    sealed_compact(data);
    let sample = crate::samples::seal_sample();
    let keys = |server| sample.session_keys(server);
    let mut server = Sealer::new(&keys(true));
    if let Ok(opened) = server.open(data) {
        // Only the vector's own sealed datagram (or another the client sealed) opens.
        assert!(
            crate::wire::Datagram::parse(opened).is_ok(),
            "an opened datagram does not parse"
        );
        assert_eq!(
            server.open(data),
            Err(OpenError::Replayed),
            "a datagram opened twice"
        );
    }
    if crate::wire::Datagram::parse(Bytes::copy_from_slice(data)).is_err() {
        return;
    }
    let mut buf = alloc::vec![0u8; data.len() + SEAL_OVERHEAD];
    buf[..data.len()].copy_from_slice(data);
    let mut client = Sealer::new(&keys(false));
    let Some(n) = client.seal(&mut buf, data.len()) else {
        return;
    };
    let mut server = Sealer::new(&keys(true));
    let opened = server
        .open(&buf[..n])
        .expect("what the client sealed opens");
    // All but the CRC, which opening computes afresh (under `cfg(fuzzing)` a wrong one parses).
    let body = data.len() - crate::wire::CRC_LEN;
    assert_eq!(
        &opened[..body],
        &data[..body],
        "a datagram opens to other bytes than were sealed"
    );
    assert_eq!(server.open(&buf[..n]), Err(OpenError::Replayed));
}

/// Sealed compact datagrams (version 4, docs/PROTOCOL.md section 2.5) on arbitrary bytes: opening
/// never panics and never opens a forgery; what opens is a compact datagram, once; a compact
/// datagram sealed opens to itself under the number it was sealed with. (Called by [`sealed`].)
fn sealed_compact(data: &[u8]) {
    use crate::seal::{OpenError, SEAL_OVERHEAD, Sealer};
    use crate::wire::{CRC_LEN, CompactContext, Datagram};
    let sample = crate::samples::seal_sample();
    let keys = |server| sample.session_keys(server);
    let mut server = Sealer::new(&keys(true));
    let mut copy = data.to_vec();
    if let Ok((n, pn)) = server.open_compact_in_place(&mut copy) {
        copy.truncate(n + CRC_LEN);
        let opened = Bytes::from(copy);
        assert!(
            Datagram::parse_compact_opened(opened, &CompactContext::default(), pn).is_ok(),
            "an opened datagram does not parse"
        );
        assert_eq!(
            server.open_compact_in_place(&mut data.to_vec()),
            Err(OpenError::Replayed),
            "a datagram opened twice"
        );
    }
    let Ok(plain) = Datagram::parse_compact_unverified(
        Bytes::copy_from_slice(data),
        &CompactContext::default(),
    ) else {
        return;
    };
    let pn = plain.header.packet_number;
    let mut buf = alloc::vec![0u8; data.len() + SEAL_OVERHEAD];
    buf[..data.len()].copy_from_slice(data);
    let mut client = Sealer::new(&keys(false));
    let Some(n) = client.seal_compact(&mut buf, data.len(), pn) else {
        return;
    };
    let mut server = Sealer::new(&keys(true));
    let mut sealed = buf[..n].to_vec();
    let (opened, restored) = server
        .open_compact_in_place(&mut sealed)
        .expect("what the client sealed opens");
    assert_eq!(
        restored, pn,
        "a fresh receiver restores the number it was sealed with"
    );
    let body = data.len() - CRC_LEN;
    assert_eq!(opened, body);
    assert_eq!(
        &sealed[..body],
        &data[..body],
        "a datagram opens to other bytes than were sealed"
    );
    assert_eq!(
        server.open_compact_in_place(&mut buf[..n]),
        Err(OpenError::Replayed)
    );
}

/// Runs `check` on every file of a committed fuzz corpus (`dir`), so its inputs are regression
/// tests on stable. Panics naming the first input whose check fails, or if the corpus holds
/// fewer than three inputs (a path gone wrong).
#[cfg(feature = "std")]
pub fn replay_corpus(dir: &std::path::Path, check: fn(&[u8])) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.expect("a corpus entry").path();
        let data = std::fs::read(&path).expect("a corpus input");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "corpus input {} fails its check",
            path.display()
        );
        count += 1;
    }
    assert!(
        count >= 3,
        "corpus {} has only {count} inputs",
        dir.display()
    );
}
