//! Revocation from the certificates' own distribution points, end to end through `smimegw
//! serve`: a foreign CA run with `openssl ca` publishes its CRLs on loopback HTTP servers owned
//! by the test (which count the requests), and inbound mail signed by its users gets the verdict
//! the fetched CRL (or its absence) calls for, within the configured bound. Loopback only.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::smtp::{Sink, free_port, send};
use common::{Gw, Serve, openssl_ok};

const AUTHSERV: &str = "gw.acme.test";

/// What a test server answers: from the request's method, path and body.
type Handler = Arc<dyn Fn(&str, &str, &[u8]) -> Vec<u8> + Send + Sync>;

/// A loopback HTTP server answering every request with `handler`'s bytes (or, without one,
/// `body`), after `delay`, counting requests.
struct CrlServer {
    addr: SocketAddr,
    body: Arc<Mutex<Vec<u8>>>,
    hits: Arc<AtomicUsize>,
}

impl CrlServer {
    fn start(delay: Duration) -> Self {
        Self::with_handler(delay, None)
    }

    fn with_handler(delay: Duration, handler: Option<Handler>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let body = Arc::new(Mutex::new(Vec::new()));
        let hits = Arc::new(AtomicUsize::new(0));
        let (b, h) = (body.clone(), hits.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let (b, h, handler) = (b.clone(), h.clone(), handler.clone());
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    let mut request_line = String::new();
                    let _ = r.read_line(&mut request_line);
                    let mut length = 0usize;
                    let mut line = String::new();
                    while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        line.clear();
                    }
                    let mut req = vec![0u8; length];
                    let _ = std::io::Read::read_exact(&mut r, &mut req);
                    h.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(delay);
                    let mut parts = request_line.split(' ');
                    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    let body = match &handler {
                        Some(f) => f(method, path, &req),
                        None => b.lock().unwrap().clone(),
                    };
                    let _ = conn.write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    );
                    let _ = conn.write_all(&body);
                });
            }
        });
        Self { addr, body, hits }
    }

    fn url(&self) -> String {
        format!("http://{}/partner.crl", self.addr)
    }

    fn serve_file(&self, path: &Path) {
        *self.body.lock().unwrap() = std::fs::read(path).unwrap();
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Request methods an [`ocsp_responder`] saw.
type Methods = Arc<Mutex<Vec<String>>>;

/// An OCSP responder on loopback: each request (GET or POST, RFC 6960 appendix A) is answered
/// by `openssl ocsp -index` (the real peer) signing with `signer`/`key`, valid for 5 minutes.
fn ocsp_responder(dir: &Path, signer: &str, key: &str) -> (CrlServer, Methods) {
    let (dir, signer, key) = (dir.to_path_buf(), signer.to_string(), key.to_string());
    let methods: Methods = Arc::default();
    let seen = methods.clone();
    let n = Arc::new(AtomicUsize::new(0));
    let handler: Handler = Arc::new(move |method, path, body| {
        use base64::Engine;
        seen.lock().unwrap().push(method.to_string());
        let der = if method == "GET" {
            let enc = path.rsplit('/').next().unwrap_or("");
            let b64 = enc
                .replace("%2B", "+")
                .replace("%2F", "/")
                .replace("%3D", "=");
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default()
        } else {
            body.to_vec()
        };
        let i = n.fetch_add(1, Ordering::SeqCst);
        let (req, resp) = (format!("ocsp-req-{i}.der"), format!("ocsp-resp-{i}.der"));
        std::fs::write(dir.join(&req), der).unwrap();
        let st = std::process::Command::new("openssl")
            .current_dir(&dir)
            .args([
                "ocsp",
                "-index",
                "index.txt",
                "-CA",
                "partner-root.pem",
                "-rsigner",
                &signer,
                "-rkey",
                &key,
                "-nmin",
                "5",
                "-reqin",
                &req,
                "-respout",
                &resp,
            ])
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        std::fs::read(dir.join(resp)).unwrap()
    });
    (
        CrlServer::with_handler(Duration::ZERO, Some(handler)),
        methods,
    )
}

const CA_CNF: &str = "[ca]\ndefault_ca = ca_default\n[ca_default]\ndir = .\n\
database = index.txt\nnew_certs_dir = newcerts\ncertificate = partner-root.pem\n\
private_key = partner-root.key\nserial = serial\ncrlnumber = crlnumber\ndefault_md = sha256\n\
default_days = 20\ndefault_crl_days = 7\npolicy = policy_any\nunique_subject = no\n\
[policy_any]\ncommonName = supplied\n";

/// The partner CA (an `openssl ca` directory in `d`), cross-certified for partner.test.
#[rustfmt::skip]
fn partner_ca(gw: &Gw) {
    let d = gw.dir.path();
    std::fs::write(d.join("ca.cnf"), CA_CNF).unwrap();
    std::fs::write(d.join("index.txt"), "").unwrap();
    std::fs::write(d.join("serial"), "1000\n").unwrap();
    std::fs::write(d.join("crlnumber"), "01\n").unwrap();
    std::fs::create_dir_all(d.join("newcerts")).unwrap();
    openssl_ok(d, &[
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "partner-root.key", "-out", "partner-root.pem", "-days", "30", "-subj",
        "/O=Partner/CN=Partner Fetch Root", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    gw.ok(&["trust", "cross-certify", d.join("partner-root.pem").to_str().unwrap(),
        "--permit-domain", "partner.test"]);
}

/// `<who>@partner.test`'s certificate and key, with its CRL at `crl_url` (none when `None`).
fn issue(gw: &Gw, who: &str, crl_url: Option<&str>) {
    issue_with(gw, who, crl_url, None, true);
}

/// [`issue`] with an OCSP responder in authorityInfoAccess; `indexed` false issues it with
/// `openssl x509 -req`, outside the CA's index, so the responder does not know it.
#[rustfmt::skip]
fn issue_with(gw: &Gw, who: &str, crl_url: Option<&str>, ocsp_url: Option<&str>, indexed: bool) {
    let d = gw.dir.path();
    let mut ext = format!(
        "keyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=emailProtection\n\
         subjectAltName=email:{who}@partner.test\n"
    );
    if let Some(u) = crl_url {
        ext.push_str(&format!("crlDistributionPoints=URI:{u}\n"));
    }
    if let Some(u) = ocsp_url {
        ext.push_str(&format!("authorityInfoAccess=OCSP;URI:{u}\n"));
    }
    std::fs::write(d.join(format!("{who}.ext")), ext).unwrap();
    openssl_ok(d, &[
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", &format!("{who}.key"), "-out", &format!("{who}.csr"), "-subj", &format!("/CN={who}"),
    ]);
    if indexed {
        openssl_ok(d, &[
            "ca", "-batch", "-config", "ca.cnf", "-notext", "-in", &format!("{who}.csr"),
            "-out", &format!("{who}.pem"), "-extfile", &format!("{who}.ext"),
        ]);
    } else {
        openssl_ok(d, &[
            "x509", "-req", "-in", &format!("{who}.csr"), "-CA", "partner-root.pem", "-CAkey",
            "partner-root.key", "-set_serial", "0x7777", "-days", "20", "-extfile",
            &format!("{who}.ext"), "-out", &format!("{who}.pem"),
        ]);
    }
}

/// A message from `who`@partner.test to alice, signed (detached) by OpenSSL.
#[rustfmt::skip]
fn signed_by(gw: &Gw, who: &str, subject: &str) -> Vec<u8> {
    let d = gw.dir.path();
    let (input, out) = (format!("{who}-{subject}.txt"), format!("{who}-{subject}.eml"));
    std::fs::write(d.join(&input), "Content-Type: text/plain\r\n\r\nhello\r\n").unwrap();
    openssl_ok(d, &[
        "cms", "-sign", "-in", &input, "-signer", &format!("{who}.pem"), "-inkey",
        &format!("{who}.key"), "-from", &format!("{who}@partner.test"), "-to",
        "alice@acme.test", "-subject", subject, "-out", &out,
    ]);
    std::fs::read(d.join(out)).unwrap()
}

struct Setup {
    sink: Sink,
    gw: Gw,
    serve: Option<Serve>,
}

impl Setup {
    fn new(revocation: &str) -> Self {
        let sink = Sink::start();
        let port = free_port();
        let gw = Gw::with_config(&format!(
            "authserv_id = \"{AUTHSERV}\"\n[revocation]\n{revocation}\n\
             [listen]\naddress = \"127.0.0.1:{port}\"\n[relay]\nnext_hop = \"{}\"\n",
            sink.addr
        ));
        gw.init_ca();
        gw.enroll("alice@acme.test", "Alice", "p256");
        partner_ca(&gw);
        Self {
            sink,
            gw,
            serve: None,
        }
    }

    fn start(&mut self) {
        let text = std::fs::read_to_string(&self.gw.config).unwrap();
        let port: u16 = text
            .split("address = \"127.0.0.1:")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        self.serve = Some(self.gw.serve_on(port));
    }

    /// Sends `msg` to alice; what reached the next hop (unfolded) and how long it took.
    fn deliver(&self, from: &str, msg: &[u8]) -> (String, Duration) {
        let before = self.sink.messages().len();
        let t = Instant::now();
        let (code, text) = send(
            self.serve.as_ref().unwrap().addr,
            from,
            &["alice@acme.test"],
            msg,
        );
        let took = t.elapsed();
        assert_eq!(code, 250, "{text}");
        let got = self.sink.wait_for(before + 1);
        let s = String::from_utf8_lossy(&got[before].data).into_owned();
        (s.replace("\r\n ", " ").replace("\r\n\t", " "), took)
    }

    /// A message signed by `who`@partner.test (subject `subject`) delivered to alice: asserts
    /// that its result is `smime=<result>` and that X-Smimegw-Result says each of `says`;
    /// returns how long the gateway took.
    fn expect(&self, who: &str, subject: &str, result: &str, says: &[&str]) -> Duration {
        let from = format!("{who}@partner.test");
        let (m, took) = self.deliver(&from, &signed_by(&self.gw, who, subject));
        assert!(result_of(&m).contains(&format!("smime={result}")), "{m}");
        let summary = summary_of(&m);
        for w in says {
            assert!(summary.contains(w), "{w:?} not in {summary}");
        }
        took
    }

    /// `openssl ca -gencrl` into `name`, with `extra` options.
    fn gencrl(&self, name: &str, extra: &[&str]) -> std::path::PathBuf {
        let d = self.gw.dir.path();
        let mut args = vec!["ca", "-gencrl", "-config", "ca.cnf", "-out", name];
        args.extend_from_slice(extra);
        openssl_ok(d, &args);
        d.join(name)
    }

    fn revoke(&self, who: &str) {
        openssl_ok(
            self.gw.dir.path(),
            &[
                "ca",
                "-config",
                "ca.cnf",
                "-revoke",
                &format!("{who}.pem"),
                "-crl_reason",
                "keyCompromise",
            ],
        );
    }
}

fn result_of(delivered: &str) -> String {
    let start = delivered
        .find(&format!("Authentication-Results: {AUTHSERV};"))
        .expect("our Authentication-Results");
    let end = delivered[start..].find("\r\n").unwrap() + start;
    delivered[start..end].to_string()
}

fn summary_of(delivered: &str) -> String {
    let start = delivered
        .find("X-Smimegw-Result:")
        .expect("X-Smimegw-Result");
    let end = delivered[start..].find("\r\n").unwrap() + start;
    delivered[start..end].to_string()
}

/// Good and revoked certificates of one CA, its CRL fetched once from its distribution point
/// for any number of messages; a CA that is down, one that publishes an out-of-date CRL and one
/// slower than the bound make the status unknown, judged by `when_unknown = "neutral"`.
#[test]
fn fetched_crls_decide_inbound_verdicts_within_the_bound() {
    let live = CrlServer::start(Duration::ZERO);
    let stale = CrlServer::start(Duration::ZERO);
    let slow = CrlServer::start(Duration::from_secs(6));
    let down = format!("http://127.0.0.1:{}/partner.crl", free_port());
    let mut s = Setup::new("timeout_secs = 1\nwhen_unknown = \"neutral\"");
    issue(&s.gw, "good", Some(&live.url()));
    issue(&s.gw, "gone", Some(&live.url()));
    issue(&s.gw, "down", Some(&down));
    issue(&s.gw, "old", Some(&stale.url()));
    issue(&s.gw, "slow", Some(&slow.url()));
    issue(&s.gw, "nocdp", None);
    s.revoke("gone");
    live.serve_file(&s.gencrl("live.crl", &[]));
    stale.serve_file(&s.gencrl(
        "stale.crl",
        &[
            "-crl_lastupdate",
            "20200101000000Z",
            "-crl_nextupdate",
            "20200108000000Z",
        ],
    ));
    slow.serve_file(&s.gw.dir.path().join("live.crl"));
    s.start();

    // Good: pass, saying how and how old; the second message costs no fetch.
    let checked = ["revocation checked (", "fetched CRL, "];
    s.expect("good", "one", "pass", &checked);
    assert_eq!(live.hits(), 1);
    s.expect("good", "two", "pass", &checked);
    // Revoked, from the same (cached) CRL.
    s.expect("gone", "three", "fail (revoked)", &["keyCompromise"]);
    assert_eq!(live.hits(), 1, "one fetch for every message of the CA");

    // The CA is down: unknown, neutral by policy, saying why.
    let policy = "when_unknown = \"neutral\"";
    s.expect(
        "down",
        "four",
        "neutral",
        &["revocation not checked: ", &down, policy],
    );
    // An out-of-date CRL is not an answer.
    s.expect("old", "five", "neutral", &["out of date"]);
    // A CA slower than timeout_secs: the message does not wait for it.
    let took = s.expect("slow", "six", "neutral", &["revocation not checked"]);
    assert!(took < Duration::from_secs(4), "waited {took:?}");
    // No distribution point at all.
    s.expect(
        "nocdp",
        "seven",
        "neutral",
        &["no http CRL distribution point"],
    );
}

/// The default policy lets an unknown status pass and says so; `trust check` prints the same
/// line; `fetch = false` fetches nothing.
#[test]
fn unknown_passes_by_default_and_trust_check_says_the_same() {
    let live = CrlServer::start(Duration::ZERO);
    let mut s = Setup::new("");
    issue(&s.gw, "good", Some(&live.url()));
    issue(&s.gw, "gone", Some(&live.url()));
    issue(&s.gw, "nocdp", None);
    s.revoke("gone");
    live.serve_file(&s.gencrl("live.crl", &[]));
    let d = s.gw.dir.path().to_path_buf();
    let out =
        s.gw.ok(&["trust", "check", d.join("good.pem").to_str().unwrap()]);
    assert!(
        out.contains("revocation: revocation checked (") && out.contains("fetched CRL, "),
        "{out}"
    );
    let o =
        s.gw.run(&["trust", "check", d.join("gone.pem").to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("NOT trusted") && out.contains("keyCompromise"),
        "{out}"
    );
    s.start();
    s.expect("nocdp", "one", "pass", &["revocation not checked: "]);

    let off = CrlServer::start(Duration::ZERO);
    let mut s = Setup::new("fetch = false");
    issue(&s.gw, "good", Some(&off.url()));
    s.start();
    s.expect("good", "two", "pass", &["fetch = false"]);
    assert_eq!(off.hits(), 0);
}

/// OCSP from the certificates' authorityInfoAccess, answered by `openssl ocsp`: good, revoked,
/// unknown to the responder, a responder that is down; signed by the CA itself or by a
/// delegated responder certificate; cached until nextUpdate (one request per certificate).
#[test]
fn ocsp_answers_decide_inbound_verdicts() {
    let mut s = Setup::new("timeout_secs = 2\nwhen_unknown = \"fail\"");
    let d = s.gw.dir.path().to_path_buf();
    // A delegated responder: issued by the CA for id-kp-OCSPSigning.
    std::fs::write(
        d.join("responder.ext"),
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\n",
    )
    .unwrap();
    #[rustfmt::skip]
    openssl_ok(&d, &[
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "responder.key", "-out", "responder.csr", "-subj", "/CN=Partner OCSP",
    ]);
    #[rustfmt::skip]
    openssl_ok(&d, &[
        "ca", "-batch", "-config", "ca.cnf", "-notext", "-in", "responder.csr", "-out",
        "responder.pem", "-extfile", "responder.ext",
    ]);
    let (by_ca, by_ca_methods) = ocsp_responder(&d, "partner-root.pem", "partner-root.key");
    let (delegated, delegated_methods) = ocsp_responder(&d, "responder.pem", "responder.key");
    let down = format!("http://127.0.0.1:{}/", free_port());
    let ca_url = format!("http://{}/", by_ca.addr);
    // A long responder URL: the request no longer fits a GET (RFC 6960 A.1) and goes by POST.
    let del_url = format!("http://{}/{}", delegated.addr, "ocsp/".repeat(40));
    issue_with(&s.gw, "good", None, Some(&ca_url), true);
    issue_with(&s.gw, "gone", None, Some(&ca_url), true);
    issue_with(&s.gw, "stranger", None, Some(&ca_url), false);
    issue_with(&s.gw, "deleg", None, Some(&del_url), true);
    issue_with(&s.gw, "down", None, Some(&down), true);
    s.revoke("gone");
    s.start();

    s.expect("good", "one", "pass", &["OCSP, "]);
    s.expect("good", "two", "pass", &["OCSP, "]);
    assert_eq!(by_ca.hits(), 1, "the answer is cached until nextUpdate");
    assert_eq!(*by_ca_methods.lock().unwrap(), ["GET"]);
    s.expect("gone", "three", "fail (revoked)", &["keyCompromise"]);
    let unknown = "fail (revocation-unknown)";
    s.expect("stranger", "four", unknown, &["does not know it"]);
    s.expect("deleg", "five", "pass", &["OCSP, "]);
    assert_eq!(delegated.hits(), 1);
    assert_eq!(*delegated_methods.lock().unwrap(), ["POST"]);
    s.expect("down", "six", unknown, &[&down, "when_unknown = \"fail\""]);
}

/// A CRL fetched from the distribution point but signed by another key of the partner CA (a
/// separate CRL-signing certificate with the CA's name, RFC 5280 section 6.3.3 (f)) answers for
/// the certificates the CA issued, once that signer is known to the directory (here from an old
/// CRL an administrator imported with `--issuer`): a revoked certificate fails, a good one
/// passes with "fetched CRL".
#[test]
#[rustfmt::skip]
fn a_fetched_crl_signed_by_another_key_of_the_ca_is_used() {
    let live = CrlServer::start(Duration::ZERO);
    let mut s = Setup::new("when_unknown = \"neutral\"");
    let d = s.gw.dir.path().to_path_buf();
    issue(&s.gw, "kept", Some(&live.url()));
    issue(&s.gw, "lost", Some(&live.url()));
    // The CRL signer: the CA's name, another key, cRLSign, issued by the CA.
    std::fs::write(d.join("crlsigner.ext"), "keyUsage=critical,cRLSign\n").unwrap();
    openssl_ok(&d, &[
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "crlsigner.key", "-out", "crlsigner.csr", "-subj", "/O=Partner/CN=Partner Fetch Root",
    ]);
    openssl_ok(&d, &[
        "x509", "-req", "-in", "crlsigner.csr", "-CA", "partner-root.pem", "-CAkey",
        "partner-root.key", "-set_serial", "0x5555", "-days", "20", "-extfile", "crlsigner.ext",
        "-out", "crlsigner.pem",
    ]);
    let by_signer = ["-cert", "crlsigner.pem", "-keyfile", "crlsigner.key"];
    // An old CRL by that key, imported by hand with its signer: out of date, so it does not
    // answer by itself, but the directory now knows the signer.
    let old = s.gencrl("old-by-signer.crl", &[
        "-cert", "crlsigner.pem", "-keyfile", "crlsigner.key",
        "-crl_lastupdate", "20200101000000Z", "-crl_nextupdate", "20200108000000Z",
    ]);
    s.gw.ok(&["trust", "import-crl", old.to_str().unwrap(), "--issuer",
        d.join("crlsigner.pem").to_str().unwrap()]);
    s.revoke("lost");
    live.serve_file(&s.gencrl("by-signer.crl", &by_signer));
    s.start();
    s.expect("kept", "one", "pass", &["revocation checked (", "fetched CRL, "]);
    s.expect("lost", "two", "fail (revoked)", &["keyCompromise"]);
    assert_eq!(live.hits(), 1);
}

/// The CRL of an intermediate below the cross-certified partner root, imported by hand with
/// `--issuer`, decides inbound mail through `serve`: a revoked certificate it issued fails, a
/// good one passes saying the imported CRL answered.
#[test]
#[rustfmt::skip]
fn an_imported_crl_of_an_intermediate_decides_inbound_verdicts() {
    let mut s = Setup::new("fetch = false");
    let d = s.gw.dir.path().to_path_buf();
    let cnf = CA_CNF
        .replace("certificate = partner-root.pem", "certificate = inter.pem")
        .replace("private_key = partner-root.key", "private_key = inter.key")
        .replace("database = index.txt", "database = inter-index.txt")
        .replace("serial = serial", "serial = inter-serial")
        .replace("crlnumber = crlnumber", "crlnumber = inter-crlnumber");
    std::fs::write(d.join("inter.cnf"), cnf).unwrap();
    std::fs::write(d.join("inter-index.txt"), "").unwrap();
    std::fs::write(d.join("inter-serial"), "2000\n").unwrap();
    std::fs::write(d.join("inter-crlnumber"), "01\n").unwrap();
    std::fs::write(d.join("inter.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n").unwrap();
    openssl_ok(&d, &[
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "inter.key", "-out", "inter.csr", "-subj", "/O=Partner/CN=Partner Issuing CA",
    ]);
    openssl_ok(&d, &[
        "x509", "-req", "-in", "inter.csr", "-CA", "partner-root.pem", "-CAkey", "partner-root.key",
        "-set_serial", "0x6666", "-days", "20", "-extfile", "inter.ext", "-out", "inter.pem",
    ]);
    for who in ["fine", "fired"] {
        std::fs::write(d.join(format!("{who}.ext")), format!(
            "keyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=emailProtection\n\
             subjectAltName=email:{who}@partner.test\n")).unwrap();
        openssl_ok(&d, &[
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", &format!("{who}.key"), "-out", &format!("{who}.csr"), "-subj", &format!("/CN={who}"),
        ]);
        openssl_ok(&d, &[
            "ca", "-batch", "-config", "inter.cnf", "-notext", "-in", &format!("{who}.csr"),
            "-out", &format!("{who}.pem"), "-extfile", &format!("{who}.ext"),
        ]);
    }
    openssl_ok(&d, &["ca", "-config", "inter.cnf", "-revoke", "fired.pem", "-crl_reason", "keyCompromise"]);
    openssl_ok(&d, &["ca", "-gencrl", "-config", "inter.cnf", "-out", "inter.crl"]);
    // Without --issuer the directory does not know the intermediate yet: refused, saying how.
    let err = s.gw.fails(&["trust", "import-crl", d.join("inter.crl").to_str().unwrap()], 2);
    assert!(err.contains("--issuer"), "{err}");
    s.gw.ok(&["trust", "import-crl", d.join("inter.crl").to_str().unwrap(), "--issuer",
        d.join("inter.pem").to_str().unwrap()]);
    s.start();
    for (who, result, says) in [
        ("fine", "pass", "imported CRL"),
        ("fired", "fail (revoked)", "keyCompromise"),
    ] {
        let (input, out) = (format!("{who}.txt"), format!("{who}.eml"));
        std::fs::write(d.join(&input), "Content-Type: text/plain\r\n\r\nhello\r\n").unwrap();
        openssl_ok(&d, &[
            "cms", "-sign", "-in", &input, "-signer", &format!("{who}.pem"), "-inkey",
            &format!("{who}.key"), "-certfile", "inter.pem", "-from", &format!("{who}@partner.test"),
            "-to", "alice@acme.test", "-subject", who, "-out", &out,
        ]);
        let msg = std::fs::read(d.join(&out)).unwrap();
        let (m, _) = s.deliver(&format!("{who}@partner.test"), &msg);
        assert!(result_of(&m).contains(&format!("smime={result}")), "{m}");
        assert!(summary_of(&m).contains(says), "{says:?} in {m}");
    }
}
