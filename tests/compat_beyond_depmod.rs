//! The cases depmod cannot see (docs/compat-rules.md, "What depmod sees and what we see"),
//! each with its verdict and reason written out, decided on real modules and kernels of
//! fixtures/root.

mod common;

use std::path::PathBuf;

use weak_modules::core::abi::Import;
use weak_modules::core::compat::{Candidate, Reason, Verdict, decide};
use weak_modules::core::kernel::KernelAbi;
use weak_modules::shell::load::{KernelTree, ModuleFile};

use common::{K50, K53, K55, K56, K612, KERNELS, KRT, fixtures, load_kernel};

fn root() -> PathBuf {
    fixtures().join("root")
}

fn module(release: &str, below: &str) -> ModuleFile {
    let path = root().join("lib/modules").join(release).join(below);
    ModuleFile::read(&path).unwrap_or_else(|err| panic!("{err}"))
}

fn kernel(release: &str) -> KernelTree {
    load_kernel(&root(), release).unwrap()
}

fn import(name: &str, weak: bool) -> Import {
    Import {
        name: name.into(),
        weak,
    }
}

fn missing(symbol: &str) -> Reason {
    Reason::MissingSymbol {
        symbol: symbol.into(),
    }
}

/// The verdict on one module decided alone for a kernel.
fn alone(tree: &KernelTree, module: &ModuleFile) -> Verdict {
    decide_all(&tree.abi(), &[module]).remove(0)
}

fn decide_all(abi: &KernelAbi, modules: &[&ModuleFile]) -> Vec<Verdict> {
    let candidates: Vec<Candidate> = modules.iter().map(|m| m.candidate()).collect();
    decide(abi, &candidates)
}

#[test]
fn a_plain_export_turned_gpl_only_and_one_moved_into_a_namespace_refuse_a_proprietary_module() {
    // 6.1.0-56 ships fxexport version 2; fxpriv was built on 6.1.0-55 against version 1. The
    // CRCs are equal (same prototypes), so depmod accepts the pair; the kernel does not.
    let tree = kernel(K56);
    let exporter = module(K55, "extra/fxdep/fxexport.ko.xz");
    let proprietary = module(K55, "extra/fxdep/fxpriv.ko");
    let verdicts = decide_all(&tree.abi(), &[&exporter, &proprietary]);
    assert!(
        verdicts[0].fits() && verdicts[0].shadowed,
        "{:?}",
        verdicts[0]
    );
    let expected = [
        Reason::GplOnly {
            symbol: "fx_open".into(),
            provider: "fxexport".into(),
            license: Some("Proprietary".into()),
        },
        Reason::NamespaceNotImported {
            symbol: "fx_open2".into(),
            namespace: "FIXTURE_NS2".into(),
            provider: "fxexport".into(),
        },
    ];
    assert_eq!(verdicts[1].reasons.len(), 2, "{:?}", verdicts[1].reasons);
    for reason in &expected {
        assert!(
            verdicts[1].reasons.contains(reason),
            "{:?}",
            verdicts[1].reasons
        );
    }
}

#[test]
fn the_same_proprietary_module_fits_beside_the_first_exporter_version() {
    let tree = kernel(K53);
    let exporter = module(K50, "extra/fxdep/fxexport.ko");
    let proprietary = module(K50, "extra/fxdep/fxpriv.ko");
    let verdicts = decide_all(&tree.abi(), &[&exporter, &proprietary]);
    assert!(verdicts.iter().all(Verdict::fits), "{verdicts:?}");
    assert_eq!(verdicts[1].uses.iter().copied().collect::<Vec<_>>(), [0]);
}

#[test]
fn a_consumer_that_imports_the_namespace_fits_beside_the_second_exporter_version() {
    let tree = kernel(K56);
    let consumer = module(K55, "extra/fxdep/fxconsume.ko");
    let verdicts = decide_all(&tree.abi(), &[&consumer]);
    assert!(verdicts[0].fits(), "{:?}", verdicts[0].reasons);
}

#[test]
fn a_namespace_not_imported_is_named() {
    // fxconsume without its import_ns entry: the kernel refuses fx_ns.
    let tree = kernel(K56);
    let mut consumer = module(K55, "extra/fxdep/fxconsume.ko");
    consumer.facts.import_ns.clear();
    let verdicts = decide_all(&tree.abi(), &[&consumer]);
    assert_eq!(
        verdicts[0].reasons,
        [Reason::NamespaceNotImported {
            symbol: "fx_ns".into(),
            namespace: "FIXTURE_NS".into(),
            provider: "fxexport".into(),
        }]
    );
}

#[test]
fn the_preempt_model_in_the_vermagic_tail_keeps_rt_and_non_rt_apart() {
    let tree = kernel(KRT);
    assert_eq!(
        tree.vermagic_tail.as_deref(),
        Some("SMP preempt_rt mod_unload modversions ")
    );
    let stable = module(K55, "extra/fx/fxstable.ko.zst");
    let verdicts = decide_all(&tree.abi(), &[&stable]);
    assert!(verdicts[0].reasons.contains(&Reason::VermagicMismatch {
        module: "SMP preempt mod_unload modversions ".into(),
        kernel: "SMP preempt_rt mod_unload modversions ".into(),
    }));
}

