//! Echo round trips side by side, over TCP and over UDP, on the same workloads, interleaved round
//! by round, each server pinned to core 0 and its load generator (one thread) to core 1.
//!
//! - TCP: framewire's server against the echo server most users would write first (tokio +
//!   tokio-util's `LengthDelimitedCodec`, the baseline) and a minimal raw mio echo (the ceiling).
//!   `framewire bench` drives all three: a framewire stream frame is a `LengthDelimitedCodec`
//!   frame (its u32 length counts the bytes after it), and it skips the handshake for the two
//!   echo servers (`--raw`).
//! - UDP: framewire's reliable and unreliable channels against ENet's reliable and unsequenced
//!   packets ([`super::enet`]), each driven by its own library's load generator.
//!
//! Each sample is one run of the generator against a freshly started server; the server's CPU
//! time per message comes from /proc.

use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::systems::{self, Running, Serves};
use super::table::{
    Section, json_field, json_number, json_string, millions_with_range, ratio_with_range,
};
use super::{median, range, round_ratios};

const SERVER_CORE: usize = 0;
const CLIENT_CORE: &str = "1";

/// A system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// framewire's server over TCP.
    FramewireTcp,
    /// framewire's server over TLS (TLS 1.3, rustls with ring), the same frames.
    FramewireTls,
    /// framewire's server over UDP, reliable channel, every datagram sealed (ChaCha20-Poly1305).
    FramewireSealed,
    /// framewire's server over UDP, on a reliable or an unreliable channel.
    FramewireUdp {
        /// Reliable-ordered (channel 0) or unreliable (channel 3).
        reliable: bool,
    },
    /// tokio + `LengthDelimitedCodec`.
    Tokio,
    /// The raw mio echo.
    Mio,
    /// ENet, reliable or unsequenced packets.
    Enet {
        /// `ENET_PACKET_FLAG_RELIABLE`, or `ENET_PACKET_FLAG_UNSEQUENCED`.
        reliable: bool,
    },
}

