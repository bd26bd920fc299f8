//! `smimegw doctor`: checks what an installation needs to work and says what to fix.
//!
//! Each check gives a [`Finding`]: ok, a warning (works, but worth knowing), or a problem (mail
//! will be refused, deferred or sent in a way the configuration does not want, or soon will
//! be). The checks follow the order in which things depend on each other: the configuration,
//! the key-encryption key, the directory, the CA, users' certificates, the next hop. A check
//! that cannot run because an earlier one failed says so instead of guessing.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, StartTls};
use crate::directory::Directory;
use crate::pki::ca::rfc3339;
use crate::pki::profile;
use crate::smtp::relay::{Probe, Relay};
use crate::store::Kek;
use crate::store::redb::RedbStore;

/// `[directory]` on PostgreSQL: the server answers (through TLS as configured) and holds the
/// schema this build reads.
fn check_database(r: &mut Report, config: &Config) {
    let Some(db) = &config.directory else {
        return;
    };
    let tls = match db.tls {
        crate::config::DatabaseTls::Off => "without TLS",
        crate::config::DatabaseTls::Require => "over TLS (server not authenticated)",
        crate::config::DatabaseTls::VerifyFull => "over TLS, server certificate verified",
    };
    let store = match crate::store::postgres::PgStore::connect(db, &config.source) {
        Ok(s) => s,
        Err(e) => {
            r.push(
                "database",
                Status::Problem,
                e.to_string(),
                Some("correct [directory] as the message says".into()),
            );
            return;
        }
    };
    match store.check_schema() {
        Ok(()) => r.push(
            "database",
            Status::Ok,
            format!(
                "{} answers {tls} and holds schema version {}",
                store.url(),
                crate::store::postgres::PG_SCHEMA_VERSION
            ),
            None,
        ),
        Err(e) => r.push(
            "database",
            Status::Problem,
            e.to_string(),
            Some(format!(
                "check that the server runs and accepts {} from this host (pg_hba.conf), that directory.password_file is right and that tls = {:?} matches the server; a missing or older schema is created by `smimegw directory migrate`",
                store.url(),
                db.tls
            )),
        ),
    }
    if db.tls == crate::config::DatabaseTls::Require {
        r.push(
            "database",
            Status::Warning,
            "tls = \"require\" encrypts but accepts any server certificate: a machine in the path can pose as the database".into(),
            Some("set tls = \"verify-full\" (with directory.ca_file for a private CA)".into()),
        );
    }
}

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// As it should be.
    Ok,
    /// Works, but not as well as it could (or the check could not run).
    Warning,
    /// Needs fixing.
    Problem,
}

/// One result of one check.
#[derive(Clone, Debug)]
pub struct Finding {
    /// What was checked ("configuration", "next hop", ...).
    pub check: &'static str,
    /// The verdict.
    pub status: Status,
    /// What was found, naming the file, user or host.
    pub summary: String,
    /// What to do about it (problems and warnings).
    pub fix: Option<String>,
}

/// Every finding, in the order the checks ran.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The findings.
    pub findings: Vec<Finding>,
}

impl Report {
    fn push(&mut self, check: &'static str, status: Status, summary: String, fix: Option<String>) {
        self.findings.push(Finding {
            check,
            status,
            summary,
            fix,
        });
    }

    /// How many findings have this status.
    pub fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }
}

/// What the checks look for.
#[derive(Clone, Debug)]
pub struct Options {
    /// Certificates expiring within this many days are problems.
    pub expiry_days: u32,
    /// Longest wait for the next hop (capped by `relay.timeout_secs`).
    pub network_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            expiry_days: 30,
            network_timeout: Duration::from_secs(10),
        }
    }
}

