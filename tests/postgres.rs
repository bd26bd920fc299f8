//! A fleet of gateways on one PostgreSQL directory (issue 13), against a real server: a private
//! cluster per test (tests/common/postgres.rs), two `serve` processes and CLIs of either node
//! on the same database, each node with its own data_dir and the same key-encryption key.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::postgres::PgCluster;
use common::smtp::{Sink, free_port, send};
use common::{Gw, openssl_ok};

/// One node: its own data_dir, ports and KEK file; `[directory]` on `database`, relaying to
/// `sink`, encryption required for acme.test (so a revoked certificate shows as a refusal).
struct Node {
    gw: Gw,
    port: u16,
    sub: SocketAddr,
    metrics: u16,
}

fn node(cluster: &PgCluster, database: &str, sink: &Sink) -> Node {
    let (port, sub, metrics) = (free_port(), free_port(), free_port());
    let directory = cluster.directory_table(database);
    let gw = Gw::with_config(&format!(
        "authserv_id = \"gw.acme.test\"\n{directory}\
         [policy.domains.\"acme.test\"]\nencrypt = \"required\"\n\
         [listen]\naddress = \"127.0.0.1:{port}\"\n\
         [submission]\naddress = \"127.0.0.1:{sub}\"\n\
         [relay]\nnext_hop = \"{}\"\n\
         [metrics]\nlisten = \"127.0.0.1:{metrics}\"\n",
        sink.addr
    ));
    Node {
        gw,
        port,
        sub: SocketAddr::from(([127, 0, 0, 1], sub)),
        metrics,
    }
}

/// Gives `to` the key-encryption key of `from` (what the shared systemd credential does).
fn share_kek(from: &Node, to: &Node) {
    std::fs::copy(from.gw.path("smimegw.kek"), to.gw.path("smimegw.kek")).unwrap();
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    common::http_raw(
        SocketAddr::from(([127, 0, 0, 1], port)),
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
}

/// The message inside an encrypted copy, opened with `who`'s key through `gw`'s directory.
fn decrypt_as(gw: &Gw, who: &str, data: &[u8]) -> String {
    let opened = gw.run_stdin(&["smime", "decrypt", "--as", who], Some(data));
    assert!(opened.status.success(), "{opened:?}");
    String::from_utf8_lossy(&opened.stdout).into_owned()
}

fn plain(from: &str, to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: <{}@acme.test>\r\n\r\nbody of {subject}\r\n",
        subject.replace(' ', ".")
    )
    .into_bytes()
}

