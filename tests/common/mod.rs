//! Shared helpers for the integration tests: a scratch directory with a config, the smimegw
//! binary, and the independent peers (openssl, gpgsm, NSS) that judge what we produce.
#![allow(dead_code)]

pub mod partner;
pub mod postgres;
pub mod smtp;
pub mod wrap;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Panics (never skips) when a peer tool is missing: the suite's verdicts depend on it.
pub fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "the test peer `{tool}` is missing: install the Debian package `{package}` (scripts/test does this)"
    );
}

/// A scratch gateway: temp dir, config file, data dir.
pub struct Gw {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Gw {
    /// A config with only data_dir and internal_domains (the minimal config must work).
    pub fn new() -> Self {
        Self::with_config("")
    }

    /// Same, with extra TOML appended. The metrics listener (on by default, on one fixed port)
    /// is switched off unless `extra` configures `[metrics]`: gateways of tests running in
    /// parallel would otherwise compete for 127.0.0.1:9925.
    pub fn with_config(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("smimegw.toml");
        let metrics = if extra.contains("[metrics]") {
            ""
        } else {
            "\n[metrics]\nenabled = false\n"
        };
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{}\"\ninternal_domains = [\"acme.test\"]\n{extra}{metrics}",
                dir.path().join("data").display()
            ),
        )
        .expect("write config");
        Self { dir, config }
    }

    /// A gateway serving acme.test with alice@acme.test enrolled, its inbound listener
    /// (`[listen]`, authserv-id gw.acme.test) on a free port and relaying to `next_hop`;
    /// `relay_extra` is added to `[relay]`. Returns it and the listener's port.
    pub fn inbound(next_hop: SocketAddr, relay_extra: &str) -> (Self, u16) {
        let port = smtp::free_port();
        let gw = Self::with_config(&format!(
            "authserv_id = \"gw.acme.test\"\n[listen]\naddress = \"127.0.0.1:{port}\"\n\
             [relay]\nnext_hop = \"{next_hop}\"\n{relay_extra}"
        ));
        gw.init_ca();
        gw.enroll("alice@acme.test", "Alice", "p256");
        (gw, port)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs smimegw with this config; returns the output whatever the status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smimegw"));
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.env_remove("SMIMEGW_DATA_DIR")
            .env_remove("SMIMEGW_CONFIG");
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn smimegw");
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        child.wait_with_output().expect("wait smimegw")
    }

    /// Runs smimegw and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "smimegw {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs smimegw, asserts it failed with `code`, returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "smimegw {args:?} should exit {code}:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// `ca init` with a fast key, and the CA certificate written to ca.pem.
    pub fn init_ca(&self) -> PathBuf {
        self.ok(&["ca", "init", "--name", "Acme Test Root", "--key", "p256"]);
        let pem = self.ok(&["ca", "show", "--pem"]);
        let p = self.path("ca.pem");
        std::fs::write(&p, pem).unwrap();
        p
    }

    /// `user enroll EMAIL --name NAME --key KEY`: dual certificates for a test user.
    pub fn enroll(&self, email: &str, name: &str, key: &str) -> String {
        self.ok(&["user", "enroll", email, "--name", name, "--key", key])
    }

    /// A P-256 key and a CSR for `email` (common name `cn`) made with OpenSSL in the temp dir,
    /// submitted with `request submit --role signing`; returns the request id.
    pub fn submit_csr(&self, email: &str, cn: &str) -> String {
        let d = self.dir.path();
        let (key, csr) = (format!("{email}.key"), format!("{email}.csr"));
        openssl_ok(
            d,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &key,
            ],
        );
        let san = format!("subjectAltName=email:{email}");
        let subj = format!("/CN={cn}");
        openssl_ok(
            d,
            &[
                "req", "-new", "-key", &key, "-subj", &subj, "-addext", &san, "-out", &csr,
            ],
        );
        let csr = d.join(&csr);
        let out = self.ok(&[
            "request",
            "submit",
            "--csr",
            csr.to_str().unwrap(),
            "--role",
            "signing",
        ]);
        out.lines().last().unwrap().trim().to_string()
    }

    /// [`Gw::enroll`] with a P-256 key and certificates valid for `days` days.
    pub fn enroll_for_days(&self, email: &str, name: &str, days: u32) -> String {
        let days = days.to_string();
        self.ok(&[
            "user", "enroll", email, "--name", name, "--key", "p256", "--days", &days,
        ])
    }

    /// The audit log once it mentions `action` (or after about 10 s, whatever it says then).
    pub fn wait_for_audit(&self, action: &str) -> String {
        let mut audit = String::new();
        for _ in 0..200 {
            audit = self.ok(&["audit"]);
            if audit.contains(action) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        audit
    }

    /// `ca issue-server HOST` into `tls.crt`/`tls.key`, and `[listen]` (and `[submission]`, when
    /// the configuration has one) pointed at them, so that `serve` offers STARTTLS on both. Returns what `ca issue-server` printed.
    pub fn enable_starttls(&self, host: &str) -> String {
        let (cert, key) = (self.path("tls.crt"), self.path("tls.key"));
        let out = self.ok(&[
            "ca",
            "issue-server",
            host,
            "--cert-out",
            cert.to_str().unwrap(),
            "--key-out",
            key.to_str().unwrap(),
        ]);
        let mut config = std::fs::read_to_string(&self.config).unwrap();
        for table in ["[listen]\n", "[submission]\n"] {
            config = config.replacen(
                table,
                &format!(
                    "{table}tls_cert = \"{}\"\ntls_key = \"{}\"\n",
                    cert.display(),
                    key.display()
                ),
                1,
            );
        }
        std::fs::write(&self.config, config).unwrap();
        out
    }

    /// The one way the tests start `smimegw serve`: this configuration, no inherited data
    /// directory or configuration from the environment, stdin and stdout closed, stderr
    /// appended to `serve.log` in the temp dir ([`Gw::serve_log`]). Add `.env(...)` (say
    /// `SMIMEGW_LOG`) before `.spawn()`.
    pub fn serve_command(&self) -> Command {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.path("serve.log"))
            .expect("serve.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smimegw"));
        cmd.arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env_remove("SMIMEGW_DATA_DIR")
            .env_remove("SMIMEGW_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        cmd
    }

    /// What every `serve` of this gateway logged so far.
    pub fn serve_log(&self) -> String {
        std::fs::read_to_string(self.path("serve.log")).unwrap_or_default()
    }

    /// `smimegw serve` on this configuration ([`Gw::serve_command`]), as a child process.
    pub fn spawn_serve(&self) -> std::process::Child {
        self.serve_command().spawn().expect("spawn smimegw serve")
    }

    /// [`Gw::spawn_serve`], once it listens on 127.0.0.1:`port`.
    pub fn serve_on(&self, port: u16) -> Serve {
        Serve::listening(self.spawn_serve(), port)
    }

    /// The `[submission]` listener's address, read back from the configuration file (the
    /// listener users submit through: the one that signs).
    pub fn submission_addr(&self) -> SocketAddr {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let config: toml::Table = text.parse().expect("config is TOML");
        config["submission"]["address"]
            .as_str()
            .expect("the configuration has a [submission] address")
            .parse()
            .expect("submission.address is an address")
    }

    /// Writes a user's certificate to a file and returns its path.
    pub fn cert_file(&self, email: &str, role: &str) -> PathBuf {
        let pem = self.ok(&["user", "cert", email, "--role", role]);
        let p = self.path(&format!("{email}-{role}.pem"));
        std::fs::write(&p, pem).unwrap();
        p
    }

    /// A snapshot of everything an admin can see, to prove a failed command changed nothing.
    pub fn snapshot(&self) -> String {
        let users = self.run(&["user", "list", "--json"]);
        let reqs = self.run(&["request", "list", "--all", "--json"]);
        let trust = self.run(&["trust", "list", "--json"]);
        let audit = self.run(&["audit", "--json"]);
        [users, reqs, trust, audit]
            .iter()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .collect::<Vec<_>>()
            .join("\n--\n")
    }
}