/// Runs every check against the configuration at `config_path` (`data_dir` is `--data-dir`).
pub fn run(config_path: &Path, data_dir: Option<&Path>, opts: &Options) -> Report {
    let mut r = Report::default();
    let config = match Config::load(config_path, data_dir) {
        Ok(c) => {
            r.push(
                "configuration",
                Status::Ok,
                format!("{} loads and validates", config_path.display()),
                None,
            );
            c
        }
        Err(e) => {
            r.push(
                "configuration",
                Status::Problem,
                e.to_string(),
                Some("correct the key named above (config/smimegw.toml is a commented example); the other checks need a configuration that loads".into()),
            );
            return r;
        }
    };
    let kek_ok = check_kek(&mut r, &config);
    check_database(&mut r, &config);
    let dir = if kek_ok {
        match Directory::open(&config) {
            Ok(d) => {
                r.push(
                    "directory",
                    Status::Ok,
                    format!("{} opens with its key-encryption key", d.describe()),
                    None,
                );
                Some(d)
            }
            Err(e) => {
                r.push(
                    "directory",
                    Status::Problem,
                    e.to_string(),
                    Some("see the message; `smimegw ca init` creates a new directory".into()),
                );
                None
            }
        }
    } else {
        r.push(
            "directory",
            Status::Warning,
            "not checked: it cannot be opened without a usable key-encryption key".into(),
            Some("repair the key-encryption key (see above), then run doctor again".into()),
        );
        None
    };
    if let Some(dir) = &dir {
        check_ca(&mut r, dir, &config, opts);
        check_users(&mut r, dir, opts);
    }
    check_listeners(&mut r, &config);
    check_next_hop(&mut r, &config, opts);
    r
}

/// The listeners' roles, and the local Postfix's wiring of them. A `content_filter` in main.cf
/// applies to every smtpd and to pickup alike: pointed at `[submission]` it makes the gateway
/// sign whatever arrives on port 25 under any internal sender (a signing oracle); pointed at
/// `[listen]` it leaves submitted mail unsigned. Each filter belongs on its own smtpd service in
/// master.cf (`-o content_filter=...`).
fn check_listeners(r: &mut Report, config: &Config) {
    match &config.submission {
        Some(sub) => r.push(
            "listeners",
            Status::Ok,
            format!(
                "inbound mail on {} (never signed), submitted mail on {} (signed by policy)",
                config.listen.address, sub.address
            ),
            None,
        ),
        None => r.push(
            "listeners",
            Status::Warning,
            format!(
                "no [submission] table in {}: the gateway signs and encrypts nothing; mail on {} is only decrypted and verified",
                config.source.display(),
                config.listen.address
            ),
            Some("add [submission] with its own address (e.g. 127.0.0.1:10027) and point your submission and pickup services at it (README: Postfix integration)".into()),
        ),
    }
    // MAIL_CONFIG, if set, names the Postfix configuration directory, as for postconf itself.
    let out = match std::process::Command::new("postconf")
        .args(["-h", "content_filter"])
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(o) => o,
        Err(_) => {
            r.push(
                "postfix wiring",
                Status::Ok,
                "no local Postfix (postconf not found): nothing to check here".into(),
                None,
            );
            return;
        }
    };
    let value = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("main.cf: No such file") {
        r.push(
            "postfix wiring",
            Status::Ok,
            "Postfix is installed but not configured on this host (no main.cf)".into(),
            None,
        );
    } else if !out.status.success() {
        r.push(
            "postfix wiring",
            Status::Warning,
            format!("postconf failed: {}", stderr.trim()),
            Some("check by hand that main.cf sets no global content_filter".into()),
        );
    } else if value.is_empty() {
        r.push(
            "postfix wiring",
            Status::Ok,
            "main.cf sets no global content_filter".into(),
            None,
        );
    } else {
        r.push(
            "postfix wiring",
            Status::Problem,
            format!(
                "main.cf sets a global content_filter ({value}): every smtpd (port 25 included) and pickup use the same filter, so either mail from the world reaches the signing listener or submitted mail is never signed"
            ),
            Some("remove content_filter from main.cf (`postconf -X content_filter`) and set it per service in master.cf: `-o content_filter=...` on the port-25 smtpd towards [listen], on submission and pickup towards [submission] (README: Postfix integration)".into()),
        );
    }
}

