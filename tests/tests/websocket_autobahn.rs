//! The Autobahn fuzzing client's cases of sections 1-7, 9 and 10, reproduced as raw frames against
//! the server's `/ws` (the suite itself needs Python 2). Autobahn expects an echo server; framewire's
//! echo is the Data frame (docs/PROTOCOL.md section 4.9), so where a case sends a binary message
//! this one sends a binary message carrying a Data frame with the case's payload and expects it
//! echoed. framewire takes binary messages only: where Autobahn expects a valid text message
//! echoed, the outcome here is close 1003 (and invalid UTF-8 is still 1007, found in the fragment
//! that breaks it). Each case names its Autobahn number.

use std::io::Write;

use bytes::Bytes;
use framewire_protocol::wire::{Frame, FrameBody, Hello, HelloOptions, MAX_FRAME_LEN_CEILING};
use framewire_server::ServerConfig;
use framewire_tests::websocket::{WsStream, masked_frame, opcode};
use framewire_tests::{DEADLINE, TestServer};

const MASK: Option<[u8; 4]> = Some([0x1a, 0x2b, 0x3c, 0x4d]);

/// What a case sends: frames, and how many bytes go per write (0: all in one).
struct Case {
    id: String,
    frames: Vec<Vec<u8>>,
    chop: usize,
    expect: Vec<Expect>,
}

/// What the server answers, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// A binary message carrying a Data frame with this payload.
    Echo(Vec<u8>),
    /// A pong with this payload.
    Pong(Vec<u8>),
    /// A close with this code, then the end of the TCP connection.
    Close(u16),
}

/// A binary message's payload that carries a Data frame: the version byte, the header, the bytes.
fn data(payload: &[u8]) -> Vec<u8> {
    let mut m = vec![1, 0x20, 0x00, 0x00];
    m.extend_from_slice(payload);
    m
}

fn frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    masked_frame(fin, op, payload, MASK)
}

fn binary(payload: &[u8]) -> Vec<u8> {
    frame(true, opcode::BINARY, &data(payload))
}

fn with_rsv(mut f: Vec<u8>, rsv: u8) -> Vec<u8> {
    f[0] |= rsv << 4;
    f
}

/// A Data message in fragments of `size` bytes (of the message), as continuation frames.
fn fragmented(payload: &[u8], size: usize) -> Vec<Vec<u8>> {
    let message = data(payload);
    let pieces: Vec<&[u8]> = message.chunks(size.max(1)).collect();
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let op = if i == 0 {
                opcode::BINARY
            } else {
                opcode::CONTINUATION
            };
            frame(i + 1 == pieces.len(), op, piece)
        })
        .collect()
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

fn case(id: &str, frames: Vec<Vec<u8>>, expect: Vec<Expect>) -> Case {
    Case {
        id: id.to_string(),
        frames,
        chop: 0,
        expect,
    }
}

