//! The `smimegw` command line: parses arguments, calls the library, prints results.
//!
//! This is the only place that prints or chooses an exit status; errors get their context here.

pub mod args;
mod output;
mod smime;

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
    cipher: args::CipherArg,
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
        cipher: smime::content_cipher(cipher),
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

fn ca(cli: &Cli, c: &CaCommand) -> Result<u8> {
    match c {
        CaCommand::Init { name, key, days } => {
            let config = load_config(cli)?;
            let dir = Directory::open_or_create(&config)?;
            let name = name.clone().unwrap_or_else(|| config.ca.name.clone());
            let cert = dir.init_ca(
                &name,
                key.unwrap_or(config.ca.key),
                days.unwrap_or(config.ca.days),
            )?;
            dir.issue_crl()?;
            println!(
                "Created CA '{}' in {}",
                cert.subject_string(),
                dir.describe()
            );
            output::cert_summary(&cert);
            Ok(0)
        }
        CaCommand::Import {
            cert,
            key,
            p12,
            password_file,
        } => {
            let config = load_config(cli)?;
            let (ca_cert, ca_key, chain) = if let Some(p12) = p12 {
                let bytes =
                    std::fs::read(p12).with_context(|| format!("reading {}", p12.display()))?;
                let pw = read_password(password_file.as_deref(), "PKCS #12 password: ")?;
                let c = smimegw::pki::pkcs12::parse(&bytes, &pw)
                    .with_context(|| format!("reading {}", p12.display()))?;
                (c.cert, c.key, c.chain)
            } else {
                let (Some(cert), Some(key)) = (cert, key) else {
                    bail!("give either --cert F --key F, or --p12 F");
                };
                let mut certs = read_certs_file(cert)?;
                let first = certs.remove(0);
                (first, read_private_key(key)?, certs)
            };
            let dir = Directory::open_or_create(&config)?;
            let installed = dir.import_ca(ca_cert, ca_key, chain)?;
            dir.issue_crl()?;
            println!(
                "Imported CA '{}' into {}",
                installed.subject_string(),
                dir.describe()
            );
            output::cert_summary(&installed);
            Ok(0)
        }
        CaCommand::Show { pem } => {
            let (_, dir) = open(cli)?;
            let cert = dir.ca_cert()?;
            if *pem {
                print!("{}", cert.to_pem());
                for c in dir.ca_chain()? {
                    print!("{}", c.to_pem());
                }
            } else {
                output::cert_summary(&cert);
            }
            Ok(0)
        }
        CaCommand::IssueServer {
            hostname,
            client,
            cert_out,
            key_out,
            days,
            key,
        } => {
            let (_, dir) = open(cli)?;
            if *days == 0 {
                bail!("--days must be at least 1");
            }
            smimegw::directory::check_hostname(hostname)?;
            // Claim both files before issuing, so that nothing is issued (and no serial
            // recorded) when they cannot be written; remove them again if issuing fails.
            let mut key_file = create_new_file(key_out, 0o600)?;
            let mut cert_file = match create_new_file(cert_out, 0o644) {
                Ok(f) => f,
                Err(e) => {
                    let _ = std::fs::remove_file(key_out);
                    return Err(e);
                }
            };
            let written = dir
                .issue_tls(
                    hostname,
                    *key,
                    *days,
                    if *client {
                        smimegw::directory::TlsRole::Client
                    } else {
                        smimegw::directory::TlsRole::Server
                    },
                )
                .map_err(anyhow::Error::from)
                .and_then(|issued| {
                    let key_pem =
                        zeroize::Zeroizing::new(pem_encode("PRIVATE KEY", issued.key.pkcs8_der()));
                    key_file
                        .write_all(key_pem.as_bytes())
                        .and_then(|()| key_file.sync_all())
                        .with_context(|| format!("writing {}", key_out.display()))?;
                    let mut pem = issued.cert.to_pem();
                    for c in &issued.chain {
                        pem.push_str(&c.to_pem());
                    }
                    cert_file
                        .write_all(pem.as_bytes())
                        .and_then(|()| cert_file.sync_all())
                        .with_context(|| format!("writing {}", cert_out.display()))?;
                    Ok(issued)
                });
            let issued = match written {
                Ok(i) => i,
                Err(e) => {
                    let _ = std::fs::remove_file(key_out);
                    let _ = std::fs::remove_file(cert_out);
                    return Err(e);
                }
            };
            println!(
                "Issued a TLS server certificate for {} (serial {}); wrote {} and {} (mode 0600)",
                hostname,
                issued.cert.serial_hex(),
                cert_out.display(),
                key_out.display()
            );
            println!(
                "Use it with:\n[listen]\ntls_cert = \"{}\"\ntls_key = \"{}\"",
                cert_out.display(),
                key_out.display()
            );
            output::cert_summary(&issued.cert);
            Ok(0)
        }
        CaCommand::Issued { json } => {
            let (_, dir) = open(cli)?;
            let issued = dir.issued()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&issued)?);
            } else {
                output::issued_table(&issued);
            }
            Ok(0)
        }
        CaCommand::Revoke { serial, reason } => {
            let (_, dir) = open(cli)?;
            let rec = dir.revoke_serial(serial, *reason)?;
            println!(
                "Revoked {} certificate {} of {} ({}); the CRL was reissued",
                rec.purpose,
                rec.serial,
                rec.subject,
                reason.name()
            );
            Ok(0)
        }
        CaCommand::Crl { out, der } => {
            let (_, dir) = open(cli)?;
            let crl = dir.issue_crl()?;
            let bytes = if *der {
                crl
            } else {
                pem_encode("X509 CRL", &crl).into_bytes()
            };
            std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
            println!("Wrote CRL to {}", out.display());
            Ok(0)
        }
    }
}