/// The effective user id, from /proc (no libc call needed).
fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn check_kek(r: &mut Report, config: &Config) -> bool {
    let path = config.kek_path();
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) => {
            r.push(
                "key-encryption key",
                Status::Problem,
                format!("{}: {e}", path.display()),
                Some(if e.kind() == std::io::ErrorKind::NotFound {
                    "a new installation: run `smimegw ca init` (it creates the key); a directory that holds keys: restore the file from your backup".into()
                } else {
                    format!("make {} readable by the user smimegw runs as", path.display())
                }),
            );
            return false;
        }
    };
    let mode = meta.mode() & 0o777;
    let mut ok = true;
    if mode & 0o077 != 0 {
        r.push(
            "key-encryption key",
            Status::Problem,
            format!(
                "{} has mode {mode:04o}: other users can read the key that opens every private key",
                path.display()
            ),
            Some(format!(
                "chmod 600 {} (and consider who may have read it)",
                path.display()
            )),
        );
        ok = false;
    }
    // A copy of the data directory (a backup, a snapshot) must not hold both the sealed keys and
    // the key that opens them.
    let data = std::fs::canonicalize(config.data_dir()).unwrap_or(config.data_dir().into());
    let kek_dir = path
        .parent()
        .and_then(|p| std::fs::canonicalize(p).ok())
        .unwrap_or_default();
    if kek_dir.starts_with(&data) {
        let beside = Kek::resolve_path(None, Path::new("/nonexistent"), &config.source);
        r.push(
            "key-encryption key",
            Status::Warning,
            format!(
                "{} is inside the data directory {}: a backup of that directory holds both the sealed keys and the key that opens them",
                path.display(),
                config.data_dir().display()
            ),
            Some(format!(
                "stop smimegw, move the file out (e.g. mv {} {}; chmod 600 it) and back it up apart from the data directory; set key_encryption_key_file in {} if you put it elsewhere",
                path.display(),
                beside.display(),
                config.source.display()
            )),
        );
    }
    // The gateway runs as one user, which must own both the key and the database.
    let db = RedbStore::path_in(config.data_dir());
    let owner_ref: PathBuf = if db.exists() {
        db
    } else {
        config.data_dir().to_path_buf()
    };
    if let Ok(m) = std::fs::metadata(&owner_ref)
        && m.uid() != meta.uid()
    {
        r.push(
            "key-encryption key",
            Status::Problem,
            format!(
                "{} is owned by uid {}, but {} by uid {}: one of them will be unreadable to the gateway's user",
                path.display(),
                meta.uid(),
                owner_ref.display(),
                m.uid()
            ),
            Some(format!(
                "chown {} {} (the user that runs `smimegw serve`)",
                m.uid(),
                path.display()
            )),
        );
        ok = false;
    }
    if ok {
        match Kek::load(&path) {
            Ok(_) => {
                let who = match euid() {
                    Some(u) if u != meta.uid() && u != 0 => format!(
                        "; note: you are uid {u}, the gateway must run as its owner (uid {})",
                        meta.uid()
                    ),
                    _ => String::new(),
                };
                r.push(
                    "key-encryption key",
                    Status::Ok,
                    format!(
                        "{} has mode {mode:04o}, owner uid {}{who}",
                        path.display(),
                        meta.uid()
                    ),
                    None,
                );
            }
            Err(e) => {
                r.push(
                    "key-encryption key",
                    Status::Problem,
                    e.to_string(),
                    Some("restore the key file from your backup".into()),
                );
                ok = false;
            }
        }
    }
    ok
}

fn days(secs: i64) -> i64 {
    secs.div_euclid(86_400)
}

fn check_ca(r: &mut Report, dir: &Directory, config: &Config, opts: &Options) {
    let ca = match dir.ca_cert() {
        Ok(c) => c,
        Err(e) => {
            r.push(
                "CA",
                Status::Problem,
                e.to_string(),
                Some("run `smimegw ca init --name \"...\"` or `smimegw ca import`".into()),
            );
            return;
        }
    };
    let left = ca.not_after() - profile::now();
    let subject = ca.subject_string();
    let until = rfc3339(ca.not_after());
    if left <= 0 {
        r.push(
            "CA",
            Status::Problem,
            format!("{subject} expired on {until}: no certificate it issued validates any more"),
            Some("set up a new CA (a new data directory with `smimegw ca init`, or `ca import` of a successor from your root) and re-issue every user's certificates".into()),
        );
    } else if left < i64::from(opts.expiry_days) * 86_400 {
        r.push(
            "CA",
            Status::Problem,
            format!("{subject} expires in {} days ({until})", days(left)),
            Some("prepare a successor CA now and re-issue users' certificates before that date: every certificate it issued stops validating with it".into()),
        );
    } else if left < i64::from(config.ca.user_days) * 86_400 {
        r.push(
            "CA",
            Status::Warning,
            format!(
                "{subject} expires in {} days ({until}), sooner than a new user certificate would (ca.user_days = {})",
                days(left),
                config.ca.user_days
            ),
            Some("plan a successor CA; certificates issued now end with the CA".into()),
        );
    } else {
        r.push(
            "CA",
            Status::Ok,
            format!("{subject} valid until {until} ({} days)", days(left)),
            None,
        );
    }
}

