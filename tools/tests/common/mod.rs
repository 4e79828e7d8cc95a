//! Running the `framewire` binary from the CLI tests.

use std::process::Command;

/// Runs `framewire ARGS...` to the end: its exit code (-1 if a signal ended it), stdout, stderr.
///
/// # Panics
/// If the binary cannot be started.
pub(crate) fn framewire<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_framewire"))
        .args(args)
        .output()
        .expect("run framewire");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
