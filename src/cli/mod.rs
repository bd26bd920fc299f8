//! The `smimegw` command line: parses arguments, calls the library, prints results.
//!
//! This is the only place that prints or chooses an exit status; errors get their context here.

pub mod args;
mod ca;
mod output;
mod smime;
mod trust;
mod users;

use ca::ca;
use trust::trust;
use users::{request, user};

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};

pub use args::Cli;
use args::{
    CaCommand, Command, DirectoryCommand, RequestCommand, TrustCommand, UsageArg, UserCommand,
};

use smimegw::config::Config;
use smimegw::directory::{Directory, EnrollOptions};
use smimegw::pki::cert::{Cert, pem_blocks, pem_encode, read_certs_file};
use smimegw::pki::keys::PrivateKey;
use smimegw::pki::path::Usage;

/// Exit status when a verification said no (`trust check` on an untrusted certificate).
pub const EXIT_NOT_TRUSTED: u8 = 1;
/// Exit status when `doctor` found problems.
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit status for usage and operational errors.
pub const EXIT_ERROR: u8 = 2;

/// Runs a parsed command line and returns the process exit status.
pub fn run(cli: Cli) -> ExitCode {
    init_logging(cli.verbose);
    // Before any key is unsealed: no core dump may carry one to disk.
    if let Err(e) = smimegw::hardening::forbid_core_dumps() {
        eprintln!("smimegw: error: {e}");
        return ExitCode::from(EXIT_ERROR);
    }
    match dispatch(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let mut msg = format!("smimegw: error: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!("\n  caused by: {cause}"));
            }
            eprintln!("{msg}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `smimegw man`: the main page on stdout, or every command's page into `out`.
fn man_pages(out: Option<&Path>) -> Result<u8> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let Some(dir) = out else {
        clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        return Ok(0);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = 0;
    // Each command and subcommand gets its page, named after its path (git's convention).
    let mut todo = vec![(String::from("smimegw"), cmd)];
    while let Some((name, cmd)) = todo.pop() {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let sub_name = format!("{name}-{}", sub.get_name());
            todo.push((sub_name.clone(), sub.clone().name(sub_name)));
        }
        let file = dir.join(format!("{name}.1"));
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        std::fs::write(&file, page).with_context(|| format!("writing {}", file.display()))?;
        written += 1;
    }
    println!("Wrote {written} manual pages to {}", dir.display());
    Ok(0)
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SMIMEGW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colour codes only for a person at a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

fn load_config(cli: &Cli) -> Result<Config> {
    Ok(Config::load(&cli.config, cli.data_dir.as_deref())?)
}

fn open(cli: &Cli) -> Result<(Config, Directory)> {
    let config = load_config(cli)?;
    let dir = Directory::open(&config)?;
    Ok((config, dir))
}

fn dispatch(cli: &Cli) -> Result<u8> {
    match &cli.command {
        Command::Serve => {
            let config = load_config(cli)?;
            smimegw::serve::run(&config)?;
            Ok(0)
        }
        Command::Ca(c) => ca(cli, c),
        Command::User(c) => user(cli, c),
        Command::Request(c) => request(cli, c),
        Command::Trust(c) => trust(cli, c),
        Command::Smime(c) => {
            let (_, dir) = open(cli)?;
            smime::run(&dir, c)
        }
        Command::Process {
            listener,
            from,
            to,
            io,
        } => {
            let (_, dir) = open(cli)?;
            smime::process(dir, (*listener).into(), from, to, io)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "smimegw", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man { out } => man_pages(out.as_deref()),
        Command::Bench {
            size,
            recipients,
            seconds,
            key,
            cipher,
            json,
        } => bench(*size, *recipients, *seconds, *key, *cipher, *json),
        Command::Doctor { expiring_days } => {
            let opts = smimegw::doctor::Options {
                expiry_days: *expiring_days,
                ..Default::default()
            };
            let report = smimegw::doctor::run(&cli.config, cli.data_dir.as_deref(), &opts);
            print!("{}", smimegw::doctor::render(&cli.config, &report));
            Ok(if report.count(smimegw::doctor::Status::Problem) > 0 {
                EXIT_PROBLEMS
            } else {
                0
            })
        }
        Command::Directory(c) => directory(cli, c),
        Command::Audit { json, verify } => {
            let (_, dir) = open(cli)?;
            if *verify {
                let v = dir.verify_audit()?;
                if *json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    for p in &v.problems {
                        println!("PROBLEM  {p}");
                    }
                    println!(
                        "{} entries: {} chained and checked, {} from before the log was chained; {}",
                        v.entries,
                        v.chained,
                        v.before_chaining,
                        if v.problems.is_empty() {
                            "the chain holds".to_string()
                        } else {
                            format!("{} problem(s)", v.problems.len())
                        }
                    );
                }
                return Ok(if v.problems.is_empty() {
                    0
                } else {
                    EXIT_NOT_TRUSTED
                });
            }
            let log = dir.audit_log()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&log)?);
            } else {
                output::audit_table(&log);
            }
            Ok(0)
        }
    }
}