/// Repeats `f` until it returns true or `limit` passes; returns the time it took.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn two_nodes_share_users_keys_revocations_and_harvested_certificates() {
    let cluster = PgCluster::start();
    cluster.create_database("fleet");
    let sink = Sink::start();
    let a = node(&cluster, "fleet", &sink);
    let b = node(&cluster, "fleet", &sink);
    // Node A creates the schema, the KEK and the CA; B gets the same KEK.
    let ca = a.gw.init_ca();
    share_kek(&a, &b);
    assert_eq!(
        cluster.sql("fleet", "SELECT version FROM smimegw_schema"),
        "2\n"
    );
    let _serve_b = b.gw.serve_on(b.port);
    let _serve_a = a.gw.serve_on(a.port);

    // Enrolment on A while B runs; mail signed and encrypted by B.
    a.gw.enroll("alice@acme.test", "Alice", "p256");
    a.gw.enroll("carol@acme.test", "Carol", "p256");
    let (code, text) = send(
        b.sub,
        "alice@acme.test",
        &["carol@acme.test"],
        &plain("alice@acme.test", "carol@acme.test", "from b"),
    );
    assert_eq!(code, 250, "node B signs for a user enrolled on A: {text}");
    let got = sink.wait_for(1);
    let out = String::from_utf8_lossy(&got[0].data).into_owned();
    assert!(out.contains("enveloped-data"), "{out}");
    // Carol's key opens it (through B's CLI, which reads the same directory) and OpenSSL
    // verifies Alice's signature inside against our CA.
    let f = b.gw.path("inner.eml");
    std::fs::write(&f, decrypt_as(&b.gw, "carol@acme.test", &got[0].data)).unwrap();
    let verified = openssl_ok(
        b.gw.dir.path(),
        &[
            "cms",
            "-verify",
            "-in",
            f.to_str().unwrap(),
            "-CAfile",
            ca.to_str().unwrap(),
            "-purpose",
            "smimesign",
        ],
    );
    assert!(verified.contains("body of from b"), "{verified}");

    // A message Carol signed before her revocation.
    let signed_by_carol =
        b.gw.run_stdin(
            &["smime", "sign", "--signer", "carol@acme.test"],
            Some(&plain("carol@acme.test", "alice@acme.test", "carol signs")),
        )
        .stdout;
    let (code, text) = send(
        SocketAddr::from(([127, 0, 0, 1], b.port)),
        "carol@acme.test",
        &["alice@acme.test"],
        &signed_by_carol,
    );
    assert_eq!(code, 250, "{text}");
    let got = sink.wait_for(2);
    assert!(
        String::from_utf8_lossy(&got[1].data).contains("smime=pass"),
        "before the revocation B passes Carol's signature: {}",
        String::from_utf8_lossy(&got[1].data)
    );

    // Revoked on A; in force on B within 2 seconds, for encryption and for signatures.
    a.gw.ok(&[
        "user",
        "revoke",
        "carol@acme.test",
        "--reason",
        "keyCompromise",
    ]);
    let took = within(Duration::from_secs(2), || {
        let (code, _) = send(
            b.sub,
            "alice@acme.test",
            &["carol@acme.test"],
            &plain("alice@acme.test", "carol@acme.test", "after revoke"),
        );
        code == 550
    });
    assert!(
        took.is_some(),
        "B still encrypts to Carol's revoked certificate after 2 s"
    );
    let before = sink.messages().len();
    let (code, text) = send(
        SocketAddr::from(([127, 0, 0, 1], b.port)),
        "carol@acme.test",
        &["alice@acme.test"],
        &signed_by_carol,
    );
    assert_eq!(code, 250, "{text}");
    let got = sink.wait_for(before + 1);
    let annotated = String::from_utf8_lossy(&got[before].data).into_owned();
    assert!(
        !annotated.contains("smime=pass") && annotated.contains("revoked"),
        "B must pass no signature of the revoked certificate: {annotated}"
    );

    // Harvested on B (a partner's signed mail), used for encryption on A. The partner's root is
    // cross-certified on A: in force on B within 2 s (B's cache confirms the fleet's generation
    // every 250 ms).
    let partner = common::partner::setup(&a.gw);
    let from_bob = partner.signed(&a.gw, "alice@acme.test", "hello", "hi from bob");
    let took = within(Duration::from_secs(2), || {
        let before = sink.messages().len();
        let (code, text) = send(
            SocketAddr::from(([127, 0, 0, 1], b.port)),
            "bob@partner.test",
            &["alice@acme.test"],
            &from_bob,
        );
        assert_eq!(code, 250, "{text}");
        String::from_utf8_lossy(&sink.wait_for(before + 1)[before].data).contains("smime=pass")
    });
    assert!(
        took.is_some(),
        "the cross-certification made on A is not in force on B after 2 s"
    );
    let before = sink.messages().len();
    let (code, text) = send(
        a.sub,
        "alice@acme.test",
        &["bob@partner.test"],
        &plain("alice@acme.test", "bob@partner.test", "to bob"),
    );
    assert_eq!(code, 250, "{text}");
    let got = sink.wait_for(before + 1);
    let to_bob = &got[before];
    assert_eq!(to_bob.rcpts, ["bob@partner.test"]);
    let f = a.gw.path("to-bob.eml");
    std::fs::write(&f, &to_bob.data).unwrap();
    let opened = openssl_ok(
        a.gw.dir.path(),
        &[
            "cms",
            "-decrypt",
            "-in",
            f.to_str().unwrap(),
            "-recip",
            partner.cert.to_str().unwrap(),
            "-inkey",
            partner.key.to_str().unwrap(),
        ],
    );
    assert!(
        opened.contains("body of to bob"),
        "A encrypts to the certificate B harvested: {opened}"
    );

    // Both nodes wrote one audit log, and its chain holds.
    let verify = a.gw.ok(&["audit", "--verify"]);
    assert!(verify.contains("the chain holds"), "{verify}");
    let (code, body) = http_get(b.metrics, "/healthz");
    assert_eq!((code, body.as_str()), (200, "ok\n"));
}

