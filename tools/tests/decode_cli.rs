//! `framewire decode` run as a binary.

mod common;

use common::framewire;

#[test]
fn decodes_the_spec_ping_vector() {
    let (code, out, _) = framewire(&[
        "decode",
        "00 00 00 10 01 10 00 00 00 00 00 00 00 0f 42 40 f1 49 65 e1",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("Ping on channel 0"), "{out}");
    assert!(out.contains("timestamp_us: 1000000"), "{out}");
}

#[test]
fn decodes_the_spec_datagram_vector() {
    let hex = "46 57 01 00 11 22 33 44 55 66 77 88 00 00 00 05 00 0a 20 80 01 00 00 00 07 70 6f 73 00 0b 10 00 00 00 00 00 00 00 0f 42 40 9c d3 f9 a1";
    let (code, out, _) = framewire(&["decode", hex]);
    assert_eq!(code, 0);
    assert!(out.contains("packet 5"), "{out}");
    assert!(out.contains("Data on channel 1, seq 7"), "{out}");
    assert!(out.contains("Ping on channel 0"), "{out}");
}

#[test]
fn bad_input_is_one_line_and_a_non_zero_exit() {
    let (code, _, err) = framewire(&[
        "decode",
        "00 00 00 10 01 10 00 00 00 00 00 00 00 0f 42 40 f1 49 65 e2",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("checksum mismatch"), "{err}");
    let (code, _, err) = framewire(&["decode", "zz"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a hex byte"), "{err}");
    let (code, _, _) = framewire(&["frobnicate"]);
    assert_eq!(code, 2);
}
