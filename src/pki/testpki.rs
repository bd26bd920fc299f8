//! Test fixtures made by the `openssl` command line: CAs run with `openssl ca` (so dates,
//! revocations and CRLs are OpenSSL's own), and `openssl verify` as the judge our path
//! validation is compared with.
//!
//! The tests need the binary and fail, never skip, without it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::pki::cert::{Cert, read_certs_file};

/// Key types the fixtures use: P-256 where speed matters, RSA to cover the other verifier.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeyKind {
    P256,
    Rsa2048,
}

/// A CA run with `openssl ca`: its own directory, database and serial file.
pub(crate) struct Ca {
    pub(crate) dir: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// A temporary directory of OpenSSL-made keys, certificates and CRLs.
pub(crate) struct Pki {
    dir: tempfile::TempDir,
    cas: AtomicU32,
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub(crate) const DAY: i64 = 86_400;

/// A Unix time as `openssl ca -startdate` wants it (GeneralizedTime form).
fn asn1_time(t: i64) -> String {
    let fmt = time::macros::format_description!("[year][month][day][hour][minute][second]Z");
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(&fmt)
        .unwrap()
}

fn require_openssl() {
    match Command::new("openssl").arg("version").output() {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "these tests compare with the `openssl` command line, which is not installed or \
             does not run: install OpenSSL 3 (e.g. `apt-get install openssl`)"
        ),
    }
}

impl Pki {
    pub(crate) fn new() -> Self {
        require_openssl();
        Self {
            dir: tempfile::tempdir().unwrap(),
            cas: AtomicU32::new(0),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs openssl in the fixture directory, returning (success, stdout+stderr).
    pub(crate) fn try_run(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Runs openssl and panics with its output if it fails.
    pub(crate) fn run(&self, args: &[&str]) -> String {
        let (ok, text) = self.try_run(args);
        assert!(ok, "openssl {} failed:\n{text}", args.join(" "));
        text
    }

    pub(crate) fn cert(&self, path: &Path) -> Cert {
        read_certs_file(path).unwrap().remove(0)
    }

    fn key(&self, name: &str, kind: KeyKind) -> PathBuf {
        let key = self.path(&format!("{name}.key"));
        let k = key.to_str().unwrap();
        match kind {
            KeyKind::P256 => self.run(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                k,
            ]),
            KeyKind::Rsa2048 => self.run(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                k,
            ]),
        };
        key
    }

    fn csr(&self, name: &str, subj: &str, key: &Path) -> PathBuf {
        let csr = self.path(&format!("{name}.csr"));
        self.run(&[
            "req",
            "-new",
            "-key",
            key.to_str().unwrap(),
            "-subj",
            subj,
            "-out",
            csr.to_str().unwrap(),
        ]);
        csr
    }

    /// Extensions of an S/MIME signing certificate for `email`.
    pub(crate) fn leaf_ext(&self, email: &str) -> String {
        format!(
            "basicConstraints = CA:FALSE\n\
             keyUsage = critical, digitalSignature, nonRepudiation\n\
             extendedKeyUsage = emailProtection\n\
             subjectAltName = email:{email}\n\
             subjectKeyIdentifier = hash\n\
             authorityKeyIdentifier = keyid\n"
        )
    }

    /// Extensions of a CA certificate; `extra` lines are appended (nameConstraints...).
    pub(crate) fn ca_ext(&self, pathlen: Option<u32>, extra: &str) -> String {
        let pl = pathlen
            .map(|n| format!(", pathlen:{n}"))
            .unwrap_or_default();
        format!(
            "basicConstraints = critical, CA:TRUE{pl}\n\
             keyUsage = critical, keyCertSign, cRLSign\n\
             subjectKeyIdentifier = hash\n\
             authorityKeyIdentifier = keyid\n{extra}\n"
        )
    }

    fn new_ca_dir(&self, name: &str) -> PathBuf {
        let n = self.cas.fetch_add(1, Ordering::SeqCst);
        let dir = self.path(&format!("{name}.ca"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        // Distinct serial ranges per CA make failures easier to read.
        std::fs::write(dir.join("serial"), format!("{:02X}01\n", 0x10 + n)).unwrap();
        let base = format!(
            "[ca]\ndefault_ca = d\n[d]\ndir = {}\ndatabase = $dir/index.txt\n\
             new_certs_dir = $dir\nserial = $dir/serial\ndefault_md = sha256\n\
             default_crl_days = 30\npolicy = p\nunique_subject = no\ncopy_extensions = none\n",
            dir.display()
        );
        std::fs::write(
            dir.join("v1.cnf"),
            format!("{base}[p]\ncommonName = optional\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("ca.cnf"),
            format!("{base}crlnumber = $dir/crlnumber\n[p]\ncommonName = optional\n"),
        )
        .unwrap();
        // CRLs naming their signer's key (authorityKeyIdentifier), which OpenSSL needs to find
        // a CRL signer other than the certificate's issuer (`-extended_crl`).
        std::fs::write(
            dir.join("akid.cnf"),
            format!(
                "{base}crlnumber = $dir/crlnumber\ncrl_extensions = crl_ext\n\
                 [p]\ncommonName = optional\n[crl_ext]\nauthorityKeyIdentifier = keyid:always\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
        dir
    }

    #[allow(clippy::too_many_arguments)] // test fixture: reads better flat
    fn ca_sign(
        &self,
        ca_dir: &Path,
        signer: Option<&Ca>,
        self_key: Option<&Path>,
        csr: &Path,
        out: &Path,
        ext: &str,
        dates: (i64, i64),
        extra: &[&str],
    ) {
        let extfile = out.with_extension("ext");
        std::fs::write(&extfile, format!("[ext]\n{ext}")).unwrap();
        let cnf = ca_dir.join("ca.cnf");
        let (start, end) = (asn1_time(dates.0), asn1_time(dates.1));
        let mut args: Vec<&str> = vec![
            "ca",
            "-batch",
            "-notext",
            "-preserveDN",
            "-config",
            cnf.to_str().unwrap(),
            "-in",
            csr.to_str().unwrap(),
            "-out",
            out.to_str().unwrap(),
            "-startdate",
            &start,
            "-enddate",
            &end,
            "-extfile",
            extfile.to_str().unwrap(),
            "-extensions",
            "ext",
        ];
        let (cert, key);
        if let Some(ca) = signer {
            cert = ca.cert.to_str().unwrap().to_string();
            key = ca.key.to_str().unwrap().to_string();
            args.extend(["-cert", &cert, "-keyfile", &key]);
        } else {
            key = self_key.unwrap().to_str().unwrap().to_string();
            args.extend(["-selfsign", "-keyfile", &key]);
        }
        args.extend(extra);
        self.run(&args);
    }

    /// A self-signed CA (or, with a leaf `ext`, a self-signed end-entity certificate).
    pub(crate) fn root(&self, name: &str, subj: &str, kind: KeyKind, ext: Option<&str>) -> Ca {
        self.root_dated(name, subj, kind, ext, (now() - DAY, now() + 3650 * DAY))
    }

    pub(crate) fn root_dated(
        &self,
        name: &str,
        subj: &str,
        kind: KeyKind,
        ext: Option<&str>,
        dates: (i64, i64),
    ) -> Ca {
        let dir = self.new_ca_dir(name);
        let key = self.key(name, kind);
        let csr = self.csr(name, subj, &key);
        let cert = self.path(&format!("{name}.pem"));
        let default_ext = "basicConstraints = critical, CA:TRUE\n\
                           keyUsage = critical, keyCertSign, cRLSign\n\
                           subjectKeyIdentifier = hash\n";
        self.ca_sign(
            &dir,
            None,
            Some(&key),
            &csr,
            &cert,
            ext.unwrap_or(default_ext),
            dates,
            &[],
        );
        Ca { dir, cert, key }
    }

    /// A certificate issued by `ca`, written to `<name>.pem`.
    pub(crate) fn issue(
        &self,
        ca: &Ca,
        name: &str,
        subj: &str,
        ext: &str,
        kind: KeyKind,
        dates: Option<(i64, i64)>,
    ) -> PathBuf {
        self.issue_with(ca, name, subj, ext, kind, dates, &[])
    }

    /// [`Self::issue`] with extra `openssl ca` arguments (e.g. `-md sha1`).
    #[allow(clippy::too_many_arguments)] // test fixture: reads better flat
    pub(crate) fn issue_with(
        &self,
        ca: &Ca,
        name: &str,
        subj: &str,
        ext: &str,
        kind: KeyKind,
        dates: Option<(i64, i64)>,
        extra: &[&str],
    ) -> PathBuf {
        let key = self.key(name, kind);
        let csr = self.csr(name, subj, &key);
        let cert = self.path(&format!("{name}.pem"));
        let dates = dates.unwrap_or((now() - DAY, now() + 365 * DAY));
        self.ca_sign(&ca.dir, Some(ca), None, &csr, &cert, ext, dates, extra);
        cert
    }

    /// Lets the already issued `<name>.pem` / `<name>.key` issue certificates with `openssl ca`
    /// (whether or not it is really a CA).
    pub(crate) fn ca_for(&self, name: &str) -> Ca {
        Ca {
            dir: self.new_ca_dir(&format!("{name}-as")),
            cert: self.path(&format!("{name}.pem")),
            key: self.path(&format!("{name}.key")),
        }
    }

    /// A subordinate CA issued by `parent`, ready to issue in turn.
    pub(crate) fn issue_ca(
        &self,
        parent: &Ca,
        name: &str,
        subj: &str,
        ext: &str,
        kind: KeyKind,
    ) -> Ca {
        let cert = self.issue(
            parent,
            name,
            subj,
            ext,
            kind,
            Some((now() - DAY, now() + 1825 * DAY)),
        );
        let dir = self.new_ca_dir(name);
        Ca {
            dir,
            cert,
            key: self.path(&format!("{name}.key")),
        }
    }

    /// A cross-certificate: `issuer` certifies `foreign`'s subject name and public key
    /// (`openssl x509 -x509toreq` then `openssl ca`), with the CA extensions `ext`.
    pub(crate) fn cross(&self, issuer: &Ca, foreign: &Ca, name: &str, ext: &str) -> PathBuf {
        let csr = self.path(&format!("{name}.csr"));
        self.run(&[
            "x509",
            "-x509toreq",
            "-in",
            foreign.cert.to_str().unwrap(),
            "-signkey",
            foreign.key.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
        ]);
        let cert = self.path(&format!("{name}.pem"));
        self.ca_sign(
            &issuer.dir,
            Some(issuer),
            None,
            &csr,
            &cert,
            ext,
            (now() - DAY, now() + 1825 * DAY),
            &[],
        );
        cert
    }

    /// Revokes `<name>.pem` in `ca`'s database.
    pub(crate) fn revoke(&self, ca: &Ca, name: &str, reason: Option<&str>) {
        let cert = self.path(&format!("{name}.pem"));
        let cnf = ca.dir.join("ca.cnf");
        let mut args = vec![
            "ca",
            "-batch",
            "-config",
            cnf.to_str().unwrap(),
            "-cert",
            ca.cert.to_str().unwrap(),
            "-keyfile",
            ca.key.to_str().unwrap(),
            "-revoke",
            cert.to_str().unwrap(),
        ];
        match reason {
            Some("certificateHold") => args.extend(["-crl_hold", "holdInstructionReject"]),
            Some(r) => args.extend(["-crl_reason", r]),
            None => {}
        }
        self.run(&args);
    }

    /// `openssl ca -gencrl`: version 2 with a cRLNumber when `numbered`, else version 1.
    pub(crate) fn gencrl(&self, ca: &Ca, numbered: bool) -> PathBuf {
        let (cnf, ext) = if numbered {
            ("ca.cnf", "crl")
        } else {
            ("v1.cnf", "v1.crl")
        };
        self.gencrl_with(ca, cnf, ext)
    }

    /// A numbered CRL that also carries authorityKeyIdentifier.
    pub(crate) fn gencrl_akid(&self, ca: &Ca) -> PathBuf {
        self.gencrl_with(ca, "akid.cnf", "akid.crl")
    }

    fn gencrl_with(&self, ca: &Ca, cnf: &str, ext: &str) -> PathBuf {
        let cnf = ca.dir.join(cnf);
        let out = ca.cert.with_extension(ext);
        self.run(&[
            "ca",
            "-batch",
            "-config",
            cnf.to_str().unwrap(),
            "-cert",
            ca.cert.to_str().unwrap(),
            "-keyfile",
            ca.key.to_str().unwrap(),
            "-gencrl",
            "-out",
            out.to_str().unwrap(),
        ]);
        out
    }

    /// Concatenates PEM files (for `-untrusted`, `-CAfile`, `-CRLfile`).
    pub(crate) fn bundle(&self, name: &str, parts: &[&Path]) -> PathBuf {
        let out = self.path(name);
        let mut text = String::new();
        for p in parts {
            text.push_str(&std::fs::read_to_string(p).unwrap());
        }
        std::fs::write(&out, text).unwrap();
        out
    }

    /// `openssl verify` against `cafile` only (no system store): (trusted, output).
    pub(crate) fn verify(
        &self,
        cafile: &Path,
        untrusted: &[&Path],
        leaf: &Path,
        extra: &[&str],
    ) -> (bool, String) {
        let mut args: Vec<String> = ["verify", "-no-CApath", "-no-CAstore", "-CAfile"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(cafile.display().to_string());
        if !untrusted.is_empty() {
            let n = self.cas.fetch_add(1, Ordering::SeqCst);
            let b = self.bundle(&format!("untrusted-{n}.pem"), untrusted);
            args.push("-untrusted".into());
            args.push(b.display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(leaf.display().to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.try_run(&refs)
    }
}
