//! `framewire decode HEX...`: what a frame or datagram says, field by field.

use std::fmt::Write as _;
use std::process::ExitCode;

use bytes::Bytes;
use framewire_protocol::wire::{
    Datagram, Frame, MAGIC, MAX_FRAME_LEN_CEILING, decode_stream_frame,
};

pub(crate) fn run(args: &[String]) -> ExitCode {
    let hex: String = args.concat();
    let bytes = match parse_hex(&hex) {
        Ok(b) if !b.is_empty() => b,
        Ok(_) => {
            eprintln!(
                "framewire decode: give the bytes in hex, e.g. framewire decode 00 00 00 10 01 10 ..."
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("framewire decode: {e}");
            return ExitCode::from(2);
        }
    };
    let result = if bytes.starts_with(&MAGIC) {
        decode_datagram(&bytes)
    } else {
        decode_stream_frame(&bytes, MAX_FRAME_LEN_CEILING)
            .map(|f| describe("stream frame", &f))
            .map_err(|e| format!("not a valid stream frame: {e}"))
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("framewire decode: {e}");
            ExitCode::FAILURE
        }
    }
}

fn decode_datagram(bytes: &[u8]) -> Result<String, String> {
    let d = Datagram::parse(Bytes::copy_from_slice(bytes))
        .map_err(|e| format!("not a valid datagram: {e}"))?;
    // Writing into a String cannot fail; the results of writeln! are ignored for that reason.
    let mut out = String::new();
    let _ = writeln!(
        out,
        "datagram: connection id {:#018x}, packet {}",
        d.header.connection_id, d.header.packet_number
    );
    if let Some(ack) = d.header.ack {
        let acked: Vec<String> = ack.acked().map(|n| n.to_string()).collect();
        let _ = writeln!(
            out,
            "  acks packets {} (delay {} µs)",
            acked.join(", "),
            ack.delay_us
        );
    }
    for (i, body) in d.frames().enumerate() {
        match Frame::parse(body) {
            Ok(f) => out.push_str(&describe(&format!("  frame {i}"), &f)),
            Err(e) => {
                let _ = writeln!(out, "  frame {i}: undecodable: {e}");
            }
        }
    }
    Ok(out)
}

fn describe(label: &str, f: &Frame) -> String {
    let seq = f.seq.map(|s| format!(", seq {s}")).unwrap_or_default();
    format!(
        "{label}: {} on channel {}{seq}\n    {:?}\n",
        f.kind(),
        f.channel,
        f.body
    )
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).map_err(|_| "not hex".to_string())?;
            u8::from_str_radix(text, 16).map_err(|_| format!("{text:?} is not a hex byte"))
        })
        .collect()
}
