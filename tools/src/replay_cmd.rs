//! `framewire replay FILE --target ADDR`: the client sessions of a capture, re-created against a
//! server and compared with what the captured server answered.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use framewire_tools::replay::{Pace, ReplayConfig, Report, ScriptBuilder, replay};

use crate::inspect::{carrier, json_string, scan};

/// Differences listed in the text report; the JSON lists them all.
const DIFFERENCES_SHOWN: usize = 50;

pub(crate) struct ReplayArgs<'a> {
    pub(crate) file: &'a str,
    pub(crate) port: u16,
    pub(crate) target: SocketAddr,
    pub(crate) pace: Pace,
    pub(crate) timeout: Duration,
    pub(crate) json: bool,
    /// `--token`: every replayed Hello carries it instead of the captured one.
    pub(crate) token: Option<Vec<u8>>,
    /// `--keys`: the replayed UDP sessions are sealed with them.
    pub(crate) seal_keys: Option<framewire_protocol::seal::TokenKeys>,
}

pub(crate) fn run(args: &ReplayArgs) -> ExitCode {
    // The script is built as the capture is read: its frames are kept, the packets are not.
    let mut builder = ScriptBuilder::default();
    let scanned = scan(args.file, args.port, &mut |records, connections| {
        for record in records {
            builder.record(record, connections);
        }
    });
    let scanned = match scanned {
        Ok(s) => s,
        Err(e) => {
            eprintln!("framewire replay: {e}");
            return ExitCode::FAILURE;
        }
    };
    scanned.warn("replay", args.file);
    let script = builder.finish(scanned.inspection.connections.len());
    let config = ReplayConfig {
        target: args.target,
        pace: args.pace,
        timeout: args.timeout,
        token: args.token.clone().map(bytes::Bytes::from),
        seal_keys: args.seal_keys.clone(),
    };
    let mut bar = ProgressBar::new(!args.json && std::io::stderr().is_terminal());
    let result = replay(&script, &config, &mut |done, total| bar.show(done, total));
    bar.clear();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("framewire replay: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{}", to_json(&report));
    } else {
        print!("{}", to_text(&report, &args.target));
    }
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A one-line bar on stderr, redrawn at most ten times a second; nothing when not on a terminal.
struct ProgressBar {
    on: bool,
    last: Option<Instant>,
}

impl ProgressBar {
    fn new(on: bool) -> Self {
        Self { on, last: None }
    }

    fn show(&mut self, done: usize, total: usize) {
        if !self.on
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(Instant::now());
        let width = 40;
        let filled = (done * width).checked_div(total).unwrap_or(width);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {done}/{total} steps",
            "#".repeat(filled),
            ".".repeat(width - filled)
        );
        let _ = err.flush();
    }

    fn clear(&self) {
        if self.on && self.last.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

/// p50, p99, p999 and max, in microseconds; `None` without samples.
fn percentiles(report: &Report) -> Option<[u64; 4]> {
    let h = &report.latency_us;
    (!h.is_empty()).then(|| {
        [
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
        ]
    })
}

fn to_text(report: &Report, target: &SocketAddr) -> String {
    let mut out = String::new();
    let t = &report.tally;
    let _ = writeln!(
        out,
        "replayed {} sessions against {target} in {:.2} s ({} connections without a captured Hello skipped, {} sessions could not open a socket)",
        report.sessions,
        report.elapsed.as_secs_f64(),
        report.skipped_connections,
        report.sessions_not_opened
    );
    let _ = writeln!(
        out,
        "frames sent: {} ({} not sent: their session had ended or refused them)",
        report.frames_sent, report.frames_not_sent
    );
    let _ = writeln!(
        out,
        "server frames: {} expected, {} matched, {} mismatched, {} missing, {} unexpected",
        t.expected, t.matched, t.mismatched, t.missing, t.unexpected
    );
    if t.after_vanish > 0 {
        let _ = writeln!(
            out,
            "not compared: {} frames after the end of sessions whose captured client vanished (answers to what the captured server had not read)",
            t.after_vanish
        );
    }
    match percentiles(report) {
        Some([p50, p99, p999, max]) => {
            let _ = writeln!(
                out,
                "latency to a response or echo: p50 {p50} us, p99 {p99} us, p999 {p999} us, max {max} us ({} answers)",
                report.latency_us.len()
            );
        }
        None => {
            let _ = writeln!(out, "latency to a response or echo: none answered");
        }
    }
    if !report.differences.is_empty() {
        let _ = writeln!(out, "differences:");
        for (client, c, d) in report.differences.iter().take(DIFFERENCES_SHOWN) {
            let _ = writeln!(
                out,
                "  session {} ({} from {client}): {}",
                d.session,
                carrier(*c),
                d.what
            );
        }
        if report.differences.len() > DIFFERENCES_SHOWN {
            let _ = writeln!(
                out,
                "  ... and {} more (--json lists them all)",
                report.differences.len() - DIFFERENCES_SHOWN
            );
        }
    }
    out
}

fn to_json(report: &Report) -> String {
    let t = &report.tally;
    let mut out = format!(
        "{{\"sessions\":{},\"skipped_connections\":{},\"sessions_not_opened\":{},\"frames_sent\":{},\"frames_not_sent\":{},\"expected\":{},\"matched\":{},\"mismatched\":{},\"missing\":{},\"unexpected\":{},\"after_vanish\":{},\"elapsed_s\":{:.3},\"latency_us\":",
        report.sessions,
        report.skipped_connections,
        report.sessions_not_opened,
        report.frames_sent,
        report.frames_not_sent,
        t.expected,
        t.matched,
        t.mismatched,
        t.missing,
        t.unexpected,
        t.after_vanish,
        report.elapsed.as_secs_f64()
    );
    match percentiles(report) {
        Some([p50, p99, p999, max]) => {
            let _ = write!(
                out,
                "{{\"samples\":{},\"p50\":{p50},\"p99\":{p99},\"p999\":{p999},\"max\":{max}}}",
                report.latency_us.len()
            );
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"differences\":[");
    for (i, (client, c, d)) in report.differences.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"session\":{},\"transport\":\"{}\",\"client\":\"{client}\",\"what\":{}}}",
            d.session,
            carrier(*c),
            json_string(&d.what)
        );
    }
    out.push_str("]}");
    out
}
