//! A private PostgreSQL cluster for one test: `initdb` in a temp dir, a free loopback port,
//! password (SCRAM) authentication over TCP, run as the unprivileged `postgres` user when the
//! tests run as root (PostgreSQL refuses to run as root). Stopped (immediately) on drop.
//! benches/e2e.rs includes this file too (`--directory postgres`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The server binaries of the newest installed PostgreSQL; panics (never skips) without them.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, b)| b)
        .expect("PostgreSQL's server is missing (no /usr/lib/postgresql/*/bin/initdb): install the Debian package `postgresql` (scripts/test does this)")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub const PASSWORD: &str = "fleet-test-password";

pub struct PgCluster {
    _dir: tempfile::TempDir,
    root: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    pub port: u16,
    /// Server certificate and key files once TLS is on.
    tls: std::cell::RefCell<Option<(PathBuf, PathBuf)>>,
}

impl PgCluster {
    /// initdb and start; panics with the server's log when it does not come up.
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("pg");
        std::fs::create_dir(&root).unwrap();
        let as_postgres = is_root();
        if as_postgres {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let o = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&root)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "chown postgres {}: {o:?}",
                root.display()
            );
        }
        let pwfile = root.join("pwfile");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
        let cluster = Self {
            _dir: dir,
            root,
            bin,
            as_postgres,
            port: free_port(),
            tls: Default::default(),
        };
        if as_postgres {
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&pwfile)
                .status()
                .unwrap();
        }
        let data = cluster.root.join("data");
        let o = cluster.pg(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "smimegw",
                "--pwfile",
                pwfile.to_str().unwrap(),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(o.status.success(), "initdb failed: {o:?}");
        cluster.start_server();
        cluster
    }

    /// Runs one of the server's programs, as `postgres` when we are root.
    fn pg(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args).current_dir(&self.root);
        cmd.output()
            .unwrap_or_else(|e| panic!("{}: {e}", exe.display()))
    }

    /// (Re)starts the server on its port and waits until it accepts connections.
    pub fn start_server(&self) {
        let data = self.root.join("data");
        let log = self.root.join("server.log");
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.root.display()
        );
        if let Some((cert, key)) = &*self.tls.borrow() {
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert.display(),
                key.display()
            ));
        }
        let o = self.pg(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            o.status.success(),
            "pg_ctl start failed: {o:?}\nserver log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Restarts the server with TLS on, with this certificate chain and key (PEM).
    pub fn enable_tls(&self, cert: &std::path::Path, key: &std::path::Path) {
        use std::os::unix::fs::PermissionsExt;
        let (c, k) = (self.root.join("server.crt"), self.root.join("server.key"));
        std::fs::copy(cert, &c).unwrap();
        std::fs::copy(key, &k).unwrap();
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
        if self.as_postgres {
            for f in [&c, &k] {
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(f)
                    .status()
                    .unwrap();
            }
        }
        *self.tls.borrow_mut() = Some((c, k));
        self.stop_server();
        self.start_server();
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
    }

    /// Stops the server at once (as a crash or a failover would look to a client).
    pub fn stop_server(&self) {
        let data = self.root.join("data");
        let o = self.pg(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        assert!(o.status.success(), "pg_ctl stop failed: {o:?}");
    }

    /// SQL as the superuser over TCP (psql from postgresql-client); returns the output.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        let o = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "smimegw",
            ])
            .args(["-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("psql (Debian package postgresql-client)");
        assert!(o.status.success(), "psql {sql:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A new, empty database.
    pub fn create_database(&self, name: &str) {
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
    }

    /// The `[directory]` table for `database` (every node reads the same password file).
    pub fn directory_table(&self, database: &str) -> String {
        let pw = self.root.join("client-password");
        std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
        format!(
            "[directory]\nurl = \"postgres://smimegw@127.0.0.1:{}/{database}\"\npassword_file = \"{}\"\ntls = \"off\"\ntimeout_secs = 3\n",
            self.port,
            pw.display()
        )
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.root.join("data");
        let _ = self.pg(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}
