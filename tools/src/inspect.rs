//! `framewire inspect FILE`: every framewire frame in a pcap or pcapng capture, then a summary.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, Write};
use std::process::ExitCode;

use framewire_protocol::wire::MAX_FRAME_LEN_CEILING;
use framewire_tools::capture::{
    Carrier, Connection, Direction, Inspection, Record, Seen, frame_status, frame_subject,
    scan_capture,
};

pub(crate) fn run(file: &str, port: u16, json: bool) -> ExitCode {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut printed = 0u64;
    if json {
        let _ = out.write_all(b"{\"records\":[");
    }
    // Each record is printed as soon as it is made: memory is what reassembly holds, however
    // long the capture.
    let scanned = scan(file, port, &mut |records, connections| {
        for record in records {
            let line = if json {
                let comma = if printed == 0 { "" } else { "," };
                format!("{comma}{}", record_json(record))
            } else {
                record_text(record, connections)
            };
            printed += 1;
            let _ = out.write_all(line.as_bytes());
        }
    });
    let scanned = match scanned {
        Ok(s) => s,
        Err(e) => {
            eprintln!("framewire inspect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tail = if json {
        json_tail(&scanned.inspection, scanned.damaged.as_deref())
    } else {
        summary_text(&scanned.inspection)
    };
    let _ = out.write_all(tail.as_bytes());
    let _ = out.flush();
    scanned.warn("inspect", file);
    ExitCode::SUCCESS
}

/// A capture file, read and inspected, its records handed on as they were made.
pub(crate) struct Scanned {
    /// The connections and the summary (no records: they went to the caller).
    pub(crate) inspection: Inspection,
    /// Why reading stopped early, if it did.
    pub(crate) damaged: Option<String>,
}

impl Scanned {
    /// Tells the operator, on stderr, that the file was damaged, if it was.
    pub(crate) fn warn(&self, command: &str, file: &str) {
        if let Some(damage) = &self.damaged {
            eprintln!(
                "framewire {command}: {file}: reading stopped after {} packets: {damage}",
                self.inspection.summary.packets
            );
        }
    }
}

/// Reads `file` packet by packet and inspects it for framewire traffic on `port`, handing each
/// packet's records to `each` as soon as they are made, with the connections they name.
pub(crate) fn scan(
    file: &str,
    port: u16,
    each: &mut dyn FnMut(&[Record], &[Connection]),
) -> Result<Scanned, String> {
    let f = File::open(file).map_err(|e| format!("{file}: {e}"))?;
    let (inspection, damaged) = scan_capture(
        BufReader::with_capacity(1 << 20, f),
        port,
        MAX_FRAME_LEN_CEILING,
        each,
    )
    .map_err(|e| format!("{file}: {e}"))?;
    Ok(Scanned {
        inspection,
        damaged,
    })
}

fn arrow(d: Direction) -> &'static str {
    match d {
        Direction::ToServer => "->",
        Direction::ToClient => "<-",
    }
}

pub(crate) fn carrier(c: Carrier) -> &'static str {
    match c {
        Carrier::Tcp => "tcp",
        Carrier::Udp => "udp",
    }
}

fn describe(record: &Record) -> String {
    match &record.what {
        Seen::Frame { frame, wire_len } => {
            let mut s = format!("{} ch {} {wire_len} B", frame.kind(), frame.channel);
            if let Some(seq) = frame.seq {
                let _ = write!(s, " seq {seq}");
            }
            if let Some(subject) = frame_subject(frame) {
                let _ = write!(s, " {subject:?}");
            }
            if let Some(status) = frame_status(frame) {
                let _ = write!(s, " {status}");
            }
            s
        }
        Seen::Bad(why) => format!("bad frame: {why}"),
        Seen::Skipped(n) => format!("skipped {n} B looking for a frame"),
        Seen::Gap(n) => format!("{n} B missing from the capture"),
        Seen::End => "end of stream (FIN)".to_string(),
        Seen::Run {
            datagrams,
            segment_len,
        } => format!(
            "one packet holding {datagrams} datagrams of {segment_len} B (sent in one call: segmentation offload)"
        ),
        Seen::Sealed {
            connection_id,
            packet_number,
            len,
        } => format!(
            "sealed datagram, session {connection_id:016x}, packet {packet_number}, {len} B (its frames need the session's keys)"
        ),
    }
}

fn record_text(record: &Record, connections: &[Connection]) -> String {
    let Some(c) = connections.get(record.connection) else {
        return String::new();
    };
    format!(
        "{:.6} #{} {} {} {} {}  {}\n",
        record.time.as_secs_f64(),
        record.connection,
        carrier(c.carrier),
        c.client,
        arrow(record.direction),
        c.server,
        describe(record)
    )
}