impl System {
    /// Its name in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::FramewireTcp => "framewire",
            Self::FramewireTls => "framewire over TLS",
            Self::FramewireSealed => "framewire reliable, sealed",
            Self::FramewireUdp { reliable: true } => "framewire reliable",
            Self::FramewireUdp { reliable: false } => "framewire unreliable",
            Self::Tokio => "tokio + LengthDelimitedCodec",
            Self::Mio => "raw mio echo",
            Self::Enet { reliable: true } => "ENet reliable",
            Self::Enet { reliable: false } => "ENet unsequenced",
        }
    }

    /// The framewire system this one is compared with (itself for framewire's).
    fn counterpart(self) -> Self {
        match self {
            Self::Tokio | Self::Mio => Self::FramewireTcp,
            Self::Enet { reliable } => Self::FramewireUdp { reliable },
            other => other,
        }
    }

    /// In the encryption comparison: the encrypted system each row is set against (plain rows
    /// against the encrypted one, ENet's against sealed UDP).
    fn encrypted_counterpart(self) -> Self {
        match self {
            Self::FramewireTcp => Self::FramewireTls,
            Self::FramewireUdp { .. } | Self::Enet { .. } => Self::FramewireSealed,
            other => other,
        }
    }

    pub(crate) fn start(self) -> io::Result<Running> {
        let addr = systems::free_addr()?;
        match self {
            Self::FramewireTcp | Self::FramewireUdp { .. } => {
                let udp = matches!(self, Self::FramewireUdp { .. });
                let args = vec![
                    "--tcp".into(),
                    addr.to_string(),
                    "--udp".into(),
                    if udp { addr.to_string() } else { "off".into() },
                    "--threads".into(),
                    "1".into(),
                ];
                start_framewire(&args, addr)
            }
            Self::FramewireTls => {
                let mut args = super::secure::tls_only_args(addr)?;
                args.extend(["--threads".into(), "1".into()]);
                start_framewire(&args, addr)
            }
            Self::FramewireSealed => {
                let m = super::secure::materials()?;
                let args = vec![
                    "--tcp".into(),
                    addr.to_string(),
                    "--udp".into(),
                    addr.to_string(),
                    "--token-key-file".into(),
                    m.token_key.to_string_lossy().into_owned(),
                    "--threads".into(),
                    "1".into(),
                ];
                start_framewire(&args, addr)
            }
            Self::Tokio => systems::start_program(
                &systems::sibling_binary("tokio_echo")?,
                &[addr.to_string()],
                SERVER_CORE,
                addr,
                Serves::Tcp,
            ),
            Self::Mio => systems::start_program(
                &systems::sibling_binary("mio_echo")?,
                &[addr.to_string()],
                SERVER_CORE,
                addr,
                Serves::Tcp,
            ),
            Self::Enet { .. } => {
                let (server, _) = super::enet::programs()?;
                systems::start_program(
                    &server,
                    &[addr.port().to_string()],
                    SERVER_CORE,
                    addr,
                    Serves::Udp,
                )
            }
        }
    }

    /// The load generator's command line against `server`.
    fn generator(self, server: &Running, w: &Workload, seconds: f64) -> io::Result<Command> {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", CLIENT_CORE]);
        if let Self::Enet { reliable } = self {
            let (_, client) = super::enet::programs()?;
            cmd.arg(client).args([
                server.addr.ip().to_string(),
                server.addr.port().to_string(),
                w.clients.to_string(),
                w.window.to_string(),
                w.size.to_string(),
                seconds.to_string(),
                (if reliable { "reliable" } else { "unreliable" }).to_string(),
            ]);
            return Ok(cmd);
        }
        let bench: PathBuf = systems::sibling_binary("framewire")?;
        cmd.arg(bench).args(["--server", &server.addr.to_string()]);
        match self {
            Self::FramewireTls => {
                cmd.arg("--ca").arg(&super::secure::materials()?.ca);
            }
            Self::FramewireSealed => {
                let m = super::secure::materials()?;
                cmd.args(["--udp", "--token", &m.token_hex])
                    .arg("--keys")
                    .arg(&m.keys);
            }
            _ => {}
        }
        cmd.args(["bench", "--json", "--threads", "1"])
            .args(["--clients", &w.clients.to_string()])
            .args(["--window", &w.window.to_string()])
            .args(["--size", &w.size.to_string()])
            .args(["--duration", &seconds.to_string()]);
        match self {
            Self::Tokio | Self::Mio => {
                cmd.arg("--raw");
            }
            Self::FramewireUdp { reliable } => {
                cmd.args([
                    "--udp",
                    "--channel",
                    if reliable { "reliable" } else { "unreliable" },
                ]);
            }
            Self::FramewireSealed => {
                cmd.args(["--channel", "reliable"]);
            }
            _ => {}
        }
        Ok(cmd)
    }
}

/// framewire's server with `args` (and no HTTP listener: a benchmark's servers share no port),
/// pinned to the server core, once it accepts on `addr`.
fn start_framewire(args: &[String], addr: std::net::SocketAddr) -> io::Result<Running> {
    let mut args = args.to_vec();
    args.extend(["--http".into(), "off".into()]);
    systems::start_program(
        &systems::framewire_binary()?,
        &args,
        SERVER_CORE,
        addr,
        Serves::Tcp,
    )
}

/// A load: how many clients, how many messages each keeps in flight, how large.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// For the tables.
    pub name: &'static str,
    /// Concurrent clients.
    pub clients: u32,
    /// Messages in flight per client.
    pub window: u32,
    /// Payload bytes.
    pub size: u32,
}

/// The workloads of both comparisons.
pub const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "ping-pong, 1 client x 1, 64 B",
        clients: 1,
        window: 1,
        size: 64,
    },
    Workload {
        name: "pipelined, 16 clients x 32, 64 B",
        clients: 16,
        window: 32,
        size: 64,
    },
    Workload {
        name: "pipelined, 16 clients x 8, 1 KiB",
        clients: 16,
        window: 8,
        size: 1024,
    },
];

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    msgs_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us_per_msg: f64,
    /// What the server and the generator did while the generator measured.
    window: Window,
}

