//! Replays the fuzz corpora through the library entry points the fuzz targets call
//! (`smimegw::fuzzing`), so every crash, hang or out-of-memory libFuzzer found stays fixed and
//! every committed seed still runs cleanly, under plain `cargo test` (no nightly, no sanitizer).
//!
//! Inputs: `fuzz/regressions/<target>/*` (one minimised finding per file, named after the bug)
//! and the committed seeds `fuzz/corpus/<target>/seed-*` (a local fuzzing run adds many more
//! files there; those are not replayed here).

use std::path::{Path, PathBuf};

/// Targets whose fuzzing found bugs: their regression directory must exist and be non-empty.
const WITH_FINDINGS: &[&str] = &[];

fn files(dir: &Path, seeds_only: bool) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !seeds_only
                || p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("seed-"))
        })
        .collect();
    v.sort();
    v
}

fn replay(target: &str, run: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = files(&fuzz.join("corpus").join(target), true);
    let regressions = files(&fuzz.join("regressions").join(target), false);
    assert!(
        !seeds.is_empty(),
        "no seeds in fuzz/corpus/{target}/seed-* (regenerate them with fuzz/seed)"
    );
    if WITH_FINDINGS.contains(&target) {
        assert!(
            !regressions.is_empty(),
            "fuzz/regressions/{target}/ is missing or empty, but {target} had findings"
        );
    }
    for p in seeds.iter().chain(&regressions) {
        let data = std::fs::read(p).unwrap();
        eprintln!("{target}: {}", p.display());
        run(&data);
    }
    eprintln!(
        "{target}: replayed {} seeds and {} regressions",
        seeds.len(),
        regressions.len()
    );
}

#[test]
fn inbound_corpus_replays() {
    replay("inbound", smimegw::fuzzing::inbound);
}

#[test]
fn pki_corpus_replays() {
    replay("pki", smimegw::fuzzing::pki);
}

#[test]
fn smtp_session_corpus_replays() {
    replay("smtp_session", smimegw::fuzzing::smtp_session);
}

#[test]
fn config_corpus_replays() {
    replay("config", smimegw::fuzzing::config);
}
