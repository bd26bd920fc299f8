//! Running the independent peers (OpenSSL, GnuPG, NSS) from unit tests: one place that insists a
//! peer is installed (failing loudly, never skipping) and runs it with optional input.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Panics with the Debian package to install when `bin` cannot be run.
pub(crate) fn require(bin: &str, package: &str) {
    if let Err(e) = Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        panic!(
            "cannot run `{bin}` ({e}): these tests use it as an independent peer; \
             install the Debian package `{package}` (apt-get install {package})"
        );
    }
}

/// Runs a command with `stdin` (or none), capturing its output.
pub(crate) fn run_in(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input)
            .expect("writing to the peer");
    }
    child.wait_with_output().expect("waiting for the peer")
}