fn user(cli: &Cli, c: &UserCommand) -> Result<u8> {
    let (config, dir) = open(cli)?;
    match c {
        UserCommand::Enroll {
            email,
            name,
            single,
            key,
            days,
        } => {
            let s = dir.enroll(
                email,
                &EnrollOptions {
                    display_name: name.clone(),
                    single: *single,
                    key: *key,
                    days: days.unwrap_or(config.ca.user_days),
                },
            )?;
            println!("Enrolled {}", s.email);
            output::user(&s);
        }
        UserCommand::Import {
            email,
            p12,
            role,
            name,
            password,
        } => {
            let bytes = std::fs::read(p12).with_context(|| format!("reading {}", p12.display()))?;
            let pw = read_password(password.password_file.as_deref(), "PKCS #12 password: ")?;
            let contents = smimegw::pki::pkcs12::parse(&bytes, &pw)
                .with_context(|| format!("reading {}", p12.display()))?;
            let s = dir.import_user(
                email,
                name.as_deref(),
                (*role).into(),
                contents.cert,
                contents.key,
                contents.chain,
            )?;
            println!(
                "Imported a {} certificate for {}",
                smimegw::store::CertRole::from(*role),
                s.email
            );
            output::user(&s);
        }
        UserCommand::Export {
            email,
            p12,
            include_signing_key,
            profile,
            password,
        } => {
            let pw = read_new_password(password.password_file.as_deref())?;
            let (key, cert, chain) = dir.export_material(email, *include_signing_key)?;
            let name = cert.common_name().unwrap_or_else(|| email.clone());
            let profile = match profile {
                args::ProfileArg::Openssl3 => smimegw::pki::pkcs12::ExportProfile::OpenSsl3,
                args::ProfileArg::Gnupg22 => smimegw::pki::pkcs12::ExportProfile::LegacyGnupg22,
            };
            let der =
                smimegw::pki::pkcs12::build_with_profile(&key, &cert, &chain, &pw, &name, profile)?;
            write_private_file(p12, &der)?;
            println!(
                "Wrote {} (certificate {} and its key) ",
                p12.display(),
                cert.serial_hex()
            );
        }
        UserCommand::Show { email, json } => {
            let s = dir.user_summary(email)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                output::user(&s);
            }
        }
        UserCommand::List { expiring, json } => {
            let users = dir.list_users(*expiring)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                output::user_table(&users);
            }
        }
        UserCommand::Cert { email, role, chain } => {
            for c in dir.user_cert(email, (*role).into(), *chain)? {
                print!("{}", c.to_pem());
            }
        }
        UserCommand::Renew {
            email,
            all_expiring,
            dry_run,
            rekey,
            days,
        } => {
            let days = days.unwrap_or(config.ca.user_days);
            if let Some(within) = all_expiring {
                let report = dir
                    .renew_expiring(*within, *rekey, days, *dry_run, None)?
                    .unwrap_or_default();
                output::renewal(&report, *dry_run);
                return Ok(if report.failed.is_empty() {
                    0
                } else {
                    EXIT_ERROR
                });
            }
            let Some(email) = email else {
                bail!("name a user, or pass --all-expiring DAYS");
            };
            let s = dir.renew(email, *rekey, days)?;
            println!(
                "Renewed {}{}",
                s.email,
                if *rekey { " with new keys" } else { "" }
            );
            output::user(&s);
        }
        UserCommand::Revoke { email, reason } => {
            let s = dir.revoke_user(email, *reason)?;
            println!(
                "Revoked every certificate of {} ({reason}); the CRL was reissued",
                s.email
            );
            output::user(&s);
        }
    }
    Ok(0)
}

fn request(cli: &Cli, c: &RequestCommand) -> Result<u8> {
    let (config, dir) = open(cli)?;
    match c {
        RequestCommand::Submit { csr, role } => {
            let bytes = std::fs::read(csr).with_context(|| format!("reading {}", csr.display()))?;
            let r = dir
                .submit_request(&bytes, &csr.display().to_string(), (*role).into())
                .with_context(|| format!("request {}", csr.display()))?;
            println!(
                "Submitted request for {} ({}); an administrator approves it with:",
                r.email, r.role
            );
            println!("  smimegw request approve {}", r.id);
            println!("{}", r.id);
        }
        RequestCommand::List { all, json } => {
            let list = dir.list_requests(*all)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                output::request_table(&list);
            }
        }
        RequestCommand::Approve { id, days } => {
            let cert = dir.approve_request(id, days.unwrap_or(config.ca.user_days))?;
            println!(
                "Approved request {id}: issued certificate {} for {}",
                cert.serial_hex(),
                cert.email_addresses().join(", ")
            );
            println!("The user picks it up with: smimegw request pickup {id} --out cert.pem");
        }
        RequestCommand::Deny { id, reason } => {
            dir.deny_request(id, reason)?;
            println!("Denied request {id}: {reason}");
        }
        RequestCommand::Pickup { id, out } => {
            let certs = dir.pickup_request(id)?;
            let pem: String = certs.iter().map(Cert::to_pem).collect();
            std::fs::write(out, pem).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "Wrote the certificate and its chain ({} certificates) to {}",
                certs.len(),
                out.display()
            );
        }
    }
    Ok(0)
}

