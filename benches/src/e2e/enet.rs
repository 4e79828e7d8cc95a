//! ENet, the reliable-UDP library games pick most often, as the UDP peer: a small C echo server
//! and load generator (`benches/enet/`), compiled against Debian's libenet-dev by the runner the
//! first time it needs them (and again when their sources change).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The echo server and the load generator, built beside this program.
///
/// # Errors
/// No C compiler, or no ENet headers and library (`apt-get install libenet-dev`).
pub fn programs() -> io::Result<(PathBuf, PathBuf)> {
    let server = build_beside("echo_server.c", "enet_echo_server")?;
    let client = build_beside("bench_client.c", "enet_bench_client")?;
    Ok((server, client))
}

/// The steady-rate sender and sink (`benches/enet/rate.c`), built beside this program.
///
/// # Errors
/// As [`programs`].
pub fn rate_program() -> io::Result<PathBuf> {
    build_beside("rate.c", "enet_rate")
}

/// `benches/enet/<source>` compiled to `<program>` beside this program.
fn build_beside(source: &str, program: &str) -> io::Result<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("enet");
    let exe = std::env::current_exe()?;
    let out = exe.parent().unwrap_or(Path::new("."));
    build(&src.join(source), &out.join(program))
}

fn build(source: &Path, program: &Path) -> io::Result<PathBuf> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified());
    if let (Ok(built), Ok(written)) = (modified(program), modified(source))
        && built >= written
    {
        return Ok(program.to_path_buf());
    }
    let out = Command::new("cc")
        .args(["-O2", "-Wall", "-Wextra", "-o"])
        .arg(program)
        .arg(source)
        .arg("-lenet")
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run cc: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "cannot build {} (is libenet-dev installed?): {}",
            source.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(program.to_path_buf())
}
