//! The whole decision on an arbitrary module: whatever `parse_module` accepts, `decide` must
//! judge it against a real kernel, next to the real fixture modules it may depend on or export
//! to, without panicking, with one verdict per candidate.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use weak_modules::core::compat::{Candidate, decide};
use weak_modules::core::elf::{ModuleFacts, parse_module};
use weak_modules::core::kernel::vermagic_release;
use weak_modules::shell::load::{KernelTree, load_kernel, module_files, read_module};

const TARGET_KERNEL: &str = "6.1.0-56-amd64";
const COMPANIONS_BUILT_FOR: &str = "6.1.0-55-amd64";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

static TARGET: LazyLock<KernelTree> = LazyLock::new(|| {
    load_kernel(&fixtures().join("root"), TARGET_KERNEL).unwrap_or_else(|err| panic!("{err}"))
});

/// The fixture modules built for the previous kernel (exporters and consumers of each other).
static COMPANIONS: LazyLock<Vec<ModuleFacts>> = LazyLock::new(|| {
    module_files(&fixtures().join("built").join(COMPANIONS_BUILT_FOR))
        .iter()
        .map(|path| read_module(path).unwrap_or_else(|err| panic!("{err}")))
        .collect()
});

fn candidate<'a>(facts: &'a ModuleFacts, fallback_name: &'a str) -> Candidate<'a> {
    Candidate {
        name: facts.name.as_deref().unwrap_or(fallback_name),
        built_for: vermagic_release(facts.vermagic.as_deref().unwrap_or_default()),
        facts,
    }
}

fuzz_target!(|module_bytes: &[u8]| {
    let Ok(fuzzed) = parse_module(module_bytes) else {
        return;
    };
    let abi = TARGET.abi();
    let candidates: Vec<Candidate> = std::iter::once(candidate(&fuzzed, "fuzzed"))
        .chain(COMPANIONS.iter().map(|facts| candidate(facts, "companion")))
        .collect();
    let verdicts = decide(&abi, &candidates);
    assert_eq!(
        verdicts.len(),
        candidates.len(),
        "one verdict per candidate"
    );
    for verdict in &verdicts {
        assert!(verdict.uses.iter().all(|&index| index < candidates.len()));
        for reason in &verdict.reasons {
            std::hint::black_box((reason.to_string(), reason.rule()));
        }
    }
});