fn trust(cli: &Cli, c: &TrustCommand) -> Result<u8> {
    let (_, dir) = open(cli)?;
    match c {
        TrustCommand::AddRoot { cert } => {
            let c = first_cert(cert)?;
            let s = dir.add_root(&c)?;
            println!("Trusted root {} added as {}", s.subject, s.id);
        }
        TrustCommand::CrossCertify {
            cert,
            permit_domain,
            days,
            out,
        } => {
            let c = first_cert(cert)?;
            let (s, cross) = dir.cross_certify(&c, permit_domain, *days)?;
            println!(
                "Cross-certified {} as {} (cross-certificate serial {}){}",
                s.subject,
                s.id,
                cross.serial_hex(),
                if permit_domain.is_empty() {
                    String::new()
                } else {
                    format!(", only for {}", permit_domain.join(", "))
                }
            );
            if let Some(out) = out {
                std::fs::write(out, cross.to_pem())
                    .with_context(|| format!("writing {}", out.display()))?;
            }
        }
        TrustCommand::List { json } => {
            let list = dir.list_trust()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                output::trust_table(&list);
            }
        }
        TrustCommand::Remove { id } => {
            dir.remove_trust(id)?;
            println!("Removed trust entry {id}");
        }
        TrustCommand::ImportBundle {
            file,
            source,
            internal_too,
            json,
        } => {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let source = match source {
                Some(s) => s.clone(),
                None => file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| anyhow!("{}: give --source NAME", file.display()))?,
            };
            let report =
                dir.import_bundle(&bytes, &file.display().to_string(), &source, *internal_too)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                output::bundle_import(&report);
            }
        }
        TrustCommand::ImportCrl { crl, issuer } => {
            let bytes = std::fs::read(crl).with_context(|| format!("reading {}", crl.display()))?;
            let given = match issuer {
                Some(p) => read_certs_file(p)?,
                None => Vec::new(),
            };
            let issuer = dir.import_crl(&bytes, &crl.display().to_string(), &given)?;
            println!("Imported CRL of {issuer}");
        }
        TrustCommand::Check {
            cert,
            untrusted,
            email,
            at,
            usage,
            json,
        } => {
            // As the gateway takes every certificate of a message: the leaf, then whatever
            // else the file holds, then --untrusted.
            let mut chain = read_certs_file(cert)?;
            let leaf = chain.remove(0);
            if let Some(p) = untrusted {
                chain.extend(read_certs_file(p)?);
            }
            let at = match at {
                Some(s) => Some(
                    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                        .map_err(|e| anyhow!("--at '{s}': not an RFC 3339 time such as 2026-01-31T12:00:00Z ({e})"))?
                        .unix_timestamp(),
                ),
                None => None,
            };
            let usage = match usage {
                UsageArg::Signing => Some(Usage::Signing),
                UsageArg::Encryption => Some(Usage::Encryption),
                UsageArg::Any => None,
            };
            let mut verdict = dir.check_trust(&leaf, &chain, email.as_deref(), at, usage)?;
            let revocation = revocation_line(&dir, &mut verdict, at)?;
            output::trust_check(&leaf, &verdict, revocation.as_deref(), *json)?;
            return Ok(if verdict.is_ok() { 0 } else { EXIT_NOT_TRUSTED });
        }
    }
    Ok(0)
}

/// The revocation line the gateway writes into X-Smimegw-Result, for a trusted path (fetching
/// as `[revocation]` says); a revoked certificate turns the verdict into that failure.
fn revocation_line(
    dir: &Directory,
    verdict: &mut smimegw::directory::TrustCheck,
    at: Option<i64>,
) -> Result<Option<String>> {
    use smimegw::pki::online::{Checker, PathRevocation};
    let Ok(p) = verdict else {
        return Ok(None);
    };
    let rc = &dir.config().revocation;
    let timeout = std::time::Duration::from_secs(rc.timeout_secs);
    let now = at.unwrap_or_else(smimegw::pki::profile::now);
    let status = Checker::new(rc.fetch, rc.ocsp, timeout).check(
        &dir.trust_context()?,
        p,
        now,
        std::time::Instant::now() + timeout,
    );
    let line = status.describe(now);
    if let PathRevocation::Revoked(e) = status {
        *verdict = Err(e);
        return Ok(None);
    }
    Ok(Some(line))
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
