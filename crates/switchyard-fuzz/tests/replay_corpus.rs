//! The CI smoke run of the fuzz targets, on stable: every file of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` goes through its entry point. A missing or empty corpus fails
//! (so the replay cannot pass by finding nothing), as does a directory named after no target.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use switchyard_fuzz::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.map(|e| e.expect("readable directory entry").path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Runs every file; returns the failures as `path: panic message` lines.
fn replay(target: switchyard_fuzz::Target, files: &[PathBuf]) -> Vec<String> {
    let mut failures = Vec::new();
    for path in files {
        let bytes = fs::read(path).expect("readable corpus file");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(&bytes))) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failures.push(format!("{}: {message}", path.display()));
        }
    }
    failures
}

#[test]
fn every_target_has_a_corpus_and_replays_it_clean() {
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ is missing or empty: run fuzz/seed");
        failures.extend(replay(*target, &corpus));
        failures.extend(replay(*target, &files(&fuzz_dir().join("regressions").join(name))));
    }
    assert!(failures.is_empty(), "{} corpus inputs fail:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_corpus_directory_names_a_target_and_has_a_fuzz_target_file() {
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(fuzz_dir().join(kind)) else { continue };
        for entry in entries {
            let name = entry.expect("readable directory entry").file_name().into_string().expect("UTF-8 name");
            assert!(TARGETS.iter().any(|(t, _)| *t == name), "fuzz/{kind}/{name} is named after no target");
        }
    }
    for (name, _) in TARGETS {
        let source = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let text = fs::read_to_string(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        assert!(
            text.contains(&format!("switchyard_fuzz::{name}(")),
            "{} does not call its entry point",
            source.display()
        );
    }
}

/// The replay must be able to fail: an input that breaks a property is reported.
#[test]
fn a_failing_input_is_reported() {
    fn always_fails(_: &[u8]) {
        panic!("property broken");
    }
    let dir = fuzz_dir().join("corpus/sse_parser");
    let one = files(&dir).into_iter().take(1).collect::<Vec<_>>();
    let failures = replay(always_fails, &one);
    assert_eq!(failures.len(), 1);
    assert!(failures[0].ends_with("property broken"), "{failures:?}");
}