fn chopped(mut c: Case, chop: usize) -> Case {
    c.chop = chop;
    c
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// Sections 1 and 2: framing and pings.
fn framing_and_pings() -> Vec<Case> {
    use Expect::{Close, Echo, Pong};
    let mut cases = Vec::new();
    for (i, len) in [0, 125, 126, 127, 128, 65535, 65536]
        .into_iter()
        .enumerate()
    {
        let text = vec![b'*'; len];
        cases.push(case(
            &format!("1.1.{}", i + 1),
            vec![frame(true, opcode::TEXT, &text)],
            vec![Close(1003)],
        ));
        // The Data header takes 4 bytes of the message: the payload is 4 shorter, so the
        // message is the case's length.
        let payload = pattern(len.saturating_sub(4));
        cases.push(case(
            &format!("1.2.{}", i + 1),
            vec![binary(&payload)],
            vec![Echo(payload)],
        ));
    }
    cases.push(chopped(
        case(
            "1.2.8",
            vec![binary(&pattern(65532))],
            vec![Echo(pattern(65532))],
        ),
        997,
    ));
    cases.push(case(
        "2.1",
        vec![frame(true, opcode::PING, b"")],
        vec![Pong(vec![])],
    ));
    cases.push(case(
        "2.2",
        vec![frame(true, opcode::PING, b"Hello, world!")],
        vec![Pong(b"Hello, world!".to_vec())],
    ));
    let bin = [0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff];
    cases.push(case(
        "2.3",
        vec![frame(true, opcode::PING, &bin)],
        vec![Pong(bin.to_vec())],
    ));
    cases.push(case(
        "2.4",
        vec![frame(true, opcode::PING, &[0xfe; 125])],
        vec![Pong(vec![0xfe; 125])],
    ));
    cases.push(case(
        "2.5",
        vec![frame(true, opcode::PING, &[0xfe; 126])],
        vec![Close(1002)],
    ));
    cases.push(chopped(
        case(
            "2.6",
            vec![frame(true, opcode::PING, &[0xfe; 125])],
            vec![Pong(vec![0xfe; 125])],
        ),
        1,
    ));
    cases.push(case("2.7", vec![frame(true, opcode::PONG, b"")], vec![]));
    cases.push(case(
        "2.8",
        vec![frame(true, opcode::PONG, b"unsolicited pong payload")],
        vec![],
    ));
    cases.push(case(
        "2.9",
        vec![
            frame(true, opcode::PONG, b"unsolicited pong payload"),
            frame(true, opcode::PING, b"ping payload"),
        ],
        vec![Pong(b"ping payload".to_vec())],
    ));
    let ten: Vec<_> = (0..10)
        .map(|i| frame(true, opcode::PING, format!("ping {i}").as_bytes()))
        .collect();
    let pongs: Vec<_> = (0..10)
        .map(|i| Pong(format!("ping {i}").into_bytes()))
        .collect();
    cases.push(case("2.10", ten.clone(), pongs.clone()));
    cases.push(chopped(case("2.11", ten, pongs), 1));
    cases
}

/// Sections 3 and 4: reserved bits and opcodes.
fn reserved_bits_and_opcodes() -> Vec<Case> {
    use Expect::{Close, Echo};
    let hello = b"Hello, world!";
    let mut cases = vec![
        case("3.1", vec![with_rsv(binary(hello), 1)], vec![Close(1002)]),
        case(
            "3.2",
            vec![
                binary(hello),
                with_rsv(binary(hello), 2),
                frame(true, opcode::PING, b""),
            ],
            vec![Echo(hello.to_vec()), Close(1002)],
        ),
        chopped(
            case(
                "3.3",
                vec![
                    binary(hello),
                    with_rsv(binary(hello), 3),
                    frame(true, opcode::PING, b""),
                ],
                vec![Echo(hello.to_vec()), Close(1002)],
            ),
            1,
        ),
        case("3.4", vec![with_rsv(binary(hello), 4)], vec![Close(1002)]),
        case(
            "3.5",
            vec![with_rsv(frame(true, opcode::BINARY, &data(&[0xff; 8])), 5)],
            vec![Close(1002)],
        ),
        case(
            "3.6",
            vec![with_rsv(frame(true, opcode::PING, hello), 6)],
            vec![Close(1002)],
        ),
        case(
            "3.7",
            vec![with_rsv(
                frame(true, opcode::CLOSE, &close_payload(1000, b"")),
                7,
            )],
            vec![Close(1002)],
        ),
    ];
    for (i, op) in [3u8, 4, 5, 6, 7].into_iter().enumerate() {
        cases.push(case(
            &format!("4.1.{}", i + 1),
            vec![
                binary(hello),
                frame(true, op, b"reserved"),
                frame(true, opcode::PING, b""),
            ],
            vec![Echo(hello.to_vec()), Close(1002)],
        ));
    }
    for (i, op) in [0xBu8, 0xC, 0xD, 0xE, 0xF].into_iter().enumerate() {
        cases.push(case(
            &format!("4.2.{}", i + 1),
            vec![
                binary(hello),
                frame(true, op, b"reserved"),
                frame(true, opcode::PING, b""),
            ],
            vec![Echo(hello.to_vec()), Close(1002)],
        ));
    }
    cases
}

/// Section 5: fragmentation.
#[allow(clippy::too_many_lines, reason = "a table of cases, one after another")]
fn fragmentation() -> Vec<Case> {
    use Expect::{Close, Echo, Pong};
    let message = data(b"fragment1fragment2");
    let (first, second) = message.split_at(13);
    let two = |op| {
        vec![
            frame(false, op, first),
            frame(true, opcode::CONTINUATION, second),
        ]
    };
    let payload = b"fragment1fragment2".to_vec();
    let mut cases = vec![
        case(
            "5.1",
            vec![
                frame(false, opcode::PING, b"fragment1"),
                frame(true, opcode::CONTINUATION, b"fragment2"),
            ],
            vec![Close(1002)],
        ),
        case(
            "5.2",
            vec![
                frame(false, opcode::PONG, b"fragment1"),
                frame(true, opcode::CONTINUATION, b"fragment2"),
            ],
            vec![Close(1002)],
        ),
        case("5.3", two(opcode::TEXT), vec![Close(1003)]),
        case("5.4", two(opcode::BINARY), vec![Echo(payload.clone())]),
        chopped(
            case("5.5", two(opcode::BINARY), vec![Echo(payload.clone())]),
            1,
        ),
        case(
            "5.6",
            vec![
                frame(false, opcode::BINARY, first),
                frame(true, opcode::PING, b"ping"),
                frame(true, opcode::CONTINUATION, second),
            ],
            vec![Pong(b"ping".to_vec()), Echo(payload.clone())],
        ),
        chopped(
            case(
                "5.8",
                vec![
                    frame(false, opcode::BINARY, first),
                    frame(true, opcode::PING, b"ping"),
                    frame(true, opcode::CONTINUATION, second),
                ],
                vec![Pong(b"ping".to_vec()), Echo(payload.clone())],
            ),
            1,
        ),
    ];
    for (id, fin) in [("5.9", true), ("5.12", false)] {
        cases.push(case(
            id,
            vec![
                frame(fin, opcode::CONTINUATION, b"non-continuation payload"),
                binary(b"Hello, world!"),
            ],
            vec![Close(1002)],
        ));
        let mut c = case(
            &format!("{id} chopped"),
            vec![
                frame(fin, opcode::CONTINUATION, b"non-continuation payload"),
                binary(b"Hello, world!"),
            ],
            vec![Close(1002)],
        );
        c.chop = 1;
        cases.push(c);
    }
    cases.push(case(
        "5.15",
        vec![
            frame(false, opcode::BINARY, first),
            frame(true, opcode::CONTINUATION, second),
            frame(false, opcode::CONTINUATION, b"fragment3"),
            frame(true, opcode::BINARY, &data(b"fragment4")),
        ],
        vec![Echo(payload.clone()), Close(1002)],
    ));
    cases.push(case(
        "5.16",
        vec![
            frame(false, opcode::CONTINUATION, b"fragment1"),
            frame(false, opcode::BINARY, first),
            frame(true, opcode::CONTINUATION, second),
        ],
        vec![Close(1002)],
    ));
    cases.push(case(
        "5.18",
        vec![
            frame(false, opcode::BINARY, first),
            frame(true, opcode::BINARY, second),
        ],
        vec![Close(1002)],
    ));
    // 5.19-5.20: a message in five fragments, with pings between, arriving over time.
    let long = data(b"fragment1fragment2fragment3fragment4fragment5");
    let pieces: Vec<&[u8]> = long.chunks(10).collect();
    let mut frames = Vec::new();
    let mut expect = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let op = if i == 0 {
            opcode::BINARY
        } else {
            opcode::CONTINUATION
        };
        frames.push(frame(i + 1 == pieces.len(), op, piece));
        if i + 1 < pieces.len() {
            frames.push(frame(true, opcode::PING, format!("pongme {i}").as_bytes()));
            expect.push(Pong(format!("pongme {i}").into_bytes()));
        }
    }
    expect.push(Echo(
        b"fragment1fragment2fragment3fragment4fragment5".to_vec(),
    ));
    cases.push(case("5.19", frames.clone(), expect.clone()));
    cases.push(chopped(case("5.20", frames, expect), 3));
    cases
}