#[test]
fn a_vermagic_mismatch_alone_is_enough() {
    // 6.1.0-56's symbols with the rt kernel's vermagic tail: every CRC fits, the tail does not.
    let tree = kernel(K56);
    let rt_tail = kernel(KRT).vermagic_tail;
    let mut abi = tree.abi();
    abi.vermagic_tail = rt_tail;
    let stable = module(K55, "extra/fx/fxstable.ko.zst");
    let verdicts = decide_all(&abi, &[&stable]);
    assert_eq!(
        verdicts[0].reasons,
        [Reason::VermagicMismatch {
            module: "SMP preempt mod_unload modversions ".into(),
            kernel: "SMP preempt_rt mod_unload modversions ".into(),
        }]
    );
}

#[test]
fn a_module_without_modversions_fits_only_its_own_release() {
    let unversioned = module(K55, "extra/fxnover.ko");
    assert!(unversioned.facts.versions.is_none());
    let other = decide_all(&kernel(K56).abi(), &[&unversioned]);
    assert_eq!(other[0].reasons, [Reason::NoModversions]);
    let own = decide_all(&kernel(K55).abi(), &[&unversioned]);
    assert!(own[0].fits(), "{:?}", own[0].reasons);
}

#[test]
fn a_weak_import_may_stay_unresolved() {
    let tree = kernel(K56);
    let mut stable = module(K55, "extra/fx/fxstable.ko.zst");
    stable
        .facts
        .imports
        .push(import("symbol_no_kernel_has", true));
    assert!(alone(&tree, &stable).fits());
    stable.facts.imports.last_mut().unwrap().weak = false;
    assert_eq!(
        alone(&tree, &stable).reasons,
        [missing("symbol_no_kernel_has")]
    );
}

#[test]
fn modules_that_need_each_other_fall_together_as_a_cycle() {
    // fxconsume needs fxexport; give fxexport an import that only fxconsume offers.
    let tree = kernel(K56);
    let mut abi = KernelAbi::new(K56, &tree.symvers);
    abi.vermagic_tail = tree.vermagic_tail.clone();
    let mut exporter = module(K55, "extra/fxdep/fxexport.ko.xz");
    let mut consumer = module(K55, "extra/fxdep/fxconsume.ko");
    exporter.facts.imports.push(import("fx_back", false));
    consumer
        .facts
        .exports
        .push(weak_modules::core::abi::Export {
            name: "fx_back".into(),
            crc: None,
            gpl_only: false,
            namespace: None,
        });
    let verdicts = decide_all(&abi, &[&exporter, &consumer]);
    for verdict in &verdicts {
        assert_eq!(
            verdict.reasons,
            [Reason::DependencyCycle {
                members: vec!["fxexport".into(), "fxconsume".into()]
            }]
        );
    }
}