fn summary_text(inspection: &Inspection) -> String {
    let mut out = String::new();
    let s = &inspection.summary;
    let frames: u64 = s.frames_by_kind.values().sum();
    let _ = writeln!(
        out,
        "\n{} packets ({} cut short, {} other traffic, {} undecodable); {} connections",
        s.packets,
        s.cut_packets,
        s.other_packets,
        s.undecodable_packets,
        inspection.connections.len()
    );
    let kinds: Vec<String> = s
        .frames_by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let _ = writeln!(out, "{frames} frames: {}", kinds.join(", "));
    let _ = writeln!(
        out,
        "{} bad frames, {} bytes skipped, {} bytes missing",
        s.bad_frames, s.skipped_bytes, s.missing_bytes
    );
    if s.runs > 0 {
        let _ = writeln!(
            out,
            "{} UDP packets each held a run of datagrams sent in one call, split into them",
            s.runs
        );
    }
    if s.sealed_datagrams > 0 {
        let _ = writeln!(
            out,
            "{} sealed datagrams (encrypted: only their headers are shown)",
            s.sealed_datagrams
        );
    }
    out
}

/// `s` as a JSON string, quotes included (the server's escaping, as its HTTP mapping writes it).
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    framewire_server::web::json::string(&mut out, s);
    out
}

fn record_json(r: &Record) -> String {
    let direction = match r.direction {
        Direction::ToServer => "to_server",
        Direction::ToClient => "to_client",
    };
    let mut out = format!(
        "{{\"time\":{:.6},\"connection\":{},\"direction\":\"{direction}\",",
        r.time.as_secs_f64(),
        r.connection
    );
    match &r.what {
        Seen::Frame { frame, wire_len } => {
            let _ = write!(
                out,
                "\"frame\":\"{}\",\"channel\":{},\"size\":{wire_len}",
                frame.kind(),
                frame.channel
            );
            if let Some(subject) = frame_subject(frame) {
                let _ = write!(out, ",\"subject\":{}", json_string(subject));
            }
            if let Some(status) = frame_status(frame) {
                let _ = write!(out, ",\"status\":{}", json_string(&status));
            }
        }
        Seen::Bad(why) => {
            let _ = write!(out, "\"bad\":{}", json_string(why));
        }
        Seen::Skipped(n) => {
            let _ = write!(out, "\"skipped\":{n}");
        }
        Seen::Gap(n) => {
            let _ = write!(out, "\"missing\":{n}");
        }
        Seen::End => out.push_str("\"end\":true"),
        Seen::Run {
            datagrams,
            segment_len,
        } => {
            let _ = write!(
                out,
                "\"run\":{{\"datagrams\":{datagrams},\"segment_len\":{segment_len}}}"
            );
        }
        Seen::Sealed {
            connection_id,
            packet_number,
            len,
        } => {
            let _ = write!(
                out,
                "\"sealed\":{{\"connection_id\":{connection_id},\"packet_number\":{packet_number},\"size\":{len}}}"
            );
        }
    }
    out.push('}');
    out
}

/// The end of the JSON document after its records: the connections and the summary.
fn json_tail(inspection: &Inspection, damaged: Option<&str>) -> String {
    let mut out = String::from("],\"connections\":[");
    for (i, c) in inspection.connections.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"id\":{i},\"transport\":\"{}\",\"client\":\"{}\",\"server\":\"{}\",\"from_start\":{}}}",
            carrier(c.carrier),
            c.client,
            c.server,
            c.from_start
        );
    }
    let s = &inspection.summary;
    let kinds: Vec<String> = s
        .frames_by_kind
        .iter()
        .map(|(k, n)| format!("{}:{n}", json_string(k)))
        .collect();
    let _ = writeln!(
        out,
        "],\"summary\":{{\"packets\":{},\"cut_packets\":{},\"other_packets\":{},\"undecodable_packets\":{},\"connections\":{},\"frames\":{{{}}},\"bad_frames\":{},\"skipped_bytes\":{},\"missing_bytes\":{},\"runs\":{},\"sealed_datagrams\":{},\"damaged\":{}}}}}",
        s.packets,
        s.cut_packets,
        s.other_packets,
        s.undecodable_packets,
        inspection.connections.len(),
        kinds.join(","),
        s.bad_frames,
        s.skipped_bytes,
        s.missing_bytes,
        s.runs,
        s.sealed_datagrams,
        damaged.map_or_else(|| "null".to_string(), json_string)
    );
    out
}