#[test]
fn two_clis_enrolling_100_users_each_at_once_issue_distinct_serials_and_a_complete_audit() {
    let cluster = PgCluster::start();
    cluster.create_database("fleet");
    let sink = Sink::start();
    let a = node(&cluster, "fleet", &sink);
    let b = node(&cluster, "fleet", &sink);
    a.gw.init_ca();
    share_kek(&a, &b);
    let enroll_all = |n: &Node, prefix: &str| {
        for i in 0..100 {
            n.gw.enroll(&format!("{prefix}{i}@acme.test"), "Fleet User", "p256");
        }
    };
    std::thread::scope(|s| {
        s.spawn(|| enroll_all(&a, "a"));
        s.spawn(|| enroll_all(&b, "b"));
    });

    let users: serde_json::Value =
        serde_json::from_str(&a.gw.ok(&["user", "list", "--json"])).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 200);
    let issued: serde_json::Value =
        serde_json::from_str(&b.gw.ok(&["ca", "issued", "--json"])).unwrap();
    let serials: Vec<String> = issued
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap().to_string())
        .collect();
    let distinct: std::collections::HashSet<_> = serials.iter().collect();
    assert_eq!(serials.len(), 400, "two certificates per user");
    assert_eq!(distinct.len(), serials.len(), "no serial issued twice");

    let audit: serde_json::Value = serde_json::from_str(&a.gw.ok(&["audit", "--json"])).unwrap();
    let audit = audit.as_array().unwrap();
    let enrolments = audit
        .iter()
        .filter(|e| e["action"] == "user.enroll")
        .count();
    assert_eq!(enrolments, 200, "one audit line per enrolment");
    for (i, e) in audit.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1, "audit numbered without gaps");
    }
    let verify = b.gw.ok(&["audit", "--verify"]);
    assert!(verify.contains("the chain holds"), "{verify}");
}

