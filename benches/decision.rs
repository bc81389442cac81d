//! How long deciding takes once everything is loaded, and how long reading what
//! `--add-kernel` decides from takes on the fixture system root (the kernel's symvers, tree
//! and links, and every installed build offered to it).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use weak_modules::core::compat::{Candidate, decide};
use weak_modules::core::offer::Run;
use weak_modules::shell::load::{ModuleFile, module_files};
use weak_modules::shell::snapshot::{self, Request, Snapshot};

/// The candidates were built for the first kernel and are judged against the second, the
/// usual case of a minor kernel update.
const CANDIDATES_BUILT_FOR: &str = "6.1.0-55-amd64";
const TARGET_KERNEL: &str = "6.1.0-56-amd64";

/// One with a gzip symvers in /boot and zstd/xz modules in `extra/`, one with a zstd symvers
/// in its lib/modules directory.
const LOADED_KERNELS: &[&str] = &["6.1.0-55-amd64", "6.1.0-56-amd64"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// What a run of `--add-kernel release` reads.
fn read_for_add_kernel(root: &Path, release: &str) -> Snapshot {
    let kernels = [release.to_owned()];
    let request = Request {
        run: Run::AddKernel,
        given: &[],
        kernels: Some(&kernels),
        leaving: None,
    };
    snapshot::read(root, &request).unwrap_or_else(|err| panic!("{err}"))
}

fn load_candidates(release: &str) -> Vec<ModuleFile> {
    let paths = module_files(&fixtures().join("built").join(release));
    assert!(!paths.is_empty(), "no fixture modules built for {release}");
    paths
        .iter()
        .map(|path| ModuleFile::read(path).unwrap_or_else(|err| panic!("{err}")))
        .collect()
}

fn decide_minor_update(c: &mut Criterion) {
    let read = read_for_add_kernel(&fixtures().join("root"), TARGET_KERNEL);
    let abi = read.kernels[TARGET_KERNEL].tree.abi();
    let loaded = load_candidates(CANDIDATES_BUILT_FOR);
    let candidates: Vec<Candidate> = loaded.iter().map(ModuleFile::candidate).collect();
    let id = format!(
        "{}_modules_built_for_{CANDIDATES_BUILT_FOR}_on_{TARGET_KERNEL}",
        candidates.len()
    );
    c.bench_function(&format!("decide/{id}"), |b| {
        b.iter(|| decide(black_box(&abi), black_box(&candidates)));
    });
}

fn load_installed_kernel(c: &mut Criterion) {
    let root = fixtures().join("root");
    let mut group = c.benchmark_group("read_for_add_kernel");
    for release in LOADED_KERNELS {
        group.bench_with_input(
            BenchmarkId::from_parameter(release),
            release,
            |b, release| {
                b.iter(|| read_for_add_kernel(black_box(&root), release));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, decide_minor_update, load_installed_kernel);
criterion_main!(benches);