/// Runs openssl in `dir`; returns (success, stdout+stderr).
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    require("openssl", "openssl");
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Runs openssl and asserts success.
pub fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, out) = openssl(dir, args);
    assert!(ok, "openssl {args:?} failed:\n{out}");
    out
}

/// Runs a shell command in `dir` and asserts success.
pub fn sh_ok(dir: &Path, script: &str) -> String {
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "`{script}` failed:\n{out}");
    out
}

/// One raw HTTP exchange; returns (status, body).
pub fn http_raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    // A request the server refuses early may not be read to its end: ignore write errors.
    let _ = std::io::Write::write_all(&mut s, request);
    let mut out = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A running `smimegw serve` and the SMTP address it listens on, killed (SIGKILL) and reaped on
/// drop so that a failing test leaves no gateway behind.
pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Serve {
    /// Waits until `child` listens on 127.0.0.1:`port`; panics (after killing it) if it does not.
    pub fn listening(child: Child, port: u16) -> Self {
        let mut s = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        if !smtp::wait_listening(s.addr) {
            s.kill9();
            panic!("smimegw serve did not start listening on {}", s.addr);
        }
        s
    }

    /// SIGKILL (std's `Child::kill` sends SIGKILL on Unix) and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Another smimegw as a next hop: on a free port, relaying to `sink`, offering STARTTLS with a
/// certificate for `localhost` from its own CA. Returns it, the running server, and its CA
/// certificate file (what SSL_CERT_FILE must name for the relay to trust it).
pub fn tls_next_hop(sink: SocketAddr) -> (Gw, Serve, PathBuf) {
    let port = smtp::free_port();
    let hop = Gw::with_config(&format!(
        "[listen]\naddress = \"127.0.0.1:{port}\"\n[relay]\nnext_hop = \"{sink}\"\n"
    ));
    let ca = hop.init_ca();
    hop.enable_starttls("localhost");
    let serve = hop.serve_on(port);
    (hop, serve, ca)
}

/// A TLS client configuration that trusts only the CA certificate(s) in the PEM file `ca`: the
/// test then proves the server's chain leads to that CA, not to some system root.
pub fn tls_client_trusting(ca: &Path) -> std::sync::Arc<tokio_rustls::rustls::ClientConfig> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut std::fs::read(ca).unwrap().as_slice()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}