#[test]
fn the_database_stopped_under_load_gives_4xx_loses_nothing_and_the_gateway_recovers() {
    let cluster = PgCluster::start();
    cluster.create_database("fleet");
    let sink = Sink::start();
    let a = node(&cluster, "fleet", &sink);
    a.gw.init_ca();
    a.gw.enroll("alice@acme.test", "Alice", "p256");
    a.gw.enroll("carol@acme.test", "Carol", "p256");
    let _serve = a.gw.serve_on(a.port);

    // Four clients send until the outage is over; each retries a 4xx as an MTA does.
    let accepted = std::sync::Mutex::new(Vec::new());
    let deferred = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    use std::sync::atomic::Ordering::SeqCst;
    std::thread::scope(|s| {
        for t in 0..4 {
            let (accepted, deferred, done, a) = (&accepted, &deferred, &done, &a);
            s.spawn(move || {
                let mut i = t;
                while !done.load(SeqCst) {
                    let subject = format!("load {i}");
                    let msg = plain("alice@acme.test", "carol@acme.test", &subject);
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        let (code, text) =
                            send(a.sub, "alice@acme.test", &["carol@acme.test"], &msg);
                        match code {
                            250 => break,
                            421 | 451 => {
                                deferred.fetch_add(1, SeqCst);
                                assert!(text.contains("4.3.0") || code == 421, "{code} {text}");
                                assert!(
                                    Instant::now() < deadline,
                                    "no recovery within 60 s: {text}"
                                );
                                std::thread::sleep(Duration::from_millis(100));
                            }
                            other => panic!(
                                "message {i} got {other} {text}: never 5xx for a database outage"
                            ),
                        }
                    }
                    accepted.lock().unwrap().push(subject);
                    i += 4;
                    // A steady trickle: every accepted message is opened one by one below.
                    std::thread::sleep(Duration::from_millis(150));
                }
            });
        }
        // The database goes away in the middle of it and comes back.
        std::thread::sleep(Duration::from_millis(700));
        cluster.stop_server();
        let down = within(Duration::from_secs(10), || {
            let (code, body) = http_get(a.metrics, "/healthz");
            code == 503 && body.contains("directory unavailable") && body.contains("127.0.0.1")
        });
        assert!(
            down.is_some(),
            "/healthz says why while the database is down: {:?}",
            http_get(a.metrics, "/healthz")
        );
        // Past the cache's 250 ms of trust in the last confirmed generation, a message needs
        // the database, and is deferred.
        std::thread::sleep(Duration::from_millis(300));
        let (code, text) = send(
            a.sub,
            "alice@acme.test",
            &["carol@acme.test"],
            &plain("alice@acme.test", "carol@acme.test", "probe"),
        );
        if code != 451 {
            cluster.start_server();
        }
        assert_eq!(code, 451, "{text}");
        std::thread::sleep(Duration::from_secs(2));
        cluster.start_server();
        std::thread::sleep(Duration::from_secs(1));
        done.store(true, SeqCst);
    });
    assert!(
        deferred.load(SeqCst) > 0,
        "the outage was seen by the clients"
    );
    let accepted = accepted.into_inner().unwrap();
    // Every accepted message arrived, exactly once.
    let got = sink.wait_for(accepted.len());
    assert_eq!(got.len(), accepted.len(), "nothing more, nothing less");
    let mut subjects: Vec<String> = got
        .iter()
        .map(|m| {
            let text = decrypt_as(&a.gw, "carol@acme.test", &m.data);
            let at = text.find("body of load ").expect("a load message");
            text[at + 8..]
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    subjects.sort();
    let mut expected = accepted.clone();
    expected.sort();
    assert_eq!(subjects, expected, "each accepted message delivered once");
    let (code, _) = http_get(a.metrics, "/healthz");
    assert_eq!(code, 200, "ready again after the restart");
}

/// Everything an administrator can list, as JSON, to compare two stores.
fn listing(gw: &Gw) -> Vec<String> {
    [
        vec!["user", "list", "--json"],
        vec!["request", "list", "--all", "--json"],
        vec!["trust", "list", "--json"],
        vec!["ca", "issued", "--json"],
        vec!["ca", "show", "--pem"],
    ]
    .iter()
    .map(|args| gw.ok(args))
    .collect()
}

#[test]
fn export_from_redb_import_into_postgres_and_export_again_is_identical() {
    let cluster = PgCluster::start();
    cluster.create_database("restored");
    cluster.create_database("busy");
    let sink = Sink::start();

    // An embedded directory with some history.
    let single = Gw::new();
    single.init_ca();
    single.enroll("alice@acme.test", "Alice", "p256");
    single.enroll("carol@acme.test", "Carol", "rsa2048");
    single.ok(&["user", "revoke", "carol@acme.test"]);
    common::partner::setup(&single);
    let id = single.submit_csr("dave@acme.test", "Dave");
    single.ok(&["request", "approve", &id]);
    let first = single.path("first.json");
    let out = single.ok(&["directory", "export", first.to_str().unwrap(), "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(summary["records"].as_u64().unwrap() > 10, "{out}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&first).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Never overwritten.
    let err = single.fails(&["directory", "export", first.to_str().unwrap()], 2);
    assert!(
        err.contains("first.json") && err.contains("never overwrites"),
        "{err}"
    );

    // A PostgreSQL node with the same KEK restores it.
    let pg = node(&cluster, "restored", &sink);
    std::fs::copy(single.path("smimegw.kek"), pg.gw.path("smimegw.kek")).unwrap();
    let out = pg.gw.ok(&["directory", "import", first.to_str().unwrap()]);
    assert!(out.contains("imported"), "{out}");
    assert_eq!(
        listing(&single),
        listing(&pg.gw),
        "every listing equal after the restore"
    );
    let audit_before: serde_json::Value =
        serde_json::from_str(&single.ok(&["audit", "--json"])).unwrap();
    let audit_after: serde_json::Value =
        serde_json::from_str(&pg.gw.ok(&["audit", "--json"])).unwrap();
    let (before, after) = (
        audit_before.as_array().unwrap(),
        audit_after.as_array().unwrap(),
    );
    assert_eq!(
        after.len(),
        before.len() + 1,
        "one audit line of the import's own"
    );
    assert_eq!(&after[..before.len()], &before[..]);
    assert_eq!(after[before.len()]["action"], "directory.import");
    assert!(pg.gw.ok(&["audit", "--verify"]).contains("the chain holds"));

    // Exported again from PostgreSQL: the same records, byte for byte, and the same log with
    // the import's line added.
    let second = single.path("second.json");
    pg.gw.ok(&["directory", "export", second.to_str().unwrap()]);
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let (one, two) = (read(&first), read(&second));
    let mut one_tables = one["tables"].clone();
    let mut two_tables = two["tables"].clone();
    // The audit head moves with the import's own line: compare it apart.
    let strip_head = |t: &mut serde_json::Value| {
        let meta = t["meta"].as_array_mut().unwrap();
        meta.retain(|r| r["key"] != "audit_head");
    };
    strip_head(&mut one_tables);
    strip_head(&mut two_tables);
    assert_eq!(
        one_tables, two_tables,
        "records identical after redb -> PostgreSQL"
    );
    let (log1, log2) = (
        one["audit"].as_array().unwrap(),
        two["audit"].as_array().unwrap(),
    );
    assert_eq!(&log2[..log1.len()], &log1[..]);

    // The restored node serves: Alice's key signs through it.
    let _s = pg.gw.serve_on(pg.port);
    pg.gw.enroll("erin@acme.test", "Erin", "p256");
    let (code, text) = send(
        pg.sub,
        "alice@acme.test",
        &["erin@acme.test"],
        &plain("alice@acme.test", "erin@acme.test", "restored"),
    );
    assert_eq!(code, 250, "{text}");

    // An import never lands on a directory that holds anything, nor under another KEK.
    let busy = node(&cluster, "busy", &sink);
    std::fs::copy(single.path("smimegw.kek"), busy.gw.path("smimegw.kek")).unwrap();
    busy.gw.init_ca();
    let err = busy
        .gw
        .fails(&["directory", "import", first.to_str().unwrap()], 2);
    assert!(err.contains("needs an empty directory"), "{err}");
    let other = Gw::new();
    other.init_ca();
    std::fs::remove_dir_all(other.data_dir()).unwrap();
    let err = other.fails(&["directory", "import", first.to_str().unwrap()], 2);
    assert!(
        err.contains("key-encryption key")
            && err.contains("does not match")
            && err.contains("first.json"),
        "{err}"
    );
    assert!(
        !other.data_dir().exists(),
        "nothing created under a wrong KEK"
    );
}

#[test]
fn schema_versions_are_migrated_or_refused_by_name() {
    let cluster = PgCluster::start();
    cluster.create_database("old");
    let sink = Sink::start();
    let n = node(&cluster, "old", &sink);
    // No schema yet: a command names the fix.
    let err = n.gw.fails(&["user", "list"], 2);
    assert!(
        err.contains("no smimegw directory at postgres://smimegw@127.0.0.1"),
        "{err}"
    );
    // An older schema (version 0: the table of versions and nothing else).
    cluster.sql(
        "old",
        "CREATE TABLE smimegw_schema (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL); INSERT INTO smimegw_schema VALUES (1, 0)",
    );
    let err = n.gw.fails(&["user", "list"], 2);
    assert!(
        err.contains("schema is version 0") && err.contains("smimegw directory migrate"),
        "{err}"
    );
    let doctor = n.gw.run(&["doctor"]);
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(report.contains("smimegw directory migrate"), "{report}");
    let out = n.gw.ok(&["directory", "migrate"]);
    assert!(out.contains("upgraded from version 0 to 2"), "{out}");
    let out = n.gw.ok(&["directory", "migrate"]);
    assert!(out.contains("schema version 2, up to date"), "{out}");
    n.gw.init_ca();
    let doctor = n.gw.run(&["doctor"]);
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        report.contains("answers without TLS and holds schema version 2"),
        "{report}"
    );

    // A newer schema (a newer smimegw migrated the database): refused, nothing changed.
    cluster.sql("old", "UPDATE smimegw_schema SET version = 99");
    let err = n.gw.fails(&["user", "list"], 2);
    assert!(
        err.contains("schema version 99") && err.contains("reads version 2"),
        "{err}"
    );
    let o = n.gw.run(&["serve"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("schema version 99"),
        "{o:?}"
    );
    let err = n.gw.fails(&["directory", "migrate"], 2);
    assert!(err.contains("schema version 99"), "{err}");

    // TLS demanded from a server that offers none: a clear error, not a silent plain connection.
    let text = std::fs::read_to_string(&n.gw.config)
        .unwrap()
        .replace("tls = \"off\"", "tls = \"require\"");
    std::fs::write(&n.gw.config, text).unwrap();
    let err = n.gw.fails(&["user", "list"], 2);
    assert!(
        err.contains("127.0.0.1") && err.to_lowercase().contains("tls"),
        "{err}"
    );
}

#[test]
fn tls_to_the_database_is_verified_against_ca_file_or_refused_by_name() {
    let cluster = PgCluster::start();
    cluster.create_database("tls");
    let sink = Sink::start();
    let n = node(&cluster, "tls", &sink);
    // The server's certificate for "localhost" comes from the node's own CA here; in a real
    // site it is the database's own CA, named by ca_file.
    let ca = {
        // A throwaway embedded directory issues it, so the database is still empty.
        let issuer = Gw::new();
        let ca = issuer.init_ca();
        let (cert, key) = (issuer.path("db.crt"), issuer.path("db.key"));
        issuer.ok(&[
            "ca",
            "issue-server",
            "localhost",
            "--cert-out",
            cert.to_str().unwrap(),
            "--key-out",
            key.to_str().unwrap(),
        ]);
        cluster.enable_tls(&cert, &key);
        let kept = n.gw.path("db-ca.pem");
        std::fs::copy(ca, &kept).unwrap();
        kept
    };
    let set_tls = |table: &str| {
        let text: String = std::fs::read_to_string(&n.gw.config)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("ca_file = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let start = text.find("tls = ").unwrap();
        let end = start + text[start..].find('\n').unwrap();
        let text = format!("{}{table}{}", &text[..start], &text[end..])
            .replace("@127.0.0.1:", "@localhost:");
        std::fs::write(&n.gw.config, text).unwrap();
    };

    // verify-full against the right CA: works, and doctor says how.
    set_tls(&format!(
        "tls = \"verify-full\"\nca_file = \"{}\"",
        ca.display()
    ));
    n.gw.init_ca();
    n.gw.enroll("alice@acme.test", "Alice", "p256");
    let report = String::from_utf8_lossy(&n.gw.run(&["doctor"]).stdout).into_owned();
    assert!(
        report.contains("answers over TLS, server certificate verified"),
        "{report}"
    );
    let users = n.gw.ok(&["user", "list", "--json"]);
    assert!(users.contains("alice@acme.test"), "{users}");

    // verify-full with the system roots, which do not hold this CA: refused, naming the cause.
    set_tls("tls = \"verify-full\"");
    let err = n.gw.fails(&["user", "list"], 2);
    assert!(
        err.contains("localhost") && (err.contains("certificate") || err.contains("Certificate")),
        "{err}"
    );
    // require: encrypted without authentication, and doctor warns.
    set_tls("tls = \"require\"");
    n.gw.ok(&["user", "list"]);
    let report = String::from_utf8_lossy(&n.gw.run(&["doctor"]).stdout).into_owned();
    assert!(
        report.contains("accepts any server certificate"),
        "{report}"
    );
}