/// Section 6: UTF-8 in text messages (answered 1003 when valid, 1007 when not).
fn utf8() -> Vec<Case> {
    use Expect::Close;
    let valid: [&[u8]; 6] = [
        b"",
        "\u{3ba}\u{1f79}\u{3c3}\u{3bc}\u{3b5}".as_bytes(),
        "\u{0}".as_bytes(),
        "\u{7ff}".as_bytes(),
        "\u{ffff}".as_bytes(),
        "\u{10ffff}".as_bytes(),
    ];
    let invalid: [&[u8]; 9] = [
        &[
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80,
        ],
        &[0x80],
        &[0xc0, 0xaf],
        &[0xe0, 0x80, 0xaf],
        &[0xf4, 0x90, 0x80, 0x80],
        &[0xed, 0xa0, 0x80],
        &[0xfe],
        &[0xc0],
        &[0xef, 0xbf],
    ];
    let mut cases = Vec::new();
    for (i, text) in valid.iter().enumerate() {
        cases.push(case(
            &format!("6.2-6.x valid {}", i + 1),
            vec![frame(true, opcode::TEXT, text)],
            vec![Close(1003)],
        ));
    }
    for (i, text) in invalid.iter().enumerate() {
        cases.push(case(
            &format!("6.3-6.x invalid {}", i + 1),
            vec![frame(true, opcode::TEXT, text)],
            vec![Close(1007)],
        ));
        // The same bytes one to a fragment: the fragment that breaks the text is refused.
        let mut frames: Vec<Vec<u8>> = text
            .iter()
            .enumerate()
            .map(|(j, b)| {
                let op = if j == 0 {
                    opcode::TEXT
                } else {
                    opcode::CONTINUATION
                };
                frame(false, op, &[*b])
            })
            .collect();
        frames.push(frame(true, opcode::CONTINUATION, b""));
        cases.push(chopped(
            case(
                &format!("6.4-6.x invalid {} in fragments", i + 1),
                frames,
                vec![Close(1007)],
            ),
            1,
        ));
    }
    cases
}

