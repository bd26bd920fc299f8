//! The `smimegw` binary: parse the command line, run, exit with the status the library chose.
#![forbid(unsafe_code)]
// No panics on data from the network or disk: errors propagate with context. Tests may unwrap
// (clippy.toml: allow-unwrap-in-tests, allow-expect-in-tests).
#![deny(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;

mod cli;

fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse())
}
