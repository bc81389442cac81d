//! The native decision agrees with the real depmod (fixtures/expected/depmod-matrix.txt) for
//! every fixture module x kernel that depmod can judge (docs/compat-rules.md, "What depmod
//! sees and what we see").
//!
//! The matrix was made the way bash weak-modules asks depmod: the candidate set alone in an
//! empty weak-updates/, `depmod -naeE symvers`. So the native side sees the same: the target's
//! symvers and the candidate set, and no module installed for the target. An export symvers
//! gives to a module counts only where that module is installed, so here none does: the view of
//! `-E`, which reads only the vmlinux lines and takes module exports from the `.ko` files it
//! scans. depmod calls a symbol of a module that is not there an unknown one, as it does one
//! nothing exports.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use weak_modules::core::compat::{Candidate, Reason, Verdict, decide};
use weak_modules::core::kernel::KernelAbi;
use weak_modules::shell::load::{ModuleFile, module_files};

use common::{KERNELS, fixtures, load_kernel};

#[derive(Debug, Default)]
struct Row {
    ok: bool,
    disagrees: BTreeSet<String>,
    unknown: BTreeSet<String>,
    deps: BTreeSet<String>,
}

/// (set, target) -> module file name -> depmod's row.
fn matrix() -> BTreeMap<(String, String), BTreeMap<String, Row>> {
    let text = std::fs::read_to_string(fixtures().join("expected/depmod-matrix.txt")).unwrap();
    let mut rows: BTreeMap<(String, String), BTreeMap<String, Row>> = BTreeMap::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let mut fields = line.split_whitespace();
        let (candidate, target, verdict) = (
            fields.next().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        let (set, file) = candidate.split_once('/').unwrap();
        let mut row = Row {
            ok: verdict == "ok",
            ..Row::default()
        };
        for field in fields {
            let (key, list) = field.split_once('=').unwrap();
            let names = list.split(',').map(str::to_owned).collect();
            match key {
                "disagrees" => row.disagrees = names,
                "unknown" => row.unknown = names,
                "deps" => row.deps = names,
                other => panic!("unknown matrix column {other}"),
            }
        }
        rows.entry((set.to_owned(), target.to_owned()))
            .or_default()
            .insert(file.to_owned(), row);
    }
    rows
}

/// The module files of a candidate set, as the matrix names them.
fn set_files(set: &str) -> Vec<PathBuf> {
    let built = fixtures().join("built").join(set);
    let dir = if built.is_dir() {
        built
    } else {
        fixtures().join("root/lib/modules").join(set).join("kernel")
    };
    module_files(&dir)
}

struct Loaded {
    file: String,
    module: ModuleFile,
}

fn load_set(set: &str) -> Vec<Loaded> {
    set_files(set)
        .into_iter()
        .map(|path| Loaded {
            file: path.file_name().unwrap().to_string_lossy().into_owned(),
            module: ModuleFile::read(&path).unwrap_or_else(|err| panic!("{err}")),
        })
        .collect()
}

fn symbols_of(verdict: &Verdict, pick: fn(&Reason) -> bool) -> BTreeSet<String> {
    verdict
        .reasons
        .iter()
        .filter(|reason| pick(reason))
        .filter_map(|reason| reason.symbol().map(str::to_owned))
        .collect()
}

#[test]
fn native_verdicts_equal_depmod_for_every_case_depmod_can_judge() {
    let root = fixtures().join("root");
    let mut compared = 0;
    let mut absent_provider_rows = Vec::new();
    let mut failures = Vec::new();
    let mut trees = BTreeMap::new();
    let mut sets = BTreeMap::new();
    for ((set, target), expected) in matrix() {
        let modules = sets.entry(set.clone()).or_insert_with(|| load_set(&set));
        assert_eq!(modules.len(), expected.len(), "{set}: files vs matrix rows");
        let tree = trees
            .entry(target.clone())
            .or_insert_with(|| load_kernel(&root, &target).unwrap());
        let mut abi = KernelAbi::new(target.clone(), &tree.symvers);
        abi.vermagic_tail = tree.vermagic_tail.clone();
        let candidates: Vec<Candidate> = modules
            .iter()
            .map(|loaded| loaded.module.candidate())
            .collect();
        let verdicts = decide(&abi, &candidates);
        for (module, verdict) in modules.iter().zip(&verdicts) {
            // depmod compares an unversioned module's imports against CRC 0 and reports every
            // one: it cannot judge those (docs/compat-rules.md, "Modules without
            // modversions").
            if module.module.facts.versions.is_none() {
                continue;
            }
            let row = &expected[&module.file];
            let native = Row {
                ok: verdict.fits(),
                disagrees: symbols_of(verdict, |r| matches!(r, Reason::CrcMismatch { .. })),
                unknown: symbols_of(verdict, |r| {
                    matches!(
                        r,
                        Reason::MissingSymbol { .. } | Reason::ProviderNotInstalled { .. }
                    )
                }),
                deps: verdict
                    .uses
                    .iter()
                    .map(|index| modules[*index].module.name.clone())
                    .collect(),
            };
            if (native.ok, &native.disagrees, &native.unknown, &native.deps)
                != (row.ok, &row.disagrees, &row.unknown, &row.deps)
            {
                failures.push(format!(
                    "{set}/{} on {target}:\n  depmod {row:?}\n  native {native:?} {:?}",
                    module.file, verdict.reasons
                ));
            }
            compared += 1;
            if verdict
                .reasons
                .iter()
                .any(|r| matches!(r, Reason::ProviderNotInstalled { .. }))
            {
                absent_provider_rows.push(format!("{set}/{} on {target}", module.file));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(compared, 184, "rows compared");
    // fxllc needs llc's exports, which symvers gives to the llc module: not installed in
    // depmod's sandbox, so refused on every target (depmod: "needs unknown symbol").
    let expected: Vec<String> = KERNELS
        .iter()
        .map(|target| format!("6.1.0-55-amd64/fxllc.ko on {target}"))
        .collect();
    assert_eq!(absent_provider_rows, expected);
}