/// Section 7: close handling.
#[allow(clippy::too_many_lines, reason = "a table of cases, one after another")]
fn closing() -> Vec<Case> {
    use Expect::{Close, Echo};
    let hello = b"Hello World!";
    let mut cases = vec![
        case(
            "7.1.1",
            vec![
                binary(hello),
                frame(true, opcode::CLOSE, &close_payload(1000, b"")),
            ],
            vec![Echo(hello.to_vec()), Close(1000)],
        ),
        case(
            "7.1.2",
            vec![
                frame(true, opcode::CLOSE, &close_payload(1000, b"")),
                frame(true, opcode::CLOSE, &close_payload(1000, b"")),
            ],
            vec![Close(1000)],
        ),
        case(
            "7.1.3",
            vec![
                frame(true, opcode::CLOSE, &close_payload(1000, b"")),
                frame(true, opcode::PING, b"after close"),
            ],
            vec![Close(1000)],
        ),
        case(
            "7.1.4",
            vec![
                frame(true, opcode::CLOSE, &close_payload(1000, b"")),
                binary(hello),
            ],
            vec![Close(1000)],
        ),
        case(
            "7.1.5",
            vec![
                frame(false, opcode::BINARY, &data(b"fragment1")),
                frame(true, opcode::CLOSE, &close_payload(1000, b"")),
                frame(true, opcode::CONTINUATION, b"fragment2"),
            ],
            vec![Close(1000)],
        ),
        case(
            "7.1.6",
            vec![
                binary(&pattern(256 * 1024)),
                binary(hello),
                frame(true, opcode::CLOSE, &close_payload(1000, b"")),
            ],
            vec![Echo(pattern(256 * 1024)), Echo(hello.to_vec()), Close(1000)],
        ),
        case(
            "7.3.1",
            vec![frame(true, opcode::CLOSE, b"")],
            vec![Close(1000)],
        ),
        case(
            "7.3.2",
            vec![frame(true, opcode::CLOSE, b"a")],
            vec![Close(1002)],
        ),
        case(
            "7.3.3",
            vec![frame(true, opcode::CLOSE, &close_payload(1000, b""))],
            vec![Close(1000)],
        ),
        case(
            "7.3.4",
            vec![frame(
                true,
                opcode::CLOSE,
                &close_payload(1000, b"Hello World!"),
            )],
            vec![Close(1000)],
        ),
        case(
            "7.3.5",
            vec![frame(
                true,
                opcode::CLOSE,
                &close_payload(1000, &[b'*'; 123]),
            )],
            vec![Close(1000)],
        ),
        case(
            "7.3.6",
            vec![frame(
                true,
                opcode::CLOSE,
                &close_payload(1000, &[b'*'; 124]),
            )],
            vec![Close(1002)],
        ),
        case(
            "7.5.1",
            vec![frame(
                true,
                opcode::CLOSE,
                &close_payload(
                    1000,
                    &[
                        0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed,
                        0xa0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64,
                    ],
                ),
            )],
            vec![Close(1007)],
        ),
    ];
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        cases.push(case(
            &format!("7.7 code {code}"),
            vec![frame(true, opcode::CLOSE, &close_payload(code, b""))],
            vec![Close(code)],
        ));
    }
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999] {
        cases.push(case(
            &format!("7.9 code {code}"),
            vec![frame(true, opcode::CLOSE, &close_payload(code, b""))],
            vec![Close(1002)],
        ));
    }
    cases
}