fn run_one(system: System, w: &Workload, seconds: f64) -> io::Result<Sample> {
    let server = system.start()?;
    let cpu_before = server.cpu_time()?;
    let generator = system
        .generator(&server, w, seconds)?
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let window = watch(generator.id(), server.pid(), seconds);
    let out = generator.wait_with_output()?;
    let cpu = server.cpu_time()?.saturating_sub(cpu_before);
    let json = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "the load against {} failed: {}",
            system.name(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let get = |n| json_field(&json, n).ok_or_else(|| io::Error::other(format!("no {n} in {json}")));
    let msgs_per_s = get("msgs_per_s")?;
    // Both generators warm up for a fifth of the run (at most a second) before they measure.
    let total = seconds + warm_up(seconds);
    Ok(Sample {
        msgs_per_s,
        p50_us: get("p50_us")?,
        p99_us: get("p99_us")?,
        cpu_us_per_msg: cpu.as_secs_f64() * 1e6 / (msgs_per_s * total).max(1.0),
        window,
    })
}

/// How long both generators warm up before they measure: a fifth of the run, at most a second.
fn warm_up(seconds: f64) -> f64 {
    (seconds / 5.0).min(1.0)
}

/// What the two processes did over the generator's measured window, sampled from /proc a tenth of a
/// second inside each end of it (NaN where /proc cannot be read).
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    /// The share of one core the generator used: near 100 %, the row measures the generator as much
    /// as the server.
    generator_busy: f64,
    /// Sleeps per second of each side. The side that keeps going to sleep is the one the other
    /// wakes, and on loopback the waking is paid for inside the waker's send call: a server slower
    /// than its generator pays for waking it, one faster than its generator is woken for free.
    server_sleeps: f64,
    generator_sleeps: f64,
}

fn watch(generator: u32, server: u32, seconds: f64) -> Window {
    let margin = 0.1_f64.min(seconds / 4.0);
    std::thread::sleep(Duration::from_secs_f64(warm_up(seconds) + margin));
    let read = || {
        (
            systems::cpu_time_of(generator).ok(),
            systems::sleeps_of(generator).ok(),
            systems::sleeps_of(server).ok(),
        )
    };
    let before = read();
    let window = seconds - 2.0 * margin;
    std::thread::sleep(Duration::from_secs_f64(window));
    let after = read();
    let per_s = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / window,
        _ => f64::NAN,
    };
    Window {
        generator_busy: match (before.0, after.0) {
            (Some(a), Some(b)) => b.saturating_sub(a).as_secs_f64() / window,
            _ => f64::NAN,
        },
        generator_sleeps: per_s(before.1, after.1),
        server_sleeps: per_s(before.2, after.2),
    }
}

/// The TCP comparison: framewire, tokio, raw mio.
///
/// # Errors
/// A server or the load generator is missing or failed.
pub fn compare_tcp(rounds: usize, seconds: f64) -> io::Result<Section> {
    compare(
        "TCP echo",
        &[System::FramewireTcp, System::Tokio, System::Mio],
        rounds,
        seconds,
    )
}

/// The UDP comparison: framewire's reliable and unreliable channels, and ENet's (skipped, with a
/// note, where ENet cannot be built).
///
/// # Errors
/// framewire's server or load generator is missing or failed.
pub fn compare_udp(rounds: usize, seconds: f64) -> io::Result<Section> {
    let mut systems = vec![
        System::FramewireUdp { reliable: true },
        System::FramewireUdp { reliable: false },
    ];
    let mut title = "UDP echo";
    match super::enet::programs() {
        Ok(_) => systems.extend([
            System::Enet { reliable: true },
            System::Enet { reliable: false },
        ]),
        Err(e) => {
            eprintln!("skipping ENet: {e}");
            title = "UDP echo (ENet skipped: it could not be built)";
        }
    }
    compare(title, &systems, rounds, seconds)
}

fn compare(title: &str, systems: &[System], rounds: usize, seconds: f64) -> io::Result<Section> {
    compare_with(title, systems, System::counterpart, rounds, seconds)
}

