use super::*;
use proptest::prelude::*;

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

fn frame(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_client_frame(fin, opcode, payload, MASK, &mut out);
    out
}

/// What a decoder made of `bytes`, fed in pieces of `step` bytes: its messages, then its error.
fn decode_in_steps(bytes: &[u8], step: usize, limit: usize) -> (Vec<String>, Option<Violation>) {
    let mut decoder = Decoder::new(limit);
    let mut seen = Vec::new();
    let mut bytes = bytes.to_vec();
    for chunk in bytes.chunks_mut(step.max(1)) {
        let fed = decoder.feed(chunk, |m| seen.push(describe(&m)));
        if let Err(v) = fed {
            return (seen, Some(v));
        }
    }
    (seen, None)
}

fn describe(m: &Message<'_>) -> String {
    match m {
        Message::Binary(b) => format!("binary {b:?}"),
        Message::Text(t) => format!("text {t}"),
        Message::Ping(p) => format!("ping {p:?}"),
        Message::Pong(p) => format!("pong {p:?}"),
        Message::Close(c) => format!("close {c:?}"),
    }
}

fn decode(bytes: &[u8]) -> (Vec<String>, Option<Violation>) {
    decode_in_steps(bytes, bytes.len(), 1 << 20)
}

#[test]
fn the_rfc_examples_decode() {
    // RFC 6455 section 5.7: a masked "Hello", and an unmasked one (which a server refuses).
    let masked = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(decode(&masked), (vec!["text Hello".to_string()], None));
    let unmasked = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let (seen, err) = decode(&unmasked);
    assert!(seen.is_empty());
    assert_eq!(err.unwrap().code, close_code::PROTOCOL_ERROR);
    // The server's unmasked "Hello" is what the encoder writes.
    let mut out = Vec::new();
    encode_frame(Opcode::Text, b"Hello", &mut out);
    assert_eq!(out, unmasked);
}

#[test]
fn a_fragmented_message_with_a_ping_between_is_joined() {
    let mut bytes = frame(false, Opcode::Binary, b"ab");
    bytes.extend(frame(true, Opcode::Ping, b"p"));
    bytes.extend(frame(false, Opcode::Continuation, b""));
    bytes.extend(frame(true, Opcode::Continuation, b"cd"));
    let want = vec!["ping [112]".to_string(), "binary [97, 98, 99, 100]".into()];
    for step in 1..bytes.len() {
        assert_eq!(decode_in_steps(&bytes, step, 100), (want.clone(), None));
    }
}

#[test]
fn every_length_encoding_round_trips() {
    for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let (seen, err) = decode(&frame(true, Opcode::Binary, &payload));
        assert_eq!(err, None, "{len}");
        assert_eq!(seen, vec![format!("binary {payload:?}")], "{len}");
        let mut server = Vec::new();
        encode_frame(Opcode::Binary, &payload, &mut server);
        let header = match len {
            0..=125 => 2,
            126..=65_535 => 4,
            _ => 10,
        };
        assert_eq!(server.len(), header + len, "{len}");
    }
}

fn code_of(bytes: &[u8]) -> u16 {
    decode(bytes).1.expect("a violation").code
}

#[test]
fn each_broken_rule_names_its_close_code() {
    let mut rsv = frame(true, Opcode::Binary, b"x");
    rsv[0] |= 0x40;
    assert_eq!(code_of(&rsv), close_code::PROTOCOL_ERROR);
    let mut opcode = frame(true, Opcode::Binary, b"x");
    opcode[0] = 0x83;
    assert_eq!(code_of(&opcode), close_code::PROTOCOL_ERROR);
    let mut control_opcode = frame(true, Opcode::Binary, b"x");
    control_opcode[0] = 0x8B;
    assert_eq!(code_of(&control_opcode), close_code::PROTOCOL_ERROR);
    assert_eq!(
        code_of(&frame(true, Opcode::Ping, &[0; 126])),
        close_code::PROTOCOL_ERROR
    );
    assert_eq!(
        code_of(&frame(false, Opcode::Ping, b"")),
        close_code::PROTOCOL_ERROR
    );
    assert_eq!(
        code_of(&frame(true, Opcode::Continuation, b"x")),
        close_code::PROTOCOL_ERROR
    );
    let mut interleaved = frame(false, Opcode::Text, b"a");
    interleaved.extend(frame(true, Opcode::Text, b"b"));
    assert_eq!(code_of(&interleaved), close_code::PROTOCOL_ERROR);
    assert_eq!(
        code_of(&frame(true, Opcode::Close, &[3])),
        close_code::PROTOCOL_ERROR
    );
    for bad in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let payload = bad.to_be_bytes();
        assert_eq!(
            code_of(&frame(true, Opcode::Close, &payload)),
            close_code::PROTOCOL_ERROR,
            "{bad}"
        );
    }
    let mut bad_reason = 1000u16.to_be_bytes().to_vec();
    bad_reason.extend([0xFF, 0xFE]);
    assert_eq!(
        code_of(&frame(true, Opcode::Close, &bad_reason)),
        close_code::INVALID_PAYLOAD
    );
    assert_eq!(
        code_of(&frame(true, Opcode::Text, &[0xCE, 0xBA, 0xFF])),
        close_code::INVALID_PAYLOAD
    );
}