/// Sections 9 and 10: large messages, in one frame, in fragments and in small writes; many small
/// messages; a long message echoed whatever its fragmentation.
fn limits() -> Vec<Case> {
    use Expect::{Close, Echo};
    let mut cases = Vec::new();
    for (i, len) in [
        64 << 10,
        256 << 10,
        1 << 20,
        4 << 20,
        8 << 20,
        (16 << 20) - 8,
    ]
    .into_iter()
    .enumerate()
    {
        cases.push(case(
            &format!("9.2.{}", i + 1),
            vec![binary(&pattern(len))],
            vec![Echo(pattern(len))],
        ));
    }
    cases.push(case(
        "9.1 text 64 KiB",
        vec![frame(true, opcode::TEXT, &vec![b'*'; 64 << 10])],
        vec![Close(1003)],
    ));
    for (i, size) in [
        64,
        256,
        1024,
        4096,
        16 << 10,
        64 << 10,
        256 << 10,
        1 << 20,
        4 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        cases.push(case(
            &format!("9.4.{}", i + 1),
            fragmented(&pattern(4 << 20), size),
            vec![Echo(pattern(4 << 20))],
        ));
    }
    for (i, chop) in [64, 128, 256, 512, 1024, 2048].into_iter().enumerate() {
        cases.push(chopped(
            case(
                &format!("9.6.{}", i + 1),
                vec![binary(&pattern(1 << 20))],
                vec![Echo(pattern(1 << 20))],
            ),
            chop,
        ));
    }
    for (i, len) in [0usize, 16, 64, 256, 1024, 4096].into_iter().enumerate() {
        let frames = (0..1000).map(|_| binary(&pattern(len))).collect();
        let expect = (0..1000).map(|_| Echo(pattern(len))).collect();
        cases.push(case(&format!("9.8.{}", i + 1), frames, expect));
    }
    cases.push(case(
        "9 above the limit",
        vec![binary(&pattern(16 << 20))],
        vec![Close(1009)],
    ));
    for size in [1usize, 7, 64, 1000, 65536] {
        cases.push(case(
            &format!("10.1.1 fragments of {size}"),
            fragmented(&pattern(65536), size),
            vec![Echo(pattern(65536))],
        ));
    }
    cases
}

