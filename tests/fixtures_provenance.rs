//! Every committed fixture file is listed in fixtures/SOURCES.md with its origin and sha256, and
//! the listed hash is the file's.

mod common;

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The rows of the "## Files" table: path relative to fixtures/ -> sha256.
fn listed_files() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(fixtures_dir().join("SOURCES.md")).expect("SOURCES.md");
    let table = text.split("## Files").nth(1).expect("a '## Files' section");
    table
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| file "))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells[1].to_owned(), cells[3].to_owned())
        })
        .collect()
}

fn committed_files() -> Vec<String> {
    let base = fixtures_dir();
    let mut files = Vec::new();
    for top in ["root", "built", "expected"] {
        for entry in walkdir::WalkDir::new(base.join(top)) {
            let entry = entry.expect("walk fixtures");
            if entry.file_type().is_file() {
                let relative = entry.path().strip_prefix(&base).unwrap();
                files.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    files
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(&bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[test]
fn every_listed_fixture_has_the_recorded_sha256() {
    let listed = listed_files();
    assert!(
        listed.len() > 100,
        "SOURCES.md lists only {} files",
        listed.len()
    );
    let wrong: Vec<&String> = listed
        .iter()
        .filter(|(file, sha)| sha256_hex(&fixtures_dir().join(file)) != **sha)
        .map(|(file, _)| file)
        .collect();
    assert!(
        wrong.is_empty(),
        "sha256 differs from SOURCES.md: {wrong:?}"
    );
}

#[test]
fn every_committed_fixture_is_listed() {
    let listed = listed_files();
    let unlisted: Vec<String> = committed_files()
        .into_iter()
        .filter(|file| !listed.contains_key(file))
        .collect();
    assert!(unlisted.is_empty(), "not in SOURCES.md: {unlisted:?}");
}

/// The tests name the fixture kernels through one list, tests/common's `KERNELS`: it must be
/// every kernel fixtures/root installs, no more.
#[test]
fn the_shared_list_of_kernels_is_the_fixture_tree() {
    let mut installed: Vec<String> = std::fs::read_dir(fixtures_dir().join("root/lib/modules"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    installed.sort();
    assert_eq!(installed, common::KERNELS);
}