fn check_users(r: &mut Report, dir: &Directory, opts: &Options) {
    let certs = match dir.expiry_report() {
        Ok(c) => c,
        Err(e) => {
            r.push("certificates", Status::Problem, e.to_string(), None);
            return;
        }
    };
    let now = profile::now();
    let limit = now + i64::from(opts.expiry_days) * 86_400;
    let mut users: Vec<&str> = certs.iter().map(|c| c.email.as_str()).collect();
    users.dedup();
    let mut soon = 0;
    for c in certs.iter().filter(|c| c.not_after <= limit) {
        soon += 1;
        let left = c.not_after - now;
        let when = if left <= 0 {
            format!("expired {} days ago", days(-left))
        } else {
            format!("expires in {} days", days(left))
        };
        let fix = if c.renewable {
            format!("smimegw user renew {}", c.email)
        } else {
            format!(
                "ask {} for a new certificate request (smimegw request approve) or a new PKCS #12 (smimegw user import); the gateway does not hold this key",
                c.email
            )
        };
        r.push(
            "certificates",
            Status::Problem,
            format!(
                "{} {} certificate (serial {}) {when} ({})",
                c.email,
                c.role,
                c.serial,
                rfc3339(c.not_after)
            ),
            Some(fix),
        );
    }
    if soon == 0 {
        r.push(
            "certificates",
            Status::Ok,
            format!(
                "{} active user(s); no current certificate expires within {} days",
                users.len(),
                opts.expiry_days
            ),
            None,
        );
    }
}