/// Opens a WebSocket session that accepts the largest frames, and runs one case on it: what
/// arrives must be what the case expects, nothing else, in order.
fn run(server: &TestServer, c: &Case) {
    let mut ws = WsStream::connect_from([127, 0, 0, 1].into(), server.http_addr(), DEADLINE)
        .unwrap_or_else(|e| panic!("{}: {e}", c.id));
    let hello = Hello {
        max_frame_len: MAX_FRAME_LEN_CEILING,
        ..Hello::new(7, HelloOptions::new())
    };
    let welcome = ws
        .handshake_with(hello)
        .unwrap_or_else(|e| panic!("{}: {e}", c.id));
    assert!(matches!(welcome.body, FrameBody::Welcome(_)), "{}", c.id);
    let bytes: Vec<u8> = c.frames.concat();
    let chunk = if c.chop == 0 {
        bytes.len().max(1)
    } else {
        c.chop
    };
    // A writer thread: the server echoes while the case is still being sent.
    let mut writer = ws.try_clone_stream().expect("clone the socket");
    let sending = std::thread::spawn(move || {
        for piece in bytes.chunks(chunk) {
            if writer.write_all(piece).is_err() {
                // The server closed on a broken rule before everything was sent.
                return;
            }
        }
    });
    for want in &c.expect {
        let got = loop {
            let f = ws
                .recv_ws()
                .unwrap_or_else(|e| panic!("{}: waiting for {want:?}: {e}", c.id));
            // Heartbeats of the session are not the case's.
            if f.opcode == opcode::BINARY && f.payload.get(1) == Some(&0x10) {
                continue;
            }
            break f;
        };
        match want {
            Expect::Echo(payload) => {
                assert_eq!(got.opcode, opcode::BINARY, "{}", c.id);
                let frame = Frame::parse(Bytes::copy_from_slice(&got.payload[1..]))
                    .unwrap_or_else(|e| panic!("{}: {e}", c.id));
                let FrameBody::Data(d) = frame.body else {
                    panic!("{}: not a Data frame: {frame:?}", c.id);
                };
                assert!(d.payload[..] == payload[..], "{}: echo differs", c.id);
            }
            Expect::Pong(payload) => {
                assert_eq!(got.opcode, opcode::PONG, "{}", c.id);
                assert_eq!(&got.payload, payload, "{}", c.id);
            }
            Expect::Close(code) => {
                assert_eq!(got.close_code(), Some(*code), "{}: {got:?}", c.id);
                assert!(
                    ws.closes_within(DEADLINE),
                    "{}: the TCP connection stays",
                    c.id
                );
            }
        }
    }
    sending.join().expect("the writer");
    if !matches!(c.expect.last(), Some(Expect::Close(_))) {
        // Nothing else came before this ping's pong: the case had no answer the table misses.
        ws.send_ws(true, opcode::PING, b"end of case").unwrap();
        let f = ws.recv_ws().unwrap();
        assert_eq!(
            (f.opcode, f.payload.as_slice()),
            (opcode::PONG, &b"end of case"[..]),
            "{}: an unexpected answer",
            c.id
        );
    }
}

fn server() -> TestServer {
    TestServer::start(ServerConfig {
        max_frame_len: MAX_FRAME_LEN_CEILING,
        max_queued_bytes: 64 << 20,
        threads: 2,
        ..ServerConfig::default()
    })
}

fn run_all(cases: &[Case]) {
    eprintln!("{} cases", cases.len());
    let server = server();
    for c in cases {
        run(&server, c);
    }
}

#[test]
fn autobahn_1_and_2_framing_and_pings() {
    run_all(&framing_and_pings());
}

#[test]
fn autobahn_3_and_4_reserved_bits_and_opcodes() {
    run_all(&reserved_bits_and_opcodes());
}

#[test]
fn autobahn_5_fragmentation() {
    run_all(&fragmentation());
}

#[test]
fn autobahn_6_utf8() {
    run_all(&utf8());
}

#[test]
fn autobahn_7_closing() {
    run_all(&closing());
}

#[test]
fn autobahn_9_and_10_limits_and_fragment_sizes() {
    run_all(&limits());
}