/// `smimegw directory ...`
fn directory(cli: &Cli, command: &DirectoryCommand) -> Result<u8> {
    let config = load_config(cli)?;
    match command {
        DirectoryCommand::Migrate => {
            let Some(db) = &config.directory else {
                anyhow::bail!(
                    "{}: there is no [directory] table, so the directory is the embedded store in {}, which needs no migration",
                    config.source.display(),
                    config.data_dir().display()
                );
            };
            let store = smimegw::store::postgres::PgStore::connect(db, &config.source)?;
            let (from, to) = store.migrate()?;
            if from == to {
                println!("{}: schema version {to}, up to date", store.url());
            } else {
                println!(
                    "{}: schema upgraded from version {from} to {to}",
                    store.url()
                );
            }
            Ok(0)
        }
        DirectoryCommand::Export { file, json } => {
            let dir = Directory::open(&config)?;
            let summary = dir.export(file)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!(
                    "exported {} records and {} audit entries from {} to {}; private keys stay sealed under the key-encryption key {}",
                    summary.records,
                    summary.audit_entries,
                    summary.store,
                    summary.file.display(),
                    config.kek_path().display()
                );
            }
            Ok(0)
        }
        DirectoryCommand::Import { file, json } => {
            let (_, summary) = Directory::import(&config, file)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!(
                    "imported {} records and {} audit entries from {} into {}",
                    summary.records,
                    summary.audit_entries,
                    summary.file.display(),
                    summary.store
                );
            }
            Ok(0)
        }
    }
}

/// `smimegw bench`: no configuration, no data directory, throwaway keys.
fn bench(
    size: usize,
    recipients: u16,
    seconds: f64,
    key: smimegw::pki::KeyAlgorithm,
    cipher: smimegw::smime::enveloped::ContentCipher,
    json: bool,
) -> Result<u8> {
    if !(seconds.is_finite() && seconds > 0.0) {
        bail!("--seconds must be a positive number");
    }
    let opts = smimegw::bench::BenchOptions {
        size,
        recipients: usize::from(recipients),
        seconds,
        key,
        cipher,
    };
    let mut progress = |line: &str| eprintln!("bench: {line}");
    let mut rows = smimegw::bench::run(&opts, &mut progress)?;
    rows.extend(smimegw::bench::ceilings(
        key,
        std::time::Duration::from_secs_f64(seconds / 12.0),
        &mut progress,
    )?);
    let mut out = std::io::stdout().lock();
    if json {
        for r in &rows {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        }
    } else {
        writeln!(
            out,
            "smimegw bench: {} message, {key}, {} recipient(s), {}, single thread\n",
            smimegw::bench::format_size(size),
            recipients,
            opts.cipher
        )?;
        write!(out, "{}", smimegw::bench::table(&rows))?;
    }
    Ok(0)
}

fn first_cert(path: &Path) -> Result<Cert> {
    Ok(read_certs_file(path)?.remove(0))
}

/// Reads an unencrypted PKCS #8 private key (PEM "PRIVATE KEY" or DER).
fn read_private_key(path: &Path) -> Result<PrivateKey> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let der = if smimegw::pki::cert::looks_like_pem(&bytes) {
        let blocks = pem_blocks(&bytes);
        match blocks.into_iter().find(|(l, _)| l == "PRIVATE KEY") {
            Some((_, d)) => zeroize::Zeroizing::new(d),
            None => bail!(
                "{}: no 'BEGIN PRIVATE KEY' block (convert with `openssl pkcs8 -topk8 -nocrypt -in KEY`)",
                path.display()
            ),
        }
    } else {
        zeroize::Zeroizing::new(bytes.to_vec())
    };
    PrivateKey::from_pkcs8_der(&der).with_context(|| format!("reading {}", path.display()))
}

/// Reads a password from a file (first line) or the terminal; never from an argument.
fn read_password(file: Option<&Path>, prompt: &str) -> Result<zeroize::Zeroizing<String>> {
    if let Some(f) = file {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading password file {}", f.display()))?,
        );
        return Ok(zeroize::Zeroizing::new(
            text.lines().next().unwrap_or("").to_string(),
        ));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("no terminal to ask for the password on: pass --password-file FILE");
    }
    let _ = std::io::stderr().flush();
    Ok(zeroize::Zeroizing::new(
        rpassword::prompt_password(prompt).context("reading the password")?,
    ))
}

fn read_new_password(file: Option<&Path>) -> Result<zeroize::Zeroizing<String>> {
    if file.is_some() {
        return read_password(file, "");
    }
    let a = read_password(None, "New PKCS #12 password: ")?;
    let b = read_password(None, "Repeat the password: ")?;
    if *a != *b {
        bail!("the two passwords differ");
    }
    Ok(a)
}

/// Creates a file that must not exist yet, with `mode` (before umask).
fn create_new_file(path: &Path, mode: u32) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))
}

/// Writes a file that holds a private key: mode 0600, never over an existing file.
fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = create_new_file(path, 0o600)?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