#[test]
fn a_close_with_a_code_and_reason_and_an_empty_one_are_read() {
    let mut payload = 1001u16.to_be_bytes().to_vec();
    payload.extend(b"bye");
    assert_eq!(
        decode(&frame(true, Opcode::Close, &payload)),
        (vec![r#"close Some((1001, "bye"))"#.to_string()], None)
    );
    assert_eq!(
        decode(&frame(true, Opcode::Close, b"")),
        (vec!["close None".to_string()], None)
    );
}

#[test]
fn an_oversized_message_is_refused_from_its_header() {
    // The header claims 1 MiB; nothing of the payload is sent, and no memory is set aside.
    let mut header = frame(true, Opcode::Binary, b"");
    header[1] = 0x80 | 127;
    header.splice(2..2, (1u64 << 20).to_be_bytes());
    let (seen, err) = decode_in_steps(&header, header.len(), 1000);
    assert!(seen.is_empty());
    assert_eq!(err.unwrap().code, close_code::MESSAGE_TOO_BIG);
    // Fragments count together.
    let mut pieces = frame(false, Opcode::Binary, &[0; 600]);
    pieces.extend(frame(true, Opcode::Continuation, &[0; 600]));
    assert_eq!(
        decode_in_steps(&pieces, 7, 1000).1.unwrap().code,
        close_code::MESSAGE_TOO_BIG
    );
    let mut top_bit = frame(true, Opcode::Binary, b"");
    top_bit[1] = 0x80 | 127;
    top_bit.splice(2..2, u64::MAX.to_be_bytes());
    assert_eq!(code_of(&top_bit), close_code::PROTOCOL_ERROR);
}

#[test]
fn invalid_utf8_fails_in_the_fragment_that_breaks_it() {
    // Autobahn 6.4.1: the first fragment is valid, the second breaks the text; the third never
    // needs to arrive.
    let mut bytes = frame(false, Opcode::Text, "κόσμε".as_bytes());
    bytes.extend(frame(
        false,
        Opcode::Continuation,
        &[0xF4, 0x90, 0x80, 0x80],
    ));
    let (seen, err) = decode_in_steps(&bytes, 1, 1000);
    assert!(seen.is_empty());
    assert_eq!(err.unwrap().code, close_code::INVALID_PAYLOAD);
    // A character cut between fragments is fine.
    let text = "κόσμε".as_bytes();
    let mut cut = frame(false, Opcode::Text, &text[..3]);
    cut.extend(frame(true, Opcode::Continuation, &text[3..]));
    assert_eq!(decode(&cut), (vec!["text κόσμε".to_string()], None));
    // A message that ends inside a character is not.
    assert_eq!(
        code_of(&frame(true, Opcode::Text, &text[..3])),
        close_code::INVALID_PAYLOAD
    );
}

#[test]
fn a_failed_decoder_stays_failed_and_gives_back_its_buffer() {
    let mut decoder = Decoder::new(1000);
    let mut bytes = frame(false, Opcode::Binary, &[1; 500]);
    decoder.feed(&mut bytes, |_| {}).unwrap();
    assert!(!decoder.is_idle());
    let mut bad = frame(true, Opcode::Continuation, &[1; 501]);
    assert!(decoder.feed(&mut bad, |_| {}).is_err());
    assert_eq!(decoder.message.capacity(), 0);
    let mut fine = frame(true, Opcode::Ping, b"");
    assert!(decoder.feed(&mut fine, |_| {}).is_err());
}

#[test]
fn a_close_reason_is_cut_at_a_character_boundary() {
    let mut out = Vec::new();
    encode_close(1000, &"é".repeat(100), &mut out);
    assert_eq!(out[1] as usize, out.len() - 2);
    assert!(out.len() - 2 <= MAX_CONTROL_PAYLOAD);
    let (seen, err) = decode(&{
        let mut masked = Vec::new();
        encode_client_frame(true, Opcode::Close, &out[2..], MASK, &mut masked);
        masked
    });
    assert_eq!(err, None);
    assert!(seen[0].starts_with("close Some((1000, \"éé"));
}

proptest! {
    #[test]
    fn any_bytes_in_any_pieces_give_messages_or_a_violation(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        step in 1usize..64,
    ) {
        let _ = decode_in_steps(&bytes, step, 256);
    }

    #[test]
    fn messages_come_out_as_they_went_in_however_the_bytes_are_cut(
        messages in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..300), 1usize..4), 1..6),
        step in 1usize..97,
        mask in any::<[u8; 4]>(),
    ) {
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        for (payload, pieces) in &messages {
            let size = payload.len().div_ceil(*pieces).max(1);
            let chunks: Vec<&[u8]> = if payload.is_empty() { vec![&[]] } else { payload.chunks(size).collect() };
            for (i, chunk) in chunks.iter().enumerate() {
                let opcode = if i == 0 { Opcode::Binary } else { Opcode::Continuation };
                encode_client_frame(i + 1 == chunks.len(), opcode, chunk, mask, &mut bytes);
            }
            want.push(format!("binary {payload:?}"));
        }
        prop_assert_eq!(decode_in_steps(&bytes, step, 4096), (want, None));
    }
}

proptest::proptest! {
    #[test]
    fn unmasking_by_words_is_unmasking_by_bytes(
        data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
        mask in proptest::prelude::any::<[u8; 4]>(),
        at in 0usize..16,
    ) {
        let mut fast = data.clone();
        unmask(&mut fast, mask, at);
        let slow: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ mask[(at + i) % 4]).collect();
        proptest::prop_assert_eq!(fast, slow);
    }
}
