//! `framewire inspect DIR`: the records of a server's data directory (docs/PROTOCOL.md section 10),
//! segment by segment, read-only: nothing is cut, removed or locked, so it is safe on the
//! directory of a running server. A bad record is named with its offset and ends its segment.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use framewire_protocol::wire::MAX_FRAME_LEN_CEILING;
use framewire_server::store::scan::record_at;
use framewire_server::store::segment::{self, HEADER_LEN, Header};
use framewire_server::store::{Record, SessionRecord};

/// One record as a line of text. A queued record for an id already seen is a delivery
/// (section 10.3).
fn describe(record: &Record, seen: &mut HashSet<u64>) -> String {
    match record {
        Record::Queued {
            id,
            queue,
            deliveries,
            ..
        } if !seen.insert(*id) => {
            format!("delivered  queue {queue} id {id}, {deliveries} deliveries so far")
        }
        Record::Queued {
            id,
            queue,
            deliveries,
            payload,
        } => format!(
            "queued     queue {queue} id {id}, {deliveries} deliveries, {} B payload",
            payload.len()
        ),
        Record::Delivered {
            id,
            queue,
            deliveries,
        } => format!("delivered  queue {queue} id {id}, {deliveries} deliveries so far"),
        Record::Removed { id, queue } if queue.is_empty() => {
            format!("mark       largest delivery id {id}")
        }
        Record::Removed { id, queue } => format!("removed    queue {queue} id {id}"),
        Record::Retained {
            channel,
            topic,
            payload,
        } if payload.is_empty() => format!("unretained topic {topic} (channel {channel})"),
        Record::Retained {
            channel,
            topic,
            payload,
        } => format!(
            "retained   topic {topic} (channel {channel}), {} B payload",
            payload.len()
        ),
        Record::Session(s) => describe_session(s),
    }
}

fn describe_session(record: &SessionRecord) -> String {
    let key = record.key();
    let list = |filters: &[framewire_protocol::wire::Text]| {
        filters
            .iter()
            .map(framewire_protocol::wire::Text::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    };
    match record {
        SessionRecord::Opened { identity, will, .. } => format!(
            "session    {key:016x} opened{}{}",
            identity
                .as_ref()
                .map_or(String::new(), |i| format!(", identity {i}")),
            will.as_ref()
                .map_or(String::new(), |w| format!(", will on {}", w.topic))
        ),
        SessionRecord::Subscribed { filters, .. } => {
            format!("session    {key:016x} subscribed {}", list(filters))
        }
        SessionRecord::Unsubscribed { filters, .. } => {
            format!("session    {key:016x} unsubscribed {}", list(filters))
        }
        SessionRecord::Parked { at_ms, .. } => {
            format!("session    {key:016x} parked at {at_ms} ms since the epoch")
        }
        SessionRecord::Kept { message, .. } => format!(
            "session    {key:016x} kept a message on {} (channel {}), {} B payload",
            message.topic,
            message.channel,
            message.payload.len()
        ),
        SessionRecord::Ended { .. } => format!("session    {key:016x} ended"),
    }
}

/// Lists `dir`'s segments and records into text; whether every record read clean.
pub(crate) fn listing(dir: &Path) -> Result<(String, bool), String> {
    let mut names: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str().and_then(segment::number_of)?;
            Some((n, e.path()))
        })
        .collect();
    names.sort();
    let mut out = String::new();
    let mut clean = true;
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut seen = HashSet::new();
    for (_, path) in &names {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        bytes += data.len() as u64;
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let header = match Header::parse(&data) {
            Ok(h) => h,
            Err(e) => {
                let _ = writeln!(out, "{name}: {e}");
                clean = false;
                continue;
            }
        };
        let _ = writeln!(
            out,
            "{name}: format version {}{}, {} bytes",
            header.version,
            if header.snapshot {
                ", begins with a snapshot"
            } else {
                ""
            },
            data.len()
        );
        let body = &data[HEADER_LEN..];
        let mut pos = 0;
        while pos < body.len() {
            match record_at(body, pos, MAX_FRAME_LEN_CEILING) {
                Ok((record, next)) => {
                    let _ = writeln!(
                        out,
                        "  {:>10}  {}",
                        pos + HEADER_LEN,
                        describe(&record, &mut seen)
                    );
                    records += 1;
                    pos = next;
                }
                Err(fault) => {
                    let _ = writeln!(
                        out,
                        "  {:>10}  bad record ({fault}): the {} bytes from here are not read",
                        pos + HEADER_LEN,
                        body.len() - pos
                    );
                    clean = false;
                    break;
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "{} segments, {bytes} bytes, {records} records{}",
        names.len(),
        if clean {
            ""
        } else {
            "; damaged (the server cuts a torn tail at start-up, and refuses corruption in the middle)"
        }
    );
    Ok((out, clean))
}

pub(crate) fn run(dir: &Path) -> ExitCode {
    match listing(dir) {
        Ok((text, clean)) => {
            print!("{text}");
            if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("framewire inspect: {e}");
            ExitCode::FAILURE
        }
    }
}