/// Whether every address `hop` (host:port) names is a loopback address. A name that does not
/// resolve counts as not loopback.
fn is_loopback_hop(hop: &str) -> bool {
    use std::net::ToSocketAddrs;
    let host = hop.rsplit_once(':').map_or(hop, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    match (host, 25).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// Decrypted inbound mail goes to the next hop in clear unless STARTTLS is required: on
/// loopback that is the same machine, anywhere else anyone on the path reads it, and an active
/// attacker can strip an opportunistic STARTTLS.
fn next_hop_exposure(config: &Config) -> Option<(Status, String, String)> {
    let hop = &config.relay.next_hop;
    if config.relay.starttls == StartTls::Required || is_loopback_hop(hop) {
        return None;
    }
    Some((
        Status::Warning,
        format!(
            "{hop} is not on this machine and relay.starttls is not \"required\": decrypted mail crosses the network where STARTTLS can be missing or stripped"
        ),
        format!(
            "set starttls = \"required\" under [relay] in {} (and give the next hop a certificate this system trusts), or relay to the MTA on loopback",
            config.source.display()
        ),
    ))
}

fn check_next_hop(r: &mut Report, config: &Config, opts: &Options) {
    if let Some((status, summary, fix)) = next_hop_exposure(config) {
        r.push("next hop transport", status, summary, Some(fix));
    }
    let hop = &config.relay.next_hop;
    let timeout = opts.network_timeout.min(config.relay.timeout());
    let relay = match Relay::new(&config.relay, &crate::gateway::authserv_id(config), timeout) {
        Ok(r) => r,
        Err(e) => {
            r.push("next hop", Status::Problem, e.to_string(), None);
            return;
        }
    };
    let probe = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(relay.probe()),
        Err(e) => Probe::Unreachable(format!("cannot start the network runtime: {e}")),
    };
    let mode = config.relay.starttls;
    let mode_name = match mode {
        StartTls::Off => "off",
        StartTls::Opportunistic => "opportunistic",
        StartTls::Required => "required",
    };
    let cfg = config.source.display();
    match probe {
        Probe::Unreachable(why) => r.push(
            "next hop",
            Status::Problem,
            format!("{hop}: {why}; every message would be deferred (4xx)"),
            Some(format!(
                "start the MTA's re-injection listener there (see \"Postfix integration\" in the README), or correct relay.next_hop in {cfg}"
            )),
        ),
        Probe::NotSmtp(why) => r.push(
            "next hop",
            Status::Problem,
            format!("{hop} accepts connections but does not speak SMTP as expected: {why}"),
            Some(format!(
                "check that relay.next_hop in {cfg} points at an SMTP listener (the MTA's re-injection smtpd)"
            )),
        ),
        Probe::Plain => {
            let (status, fix) = match mode {
                StartTls::Required => (
                    Status::Problem,
                    Some(format!(
                        "enable STARTTLS on the next hop, or set starttls = \"opportunistic\" or \"off\" under [relay] in {cfg}; until then every message is deferred"
                    )),
                ),
                StartTls::Opportunistic => (
                    Status::Warning,
                    Some("enable STARTTLS on the next hop if mail to it should be encrypted in transit".into()),
                ),
                StartTls::Off => (Status::Ok, None),
            };
            r.push(
                "next hop",
                status,
                format!(
                    "{hop} answers SMTP; STARTTLS not offered (relay.starttls = \"{mode_name}\")"
                ),
                fix,
            );
        }
        Probe::Tls => r.push(
            "next hop",
            Status::Ok,
            format!(
                "{hop} answers SMTP; STARTTLS works and its certificate verifies for {} (relay.starttls = \"{mode_name}\")",
                relay.host()
            ),
            None,
        ),
        Probe::TlsFailed(why) => {
            let fix = format!(
                "give the next hop a certificate for {} from a CA this system trusts (the system store, or SSL_CERT_FILE for smimegw), or set relay.next_hop to the name its certificate carries",
                relay.host()
            );
            let (status, consequence) = match mode {
                StartTls::Off => (
                    Status::Warning,
                    "harmless while relay.starttls = \"off\", but mail goes in clear",
                ),
                _ => (
                    Status::Problem,
                    "every message would be deferred (4xx) until it is fixed",
                ),
            };
            r.push(
                "next hop",
                status,
                format!("{hop} offers STARTTLS but the TLS handshake failed: {why}; {consequence}"),
                Some(fix),
            );
        }
    }
}

/// The report as text for a terminal: one block per finding, then a count.
pub fn render(config_path: &Path, report: &Report) -> String {
    let mut out = format!("smimegw doctor: {}\n\n", config_path.display());
    for f in &report.findings {
        let tag = match f.status {
            Status::Ok => "ok     ",
            Status::Warning => "WARNING",
            Status::Problem => "PROBLEM",
        };
        out.push_str(&format!("{tag}  {:<19} {}\n", f.check, f.summary));
        if let Some(fix) = &f.fix
            && f.status != Status::Ok
        {
            out.push_str(&format!("{:<29}fix: {fix}\n", ""));
        }
    }
    let (p, w) = (report.count(Status::Problem), report.count(Status::Warning));
    out.push('\n');
    out.push_str(&if p == 0 && w == 0 {
        "All checks passed.\n".to_string()
    } else {
        format!("{p} problem(s), {w} warning(s).\n")
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(relay: &str) -> Config {
        Config::parse(
            &format!("data_dir = \"/x\"\ninternal_domains = [\"acme.test\"]\n[relay]\n{relay}"),
            Path::new("t.toml"),
            None,
        )
        .unwrap()
    }

    /// A next hop off this machine without required STARTTLS is a warning naming the fix; on
    /// loopback, or with STARTTLS required, nothing to say. Pure: nothing is connected to.
    #[test]
    fn a_remote_next_hop_without_required_starttls_is_a_warning() {
        for (relay, warned) in [
            ("next_hop = \"127.0.0.1:10026\"\n", false),
            ("next_hop = \"[::1]:10026\"\n", false),
            ("next_hop = \"localhost:10026\"\n", false),
            ("next_hop = \"192.0.2.7:25\"\n", true),
            (
                "next_hop = \"192.0.2.7:25\"\nstarttls = \"opportunistic\"\n",
                true,
            ),
            ("next_hop = \"[2001:db8::7]:25\"\n", true),
            (
                "next_hop = \"192.0.2.7:25\"\nstarttls = \"required\"\n",
                false,
            ),
        ] {
            let found = next_hop_exposure(&config(relay));
            assert_eq!(found.is_some(), warned, "{relay}");
            if let Some((status, summary, fix)) = found {
                assert_eq!(status, Status::Warning);
                assert!(summary.contains("not on this machine"), "{summary}");
                assert!(fix.contains("starttls = \"required\""), "{fix}");
            }
        }
    }
}