/// The encryption comparison: TLS against plain TCP, sealed UDP against plain UDP and against
/// ENet's reliable packets (plain: ENet has no encryption), on the same workloads; each row's
/// ratio is the encrypted framewire system's rate over the row's.
///
/// # Errors
/// A server or the load generator is missing or failed.
pub fn compare_secure(rounds: usize, seconds: f64) -> io::Result<Section> {
    let mut systems = vec![
        System::FramewireTcp,
        System::FramewireTls,
        System::FramewireUdp { reliable: true },
        System::FramewireSealed,
    ];
    let mut title = "Encryption: TLS and sealed UDP echo (ratios: encrypted framewire / this row)";
    match super::enet::programs() {
        Ok(_) => systems.push(System::Enet { reliable: true }),
        Err(e) => {
            eprintln!("skipping ENet: {e}");
            title = "Encryption: TLS and sealed UDP echo (ENet skipped: it could not be built)";
        }
    }
    compare_with(
        title,
        &systems,
        System::encrypted_counterpart,
        rounds,
        seconds,
    )
}

fn compare_with(
    title: &str,
    systems: &[System],
    counterpart: fn(System) -> System,
    rounds: usize,
    seconds: f64,
) -> io::Result<Section> {
    let mut section = Section {
        title: format!(
            "{title}, medians of {rounds} rounds of {seconds} s (in brackets: the lowest and highest round, and for ratios the lowest and highest of the round-by-round ratios); ratios are framewire / this system"
        ),
        columns: vec![
            "workload",
            "system",
            "msgs/s",
            "p50 us",
            "p99 us",
            "server CPU us/msg",
            "generator core busy",
            "sleeps/s: server / generator",
            "msgs/s ratio",
            "p99 ratio",
        ],
        ..Section::default()
    };
    for w in &WORKLOADS {
        let samples = measure_rounds(title, systems, w, rounds, seconds)?;
        let medians: Vec<Sample> = samples
            .iter()
            .map(|xs| {
                let m = |f: fn(&Sample) -> f64| median(xs.iter().map(f).collect());
                Sample {
                    msgs_per_s: m(|x| x.msgs_per_s),
                    p50_us: m(|x| x.p50_us),
                    p99_us: m(|x| x.p99_us),
                    cpu_us_per_msg: m(|x| x.cpu_us_per_msg),
                    window: Window {
                        generator_busy: m(|x| x.window.generator_busy),
                        server_sleeps: m(|x| x.window.server_sleeps),
                        generator_sleeps: m(|x| x.window.generator_sleeps),
                    },
                }
            })
            .collect();
        let per_round = |f: fn(&Sample) -> f64| -> Vec<Vec<f64>> {
            samples
                .iter()
                .map(|xs| xs.iter().map(f).collect())
                .collect()
        };
        let rates = per_round(|x| x.msgs_per_s);
        let p99s = per_round(|x| x.p99_us);
        for (i, &s) in systems.iter().enumerate() {
            let x = medians[i];
            let j = systems
                .iter()
                .position(|&o| o == counterpart(s))
                .unwrap_or(i);
            let ours = medians[j];
            let rate_range = range(&rates[i]);
            let ratio_range = range(&round_ratios(&rates[j], &rates[i]));
            let p99_ratio_range = range(&round_ratios(&p99s[j], &p99s[i]));
            section.rows.push(vec![
                w.name.to_string(),
                s.name().to_string(),
                millions_with_range(x.msgs_per_s, rate_range),
                format!("{:.0}", x.p50_us),
                format!("{:.0}", x.p99_us),
                format!("{:.2}", x.cpu_us_per_msg),
                percent(x.window.generator_busy),
                sleeps(x.window.server_sleeps, x.window.generator_sleeps),
                ratio_with_range(ours.msgs_per_s, x.msgs_per_s, ratio_range),
                ratio_with_range(ours.p99_us, x.p99_us, p99_ratio_range),
            ]);
            section.json.push(format!(
                "{{\"section\":{},\"workload\":{},\"system\":{},\"msgs_per_s\":{:.0},\"msgs_per_s_min\":{:.0},\"msgs_per_s_max\":{:.0},\"p50_us\":{:.0},\"p99_us\":{:.0},\"server_cpu_us_per_msg\":{:.3},\"generator_busy\":{},\"server_sleeps_per_s\":{},\"generator_sleeps_per_s\":{},\"throughput_ratio\":{:.3},\"throughput_ratio_min\":{:.3},\"throughput_ratio_max\":{:.3},\"p99_ratio\":{:.3},\"p99_ratio_min\":{:.3},\"p99_ratio_max\":{:.3}}}",
                json_string(title),
                json_string(w.name),
                json_string(s.name()),
                x.msgs_per_s,
                rate_range.0,
                rate_range.1,
                x.p50_us,
                x.p99_us,
                x.cpu_us_per_msg,
                json_number(x.window.generator_busy),
                json_number(x.window.server_sleeps),
                json_number(x.window.generator_sleeps),
                ours.msgs_per_s / x.msgs_per_s,
                ratio_range.0,
                ratio_range.1,
                ours.p99_us / x.p99_us,
                p99_ratio_range.0,
                p99_ratio_range.1
            ));
        }
    }
    Ok(section)
}

