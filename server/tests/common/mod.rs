//! Running the real `framewire-server` binary in a test: started with arguments (and optionally a
//! file-descriptor limit), its log read on a thread so every wait has a deadline, and killed when
//! the test ends, even when it fails (an orphaned server would hold the test's output open).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

pub(crate) struct ServerProcess {
    child: Option<Child>,
    log: mpsc::Receiver<String>,
    pub(crate) addr: SocketAddr,
    /// Where it serves UDP, when it does.
    pub(crate) udp_addr: Option<SocketAddr>,
    /// Where it serves HTTP, when it does.
    pub(crate) http_addr: Option<SocketAddr>,
}

/// Every test server's HTTP listener takes a free port: tests run side by side.
const HTTP_ANY_PORT: [&str; 2] = ["--http", "127.0.0.1:0"];

impl ServerProcess {
    /// Starts the binary on an ephemeral TCP port (no UDP), under `ulimit -n fd_limit` if given.
    pub(crate) fn start(fd_limit: Option<u32>) -> Self {
        Self::start_with(fd_limit, &[])
    }

    /// As [`ServerProcess::start`], with more flags.
    pub(crate) fn start_with(fd_limit: Option<u32>, flags: &[&str]) -> Self {
        Self::spawn(fd_limit, &["--tcp", "127.0.0.1:0", "--udp", "off"], flags)
    }

    /// Starts the binary on an ephemeral TCP port and an ephemeral UDP port, with more flags.
    pub(crate) fn start_with_udp(flags: &[&str]) -> Self {
        Self::spawn(
            None,
            &["--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"],
            flags,
        )
    }

    /// Starts the binary on these TCP and UDP addresses (a restart where the last run served),
    /// with more flags.
    pub(crate) fn start_on(tcp: SocketAddr, udp: SocketAddr, flags: &[&str]) -> Self {
        let (tcp, udp) = (tcp.to_string(), udp.to_string());
        Self::spawn(None, &["--tcp", &tcp, "--udp", &udp], flags)
    }

    fn spawn(fd_limit: Option<u32>, listen: &[&str], flags: &[&str]) -> Self {
        let binary = env!("CARGO_BIN_EXE_framewire-server");
        let udp = listen.last() != Some(&"off");
        let mut command = if let Some(n) = fd_limit {
            let mut c = Command::new("sh");
            c.args([
                "-c",
                &format!("ulimit -n {n} && exec \"$0\" \"$@\""),
                binary,
            ]);
            c.args(listen);
            c.args(HTTP_ANY_PORT);
            c.args(flags);
            c
        } else {
            let mut c = Command::new(binary);
            c.args(listen);
            c.args(HTTP_ANY_PORT);
            c.args(flags);
            c
        };
        let mut child = command
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server binary");
        let stderr = child.stderr.take().expect("piped stderr");
        let (lines, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child: Some(child),
            log,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            udp_addr: None,
            http_addr: None,
        };
        server.addr = loop {
            let line = server
                .next_line(DEADLINE)
                .expect("the server logs where it listens");
            if let Some(at) = line.split("listening for TCP on ").nth(1) {
                break at.trim().parse().expect("an address");
            }
        };
        let http = !flags.windows(2).any(|w| w == ["--http", "off"]);
        if udp {
            server.udp_addr = Some(loop {
                let line = server
                    .next_line(DEADLINE)
                    .expect("the server logs where it serves UDP");
                if let Some(at) = line.split("serving UDP on ").nth(1) {
                    break at.trim().parse().expect("an address");
                }
            });
        }
        if http {
            // The HTTP line comes last; the lines before it are put back for the test to read.
            let mut before = Vec::new();
            server.http_addr = Some(loop {
                let line = server
                    .next_line(DEADLINE)
                    .expect("the server logs where it serves HTTP");
                if let Some(at) = line.split("listening for HTTP on ").nth(1) {
                    let addr = at.split_whitespace().next().expect("an address");
                    break addr.parse().expect("an address");
                }
                before.push(line);
            });
            server.put_back(before);
        }
        server
    }

    /// Makes `lines` the next lines the log gives, before the rest.
    fn put_back(&mut self, lines: Vec<String>) {
        let (tx, rx) = mpsc::channel();
        for line in lines {
            let _ = tx.send(line);
        }
        let rest = std::mem::replace(&mut self.log, rx);
        std::thread::spawn(move || {
            while let Ok(line) = rest.recv() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }

    /// Waits (with the deadline) for a log line containing `text`; the line.
    pub(crate) fn wait_for_line(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .next_line(left)
                .unwrap_or_else(|| panic!("no log line with {text:?} in time"));
            if line.contains(text) {
                return line;
            }
        }
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Reads the rest of the log on a thread and drops it (a busy server must never block on a
    /// full pipe).
    pub(crate) fn discard_log(&mut self) {
        let log = std::mem::replace(&mut self.log, mpsc::channel().1);
        std::thread::spawn(move || while log.recv().is_ok() {});
    }

    /// The next log line, if one comes within `wait`.
    pub(crate) fn next_line(&self, wait: Duration) -> Option<String> {
        self.log.recv_timeout(wait).ok()
    }

    /// The process id, to signal it.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits (with the deadline) for the process to exit on its own.
    pub(crate) fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("still running");
        let (done, exited) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(child.wait());
        });
        exited
            .recv_timeout(DEADLINE)
            .expect("the server exits")
            .expect("wait")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Resident memory of a process, in bytes.
pub(crate) fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}