#[test]
fn a_provider_that_falls_takes_its_users_with_it() {
    // A kernel with 6.1.0-56's symbols and no modules of its own: fxexport built for 6.1.0-50
    // fails on module_layout, so fxconsume (6.1.0-55, otherwise fitting) loses its provider.
    let tree = kernel(K56);
    let abi = KernelAbi::new(K56, &tree.symvers);
    let exporter = module(K50, "extra/fxdep/fxexport.ko");
    let consumer = module(K55, "extra/fxdep/fxconsume.ko");
    let verdicts = decide_all(&abi, &[&exporter, &consumer]);
    assert_eq!(
        verdicts[0].reasons,
        [Reason::CrcMismatch {
            symbol: "module_layout".into(),
            module_crc: 0xbce1a965,
            kernel_crc: 0x9060323f,
            provider: "vmlinux".into(),
        }]
    );
    let mut lost: Vec<&str> = verdicts[1]
        .reasons
        .iter()
        .map(|reason| match reason {
            Reason::ProviderDoesNotFit { symbol, provider } if &**provider == "fxexport" => {
                &**symbol
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    lost.sort();
    assert_eq!(lost, ["fx_gpl", "fx_ns", "fx_plain"]);
}

#[test]
fn ppc64_dot_imports_are_looked_up_without_their_dot() {
    let tree = kernel(K56);
    let mut stable = module(K55, "extra/fx/fxstable.ko.zst");
    stable.facts.machine = goblin::elf::header::EM_PPC64;
    for import in &mut stable.facts.imports {
        if import.name == "msleep" {
            import.name = ".msleep".into();
        }
    }
    stable.facts.imports.push(import(".TOC.", false));
    assert!(alone(&tree, &stable).fits());
    stable.facts.machine = goblin::elf::header::EM_X86_64;
    assert_eq!(alone(&tree, &stable).reasons, [missing(".msleep")]);
}

#[test]
fn a_struct_module_grown_under_unchanged_crcs_is_refused() {
    // 6.1.0-55's fxstable with 64 bytes more of struct module: every CRC still fits 6.1.0-56,
    // whose own modules carry a struct module of 896 bytes.
    let tree = kernel(K56);
    assert_eq!(tree.this_module_size, Some(896));
    let plain = module(K55, "extra/fx/fxstable.ko.zst");
    let grown = ModuleFile::read(
        &root().join("../built/variants/6.1.0-55-amd64/this_module-grown/fxstable.ko"),
    )
    .unwrap();
    assert_eq!(grown.facts.versions, plain.facts.versions);
    let verdicts = decide_all(&tree.abi(), &[&plain, &grown]);
    assert_eq!(verdicts[0].reasons, []);
    assert_eq!(
        verdicts[1].reasons,
        [Reason::ThisModuleSize {
            module: 960,
            kernel: 896
        }]
    );
}

#[test]
fn an_export_of_a_module_the_kernel_has_not_installed_is_not_available() {
    // fxllc (6.1.0-55) needs llc's exports; 6.1.0-56's symvers lists them with the CRCs fxllc
    // wants. Without llc installed nothing provides them; with it, or with another build of llc
    // offered beside fxllc, fxllc fits.
    let tree = kernel(K56);
    let user = ModuleFile::read(&root().join("../built/6.1.0-55-amd64/fxllc.ko")).unwrap();
    let mut bare = KernelAbi::new(K56, &tree.symvers);
    bare.vermagic_tail = tree.vermagic_tail.clone();
    bare.this_module_size = tree.this_module_size;
    assert_eq!(
        decide_all(&bare, &[&user])[0].reasons,
        [
            Reason::ProviderNotInstalled {
                symbol: "llc_sap_close".into(),
                provider: "llc".into(),
            },
            Reason::ProviderNotInstalled {
                symbol: "llc_sap_open".into(),
                provider: "llc".into(),
            },
        ]
    );
    assert_eq!(alone(&tree, &user).reasons, []);
    let offered = module(K55, "kernel/net/llc/llc.ko");
    let verdicts = decide_all(&bare, &[&offered, &user]);
    assert!(verdicts.iter().all(Verdict::fits), "{verdicts:?}");
    assert_eq!(verdicts[1].uses.iter().copied().collect::<Vec<_>>(), [0]);
}

/// Every x86 build set of fixtures/built against every fixture kernel, with the kernel's real
/// tree, and again as if both new rules were off: every module symvers names installed, the
/// size of struct module unknown. No verdict changes; the reasons the rules add are listed.
#[test]
fn the_installed_provider_and_struct_module_rules_change_no_verdict_on_the_fixtures() {
    let built = root().join("../built");
    let sets = [K50, K55, K56, K612];
    let mut added = Vec::new();
    for release in KERNELS {
        let tree = kernel(release);
        let real = tree.abi();
        let mut without_rules = tree.abi();
        without_rules.this_module_size = None;
        for entry in tree.symvers.iter().filter(|entry| !entry.is_vmlinux()) {
            let name = entry.module.rsplit('/').next().unwrap_or(entry.module);
            without_rules.add_native_module(name, &[]);
        }
        for set in sets {
            let modules: Vec<ModuleFile> =
                weak_modules::shell::load::module_files(&built.join(set))
                    .iter()
                    .map(|path| ModuleFile::read(path).unwrap())
                    .collect();
            let refs: Vec<&ModuleFile> = modules.iter().collect();
            let now = decide_all(&real, &refs);
            let before = decide_all(&without_rules, &refs);
            for ((module, now), before) in modules.iter().zip(&now).zip(&before) {
                assert_eq!(
                    now.fits(),
                    before.fits(),
                    "{set}/{} on {release}",
                    module.name
                );
                for reason in now.reasons.iter().filter(|r| !before.reasons.contains(r)) {
                    added.push(format!(
                        "{set}/{} on {release}: {}",
                        module.name,
                        reason.rule()
                    ));
                }
            }
        }
    }
    // Only 6.1 against 6.12 and back, already refused on module_layout: struct module is 896
    // bytes in every 6.1 kernel here and 1280 in 6.12.
    let mut expected = Vec::new();
    for release in &KERNELS[..7] {
        for name in [
            "fxalloc",
            "fxconsume",
            "fxexport",
            "fxmisc",
            "fxnover",
            "fxpriv",
            "fxstable",
        ] {
            expected.push(format!(
                "6.12.117+deb12-amd64/{name} on {release}: this-module-size"
            ));
        }
    }
    let from_6_1 = [
        (
            K50,
            &[
                "fxalloc",
                "fxconsume",
                "fxexport",
                "fxmisc",
                "fxnover",
                "fxpriv",
                "fxstable",
            ][..],
        ),
        (
            K55,
            &[
                "fxalloc",
                "fxconsume",
                "fxexport",
                "fxllc",
                "fxmisc",
                "fxnover",
                "fxpriv",
                "fxstable",
            ][..],
        ),
        (K56, &["fxexport"][..]),
    ];
    for (set, names) in from_6_1 {
        for name in names {
            expected.push(format!(
                "{set}/{name} on 6.12.117+deb12-amd64: this-module-size"
            ));
        }
    }
    added.sort();
    expected.sort();
    assert_eq!(added, expected);
}