/// Runs every system on one workload, `rounds` times interleaved (A B A B ...): the samples of each
/// system, by round.
fn measure_rounds(
    title: &str,
    systems: &[System],
    w: &Workload,
    rounds: usize,
    seconds: f64,
) -> io::Result<Vec<Vec<Sample>>> {
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); systems.len()];
    for round in 0..rounds {
        for (i, &s) in systems.iter().enumerate() {
            let x = run_one(s, w, seconds)?;
            eprintln!(
                "{title} round {}/{rounds} {}: {}: {:.0} msgs/s, p50 {:.0} us, p99 {:.0} us, {:.2} us CPU/msg, generator {}, sleeps/s {}",
                round + 1,
                w.name,
                s.name(),
                x.msgs_per_s,
                x.p50_us,
                x.p99_us,
                x.cpu_us_per_msg,
                percent(x.window.generator_busy),
                sleeps(x.window.server_sleeps, x.window.generator_sleeps)
            );
            samples[i].push(x);
        }
    }
    Ok(samples)
}

/// A share of a core as a whole percentage, or `-` where it could not be read.
fn percent(share: f64) -> String {
    if share.is_finite() {
        format!("{:.0} %", share * 100.0)
    } else {
        "-".to_string()
    }
}

/// Sleeps per second of the server and of the generator, in thousands where large (`-` where they
/// could not be read).
fn sleeps(server: f64, generator: f64) -> String {
    let one = |x: f64| {
        if !x.is_finite() {
            "-".to_string()
        } else if x >= 1000.0 {
            format!("{:.1} k", x / 1000.0)
        } else {
            format!("{x:.0}")
        }
    };
    format!("{} / {}", one(server), one(generator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_that_could_not_be_read_prints_as_a_dash_and_as_null() {
        assert_eq!(percent(0.984), "98 %");
        assert_eq!(percent(f64::NAN), "-");
        assert_eq!(json_number(0.5), "0.500");
        assert_eq!(json_number(f64::NAN), "null");
    }

    #[test]
    fn sleeps_print_in_thousands_where_large() {
        assert_eq!(sleeps(15.2, 9_079.0), "15 / 9.1 k");
        assert_eq!(sleeps(f64::NAN, 0.0), "- / 0");
    }

    #[test]
    fn sleeps_are_counted_for_a_live_process_and_refused_for_a_missing_one() {
        let me = std::process::id();
        let before = systems::sleeps_of(me).unwrap();
        // A thread of this process that waits for a message goes to sleep at least once.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let waiter = std::thread::spawn(move || rx.recv());
        std::thread::sleep(Duration::from_millis(20));
        tx.send(()).unwrap();
        waiter.join().unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(1));
        let after = systems::sleeps_of(me).unwrap();
        assert!(after > before, "{before} then {after}");
        assert!(systems::sleeps_of(u32::MAX).is_err());
    }

    #[test]
    fn cpu_time_is_read_for_a_live_process_and_refused_for_a_missing_one() {
        let me = std::process::id();
        let before = systems::cpu_time_of(me).unwrap();
        // Work until the kernel has counted a clock tick of it (10 ms), within a deadline.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut x = 0u64;
        let mut after = before;
        while after <= before && std::time::Instant::now() < deadline {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            }
            std::hint::black_box(x);
            after = systems::cpu_time_of(me).unwrap();
        }
        assert!(after > before, "{before:?} then {after:?}");
        assert!(systems::cpu_time_of(u32::MAX).is_err());
    }
}
