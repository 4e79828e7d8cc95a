//! Starting and stopping the compared servers as processes of their own, pinned to one core with
//! `taskset`, each on a free loopback port, and reading the CPU time they used from /proc.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pubsub_wire::Wire;

/// A server process under test, killed when dropped.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Where it accepts TCP connections.
    pub addr: SocketAddr,
    /// Removed once the process is gone.
    dir: Option<TempDir>,
}

/// A directory removed when dropped (a mosquitto configuration lives there).
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Its files go after it.
        drop(self.dir.take());
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The framewire server binary built beside this one (`cargo build --release -p framewire-server`).
///
/// # Errors
/// It has not been built.
pub fn framewire_binary() -> io::Result<PathBuf> {
    sibling_binary("framewire-server")
}

/// A program built beside this one (the other benchmark binaries, the `framewire` tool).
///
/// # Errors
/// It has not been built.
pub fn sibling_binary(name: &str) -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().unwrap_or(Path::new(".")).join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} not found: build the benchmarks first (cargo build --release -p framewire-benches -p framewire-server -p framewire-tools)",
                path.display()
            ),
        ))
    }
}

/// What a started server serves on its address, so its start can be waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// It accepts TCP connections.
    Tcp,
    /// It has bound the UDP port (a bind of ours is refused).
    Udp,
}

/// Starts `program ARGS...` pinned to `core`, serving on `addr`, and waits until it does.
///
/// # Errors
/// The program does not start, or does not serve within 10 s.
pub fn start_program(
    program: &Path,
    args: &[String],
    core: usize,
    addr: SocketAddr,
    serves: Serves,
) -> io::Result<Running> {
    let running = spawn_pinned(program, args, core, addr)?;
    let what = program.display().to_string();
    match serves {
        Serves::Tcp => wait_listening(addr, &what)?,
        Serves::Udp => wait_until(&format!("{what} did not bind {addr}"), || {
            std::net::UdpSocket::bind(addr).is_err()
        })?,
    }
    Ok(running)
}

fn spawn_pinned(
    program: &Path,
    args: &[String],
    core: usize,
    addr: SocketAddr,
) -> io::Result<Running> {
    let child = Command::new("taskset")
        .arg("-c")
        .arg(core.to_string())
        .arg(program)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            io::Error::new(e.kind(), format!("cannot start {}: {e}", program.display()))
        })?;
    Ok(Running {
        child,
        addr,
        dir: None,
    })
}

/// A free loopback address.
///
/// # Errors
/// No port could be had.
pub fn free_addr() -> io::Result<SocketAddr> {
    Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?)))
}

fn wait_listening(addr: SocketAddr, what: &str) -> io::Result<()> {
    wait_until(&format!("{what} did not start listening on {addr}"), || {
        TcpStream::connect(addr).is_ok()
    })
}

/// Polls `ready` every 20 ms for up to 10 s; `failure` is the error's message.
fn wait_until(failure: &str, ready: impl Fn() -> bool) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        if Instant::now() > deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, failure.to_string()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Starts `wire`'s server pinned to `core`, and waits until it accepts connections.
///
/// # Errors
/// The program is missing or does not start listening within 10 s.
pub fn start(wire: Wire, core: usize) -> io::Result<Running> {
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut cmd = Command::new("taskset");
    cmd.arg("-c").arg(core.to_string());
    let mut dir = None;
    match wire {
        Wire::Framewire => {
            cmd.arg(framewire_binary()?)
                .args(["--tcp", &addr.to_string(), "--udp", "off", "--http", "off"])
                .env("RUST_LOG", "warn");
        }
        Wire::Nats => {
            cmd.arg("nats-server")
                .args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        }
        Wire::Mqtt => {
            let path = std::env::temp_dir().join(format!("fw-bench-mosquitto-{port}"));
            std::fs::create_dir_all(&path)?;
            let conf = path.join("mosquitto.conf");
            std::fs::write(
                &conf,
                format!(
                    "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                     log_dest none\nmax_connections -1\n"
                ),
            )?;
            cmd.arg("mosquitto").arg("-c").arg(&conf);
            dir = Some(TempDir(path));
        }
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start {}: {e}", wire.name())))?;
    let running = Running { child, addr, dir };
    wait_listening(addr, wire.name())?;
    Ok(running)
}

/// CPU time (user + system) process `pid` has used so far, from /proc/PID/stat.
///
/// # Errors
/// /proc cannot be read (the process is gone, or this is not Linux).
pub fn cpu_time_of(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces, inside parentheses).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("unreadable /proc stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the command name.
    let ticks = |i: usize| -> u64 { fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0) };
    let clock_ticks = 100; // USER_HZ on Linux
    Ok(Duration::from_millis(
        (ticks(11) + ticks(12)) * 1000 / clock_ticks,
    ))
}

/// How many times the threads of process `pid` have gone to sleep waiting for something (their
/// voluntary context switches, summed over /proc/PID/task/*/status). A server or generator that
/// sleeps must be woken by whoever next sends to it, and on loopback that waking is done (and paid
/// for) inside the sender's send call.
///
/// # Errors
/// /proc cannot be read (the process is gone, or this is not Linux).
pub fn sleeps_of(pid: u32) -> io::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let status = std::fs::read_to_string(task?.path().join("status"))?;
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .ok_or_else(|| io::Error::other("no voluntary_ctxt_switches in /proc status"))?;
    }
    Ok(total)
}

impl Running {
    /// The same server, with `dir` (its configuration) removed when it is dropped.
    #[must_use]
    pub fn removing(mut self, dir: PathBuf) -> Self {
        self.dir = Some(TempDir(dir));
        self
    }

    /// CPU time (user + system) the process has used so far, from /proc/PID/stat.
    ///
    /// # Errors
    /// /proc cannot be read.
    pub fn cpu_time(&self) -> io::Result<Duration> {
        cpu_time_of(self.pid())
    }

    /// The server's process id (the child is `taskset`, which execs the server in place: same pid).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the process, in bytes, from /proc/PID/status.
    ///
    /// # Errors
    /// /proc cannot be read.
    pub fn rss_bytes(&self) -> io::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| io::Error::other("no VmRSS"))
    }
}
