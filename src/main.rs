//! The `smimegw` binary: parse the command line, run, exit with the status the library chose.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    smimegw::cli::run(smimegw::cli::Cli::parse())
}
