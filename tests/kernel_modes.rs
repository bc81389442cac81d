//! `--add-kernel` and `--remove-kernel` on copies of fixtures/root with the real depmod
//! (docs/behaviour.md, "Scenarios" 18-24 and 34), and a whole lifecycle after which every
//! `weak-updates/` is consistent.

mod common;

use std::path::Path;

use common::*;
use weak_modules::core::compat::{Candidate, decide};
use weak_modules::core::plan::{Build, Status, plan_kernel};
use weak_modules::core::rpmver;
use weak_modules::shell::load::{ModuleFile, read_decompressed, read_module};

const ADD_KERNEL: &[&str] = &["--no-initramfs", "--verbose", "--add-kernel"];

fn add_kernel(root: &Root, release: &str) -> Run {
    let mut args = ADD_KERNEL.to_vec();
    args.push(release);
    let run = root.run(&args, "");
    assert_eq!(run.status, 0, "{}", run.stderr);
    run
}

#[test]
fn s18_the_newest_fitting_build_wins_and_an_older_one_gets_through_a_newer_misfit() {
    // fxexport for a third kernel of 6.1.0-55/56's ABI: builds for -55 (v1) and -56 (v2) fit.
    let root = Root::new();
    let copy = K56_1;
    root.add_kernel_like(K56, copy);
    add_kernel(&root, copy);
    let links = root.links(copy);
    assert!(
        links.contains(
            &"fxdep/fxexport.ko -> ../../../6.1.0-56-amd64/extra/fxdep/fxexport.ko".to_owned()
        ),
        "{links:?}"
    );
    assert!(!links.iter().any(|l| l.contains("fxexport.ko.xz")));

    // On 6.1.0-53, fxstable of -55 and 6.12 are newer but do not fit; -50's does.
    let run = add_kernel(&root, K53);
    assert!(
        root.links(K53)
            .contains(&"fx/fxstable.ko -> ../../../6.1.0-50-amd64/extra/fx/fxstable.ko".to_owned())
    );
    assert_golden("kernel_modes/s18-53.txt", &root, &run.stdout);
}

#[test]
fn s19_newest_is_by_rpm_version_order_not_by_string_order() {
    // Two builds of the same real module, told apart only by the release they claim: rpm
    // order puts 5.14.0-162.el9 after 5.14.0-70.el9, string order the other way round.
    let tree = load_kernel(&fixtures().join("root"), K56).unwrap();
    let facts = read_module(&fixtures().join("built/6.1.0-55-amd64/fxstable.ko")).unwrap();
    assert_eq!(
        rpmver::compare("5.14.0-162.el9", "5.14.0-70.el9"),
        std::cmp::Ordering::Greater
    );
    let builds = [
        Build {
            path: "lib/modules/5.14.0-70.el9/extra/fxstable.ko",
            name: "fxstable",
            built_for: "5.14.0-70.el9",
            facts: &facts,
        },
        Build {
            path: "lib/modules/5.14.0-162.el9/extra/fxstable.ko",
            name: "fxstable",
            built_for: "5.14.0-162.el9",
            facts: &facts,
        },
    ];
    let plan = plan_kernel(&tree.abi(), &builds, &[], &Default::default(), false);
    assert_eq!(plan.statuses[1], Status::Fits { shadowed: false });
    assert_eq!(plan.statuses[0], Status::NewerBuildChosen { chosen: 1 });
    assert_eq!(plan.actions.len(), 1);
    assert!(
        plan.actions[0]
            .link_path()
            .ends_with("weak-updates/fxstable.ko")
    );
}

#[test]
fn s20_a_dependency_group_with_a_failing_provider_stays_out_and_the_rest_goes_in() {
    let root = Root::new();
    let copy = K55_1;
    root.add_kernel_like(K55, copy);
    // Only 6.1.0-50's exporter is left: it fails on module_layout, so -55's consumers lose it.
    root.remove("lib/modules/6.1.0-55-amd64/extra/fxdep/fxexport.ko.xz");
    root.remove("lib/modules/6.1.0-56-amd64/extra/fxdep/fxexport.ko");
    let run = add_kernel(&root, copy);
    let links = root.links(copy);
    assert!(
        links.iter().any(|l| l.starts_with("fx/fxstable.ko.zst ->")),
        "{links:?}"
    );
    assert!(!links.iter().any(|l| l.starts_with("fxdep/")), "{links:?}");
    // Says "fx_plain: its provider fxexport does not fit" for the consumers left out.
    assert_golden("kernel_modes/s20.txt", &root, &run.stdout);
}

#[test]
fn s21_a_kernel_without_symvers_is_an_error_and_nothing_is_written() {
    let root = Root::new();
    std::fs::create_dir_all(root.join("lib/modules/6.1.0-99-amd64")).unwrap();
    let before = root.snapshot();
    let run = root.run(&["--add-kernel", K_ABSENT, "--no-initramfs"], "");
    assert_eq!(run.status, 1);
    assert_golden("kernel_modes/s21.stderr", &root, &run.stderr);
    assert_eq!(changes(&before, &root.snapshot()), Vec::<String>::new());
}

#[test]
fn s22_without_a_release_the_running_kernel_is_meant() {
    let root = Root::new();
    let running = nix::sys::utsname::uname()
        .unwrap()
        .release()
        .to_string_lossy()
        .into_owned();
    root.add_kernel_like(K56, &running);
    let run = root.run(&["--add-kernel", "--no-initramfs"], "");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        root.link(&running, "fx/fxstable.ko.zst").is_some(),
        "{:?}",
        root.links(&running)
    );
}

#[test]
fn s23_a_kernel_s_own_extra_modules_are_not_linked_into_it() {
    let root = Root::new();
    add_kernel(&root, K55);
    let links = root.links(K55);
    assert!(
        !links.iter().any(|l| l.contains("6.1.0-55-amd64/extra")),
        "{links:?}"
    );
    // -56's fxexport (version 2) fits and is newer than -55's own, which shadows it.
    assert_eq!(
        links,
        ["fxdep/fxexport.ko -> ../../../6.1.0-56-amd64/extra/fxdep/fxexport.ko"]
    );
}

#[test]
fn s24_remove_kernel_empties_weak_updates_and_keeps_the_directory() {
    let root = Root::new();
    add_kernel(&root, K56);
    assert!(!root.links(K56).is_empty());
    let run = root.run(&["--remove-kernel", K56], "");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(root.links(K56).is_empty());
    assert!(root.weak_updates(K56).is_dir());
    assert_eq!(
        std::fs::read_dir(root.weak_updates(K56)).unwrap().count(),
        0
    );
    assert!(
        root.reindexed().contains(&K56.to_owned()),
        "the add-kernel step indexed it"
    );

    let run = root.run(&["--remove-kernel", K53], "");
    assert_eq!((run.status, run.stderr.as_str()), (0, ""));
    assert!(!root.weak_updates(K53).exists());
}

#[test]
fn remove_kernel_runs_no_depmod() {
    let root = Root::new();
    root.plant_link(
        K53,
        "fx/fxstable.ko",
        "../../../6.1.0-50-amd64/extra/fx/fxstable.ko",
    );
    let run = root.run(&["--remove-kernel", K53], "");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(root.links(K53).is_empty());
    assert!(root.reindexed().is_empty());
}

#[test]
fn s34_compressed_modules_are_found_by_add_kernel_zstd_included() {
    let root = Root::new();
    let gz = root.join("lib/modules/6.1.0-55-amd64/extra/gz");
    std::fs::create_dir_all(&gz).unwrap();
    std::fs::copy(
        fixtures().join("built/variants/6.1.0-55-amd64/fxstable.ko.gz"),
        gz.join("fxgz.ko.gz"),
    )
    .unwrap();
    add_kernel(&root, K56);
    let links = root.links(K56);
    for expected in [
        "fx/fxstable.ko.zst -> ../../../6.1.0-55-amd64/extra/fx/fxstable.ko.zst",
        "fxdep/fxexport.ko.xz -> ../../../6.1.0-55-amd64/extra/fxdep/fxexport.ko.xz",
    ] {
        assert!(links.contains(&expected.to_owned()), "{links:?}");
    }
    // The .ko.gz copy has modinfo name fxstable too: the same module, so only one is linked.
    assert!(!links.iter().any(|l| l.contains("fxgz")), "{links:?}");
}

#[test]
fn a_shadowed_link_is_said_in_verbose() {
    let root = Root::new();
    let run = add_kernel(&root, K56);
    // "note: kernel 6.1.0-56-amd64 ships its own fxexport.ko.xz; depmod's search order loads
    // that one first"
    assert_golden("kernel_modes/shadowed.txt", &root, &run.stdout);
}

/// Every installed kernel's weak-updates/ is consistent: each link resolves, the linked set
/// fits the kernel by the native check and by the real depmod, and each link is the newest
/// fitting build of its module among every kernel's extra/.
fn assert_consistent(root: &Root, step: &str) {
    let base = root.path();
    for release in weak_modules::shell::load::installed_kernels(base).unwrap() {
        let mut linked = Vec::new();
        for entry in root.links(&release) {
            let (link, target) = entry
                .split_once(" -> ")
                .unwrap_or_else(|| panic!("{step}: {entry} is not a link"));
            let link_dir = root.weak_updates(&release).join(link);
            let module = link_dir.parent().unwrap().join(target);
            assert!(
                module.is_file(),
                "{step}: {release}: {entry} does not resolve"
            );
            linked.push(module.canonicalize().unwrap());
        }
        let tree = load_kernel(base, &release).unwrap();
        let modules: Vec<ModuleFile> = linked
            .iter()
            .map(|path| ModuleFile::read(path).unwrap())
            .collect();
        let candidates: Vec<Candidate> = modules.iter().map(ModuleFile::candidate).collect();
        for (verdict, module) in decide(&tree.abi(), &candidates).iter().zip(&modules) {
            assert!(
                verdict.fits(),
                "{step}: {release}: {} linked but {:?}",
                module.name,
                verdict.reasons
            );
        }
        assert_depmod_accepts(base, &release, step);
        assert_newest(root, &release, &modules, step);
    }
}

/// The real depmod, as the bash tool asks it, finds nothing wrong with the weak links.
fn assert_depmod_accepts(base: &Path, release: &str, step: &str) {
    let symvers_path = weak_modules::shell::load::symvers_file(base, release).unwrap();
    let plain = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        plain.path(),
        read_decompressed(&symvers_path, weak_modules::shell::bounded::SYMVERS_LIMIT).unwrap(),
    )
    .unwrap();
    let output = std::process::Command::new(depmod())
        .args([
            "-b",
            base.to_str().unwrap(),
            "-naeE",
            plain.path().to_str().unwrap(),
            release,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Not pinned whole: this is the installed depmod's wording, and it may warn about other
    // things in the tree; only its complaints about the weak links count here.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            l.contains("weak-updates")
                && (l.contains("needs unknown symbol") || l.contains("disagrees about version"))
        })
        .collect();
    assert!(
        complaints.is_empty(),
        "{step}: depmod on {release}: {complaints:?}"
    );
}

fn depmod() -> &'static str {
    ["/sbin/depmod", "/usr/sbin/depmod"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("depmod")
}

/// No build in another kernel's extra/ is newer than a linked one and fits in its place.
fn assert_newest(root: &Root, release: &str, linked: &[ModuleFile], step: &str) {
    let tree = load_kernel(root.path(), release).unwrap();
    for dir in std::fs::read_dir(root.join("lib/modules")).unwrap() {
        let dir = dir.unwrap().path();
        if dir.file_name().unwrap() == release {
            continue;
        }
        for path in weak_modules::shell::load::module_files(&dir.join("extra")) {
            let other = ModuleFile::read(&path).unwrap();
            let Some(current) = linked.iter().find(|m| m.name == other.name) else {
                continue;
            };
            if rpmver::compare(&other.built_for, &current.built_for).is_gt() {
                let verdict = &decide(&tree.abi(), &[other.candidate()])[0];
                assert!(
                    !verdict.fits(),
                    "{step}: {release}: the newer {} fits but is not linked",
                    path.display()
                );
            }
        }
    }
}

/// The weak-modules commands of the lifecycle, in order.
fn lifecycle_commands(root: &Root) -> Vec<(Vec<String>, String)> {
    let v2 = root.module(K56, "extra/fxdep/fxexport.ko");
    vec![
        (vec!["--add-kernel".into(), K56.into()], String::new()),
        (vec!["--add-modules".into()], v2.clone()),
        (vec!["--add-kernel".into(), K56_1.into()], String::new()),
        (vec!["--remove-kernel".into(), K55.into()], String::new()),
        (vec!["--remove-modules".into()], v2),
    ]
}

#[test]
fn a_lifecycle_keeps_every_weak_updates_consistent_and_repeats_as_a_no_op() {
    // Kernel A (6.1.0-55) with its kmod modules; kernel B (6.1.0-56) arrives without modules
    // of its own, then a kmod package adds a newer fxexport to B, kernel C (a third kernel of
    // the same ABI) arrives, A is removed (its extra/ stays: it belongs to kmod packages),
    // and B's fxexport is removed again.
    let root = Root::new();
    let v2 = root.join("lib/modules/6.1.0-56-amd64/extra/fxdep/fxexport.ko");
    let v2_saved = std::fs::read(&v2).unwrap();
    std::fs::remove_file(&v2).unwrap();
    let steps = lifecycle_commands(&root);
    let run = |args: &[String], stdin: &str| {
        let mut all = vec!["--no-initramfs"];
        all.extend(args.iter().map(String::as_str));
        let run = root.run(&all, stdin);
        assert_eq!(run.status, 0, "{args:?}: {}", run.stderr);
    };

    run(&steps[0].0, &steps[0].1);
    assert!(root.link(K56, "fxdep/fxexport.ko.xz").is_some());
    assert!(root.link(K56, "fxdep/fxconsume.ko").is_some());
    assert!(root.link(K56, "fxdep/fxpriv.ko").is_some());
    assert_consistent(&root, "add kernel B");

    std::fs::write(&v2, &v2_saved).unwrap();
    run(&steps[1].0, &steps[1].1);
    // B now ships fxexport version 2 itself: the proprietary fxpriv no longer fits there.
    assert!(
        root.link(K56, "fxdep/fxpriv.ko").is_none(),
        "{:?}",
        root.links(K56)
    );
    assert!(root.link(K55, "fxdep/fxexport.ko").is_some());
    assert_consistent(&root, "newer fxexport in B");

    root.add_kernel_like(K56, K56_1);
    run(&steps[2].0, &steps[2].1);
    assert!(root.link(K56_1, "fxdep/fxexport.ko").is_some());
    assert_consistent(&root, "add kernel C");

    run(&steps[3].0, &steps[3].1);
    assert!(root.links(K55).is_empty());
    for file in [
        "boot/symvers-6.1.0-55-amd64.gz",
        "lib/modules/6.1.0-55-amd64/modules.dep",
    ] {
        root.remove(file);
    }
    std::fs::remove_dir_all(root.join("lib/modules/6.1.0-55-amd64/kernel")).unwrap();
    assert_consistent(&root, "remove kernel A");

    std::fs::remove_file(&v2).unwrap();
    run(&steps[4].0, &steps[4].1);
    assert_eq!(
        root.link(K56_1, "fxdep/fxexport.ko.xz").as_deref(),
        Some("../../../6.1.0-55-amd64/extra/fxdep/fxexport.ko.xz"),
        "the link moved to A's build, which is still installed: {:?}",
        root.links(K56_1)
    );
    assert!(root.link(K56_1, "fxdep/fxexport.ko").is_none());
    // fxexport v2 had refused the proprietary fxpriv in B and C; with it gone, fxpriv fits
    // both again, beside A's v1.
    assert!(
        root.link(K56, "fxdep/fxpriv.ko").is_some(),
        "{:?}",
        root.links(K56)
    );
    assert!(root.link(K56_1, "fxdep/fxpriv.ko").is_some());
    assert_consistent(&root, "remove B's fxexport");

    // The same commands again, on the settled tree: each is a no-op. The module the
    // --add-modules step named is gone by now, which that step reports, touching nothing.
    let settled = root.snapshot();
    for (args, stdin) in &steps {
        let mut all = vec!["--no-initramfs"];
        all.extend(args.iter().map(String::as_str));
        let again = root.run(&all, stdin);
        if args[0] == "--add-modules" {
            assert_eq!(again.status, 1);
            assert_golden("kernel_modes/lifecycle-again.stderr", &root, &again.stderr);
        } else {
            assert_eq!(again.status, 0, "{args:?}: {}", again.stderr);
        }
    }
    assert_eq!(
        changes(&settled, &root.snapshot()),
        Vec::<String>::new(),
        "the second pass changed the tree"
    );
}

#[test]
fn a_kernel_s_own_module_that_refuses_a_linked_one_removes_that_link_until_it_goes() {
    // 6.1.0-56 first without its fxexport: fxpriv of -55 is linked there. Then a kmod package
    // installs fxexport version 2 for -56: fx_open became GPL-only, fx_open2 namespaced.
    let root = Root::new();
    let v2 = root.join("lib/modules/6.1.0-56-amd64/extra/fxdep/fxexport.ko");
    let saved = std::fs::read(&v2).unwrap();
    std::fs::remove_file(&v2).unwrap();
    add_kernel(&root, K56);
    assert!(root.link(K56, "fxdep/fxpriv.ko").is_some());
    std::fs::write(&v2, saved).unwrap();
    let run = root.run(
        &["--add-modules", "--no-initramfs", "--verbose"],
        v2.to_str().unwrap(),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        root.link(K56, "fxdep/fxpriv.ko").is_none(),
        "{:?}",
        root.links(K56)
    );
    // Removes fxpriv's link, saying why: fx_open is a GPL-only export of fxexport now.
    assert_golden("kernel_modes/own-module-refuses.txt", &root, &run.stdout);

    // The package goes again: -56 lost its own module and re-checks every installed build.
    std::fs::remove_file(&v2).unwrap();
    let run = root.run(
        &["--remove-modules", "--no-initramfs"],
        v2.to_str().unwrap(),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        root.link(K56, "fxdep/fxpriv.ko").is_some(),
        "{:?}",
        root.links(K56)
    );
}

#[test]
fn a_module_refused_by_the_newest_provider_build_fits_when_that_build_falls() {
    // fxexport v2 (6.1.0-56) would refuse fxpriv, but v2 does not fit itself here (its
    // vermagic is made an rt one), so v1 (6.1.0-55) is chosen, and fxpriv fits beside it.
    let root = fixtures().join("root");
    let tree = load_kernel(&root, K56).unwrap();
    let abi = weak_modules::core::kernel::KernelAbi::new(K56_1, &tree.symvers);
    let mut v2 =
        ModuleFile::read(&root.join("lib/modules/6.1.0-56-amd64/extra/fxdep/fxexport.ko")).unwrap();
    v2.facts.vermagic = Some("6.1.0-56-amd64 SMP preempt_rt mod_unload modversions ".into());
    let mut abi = abi;
    abi.vermagic_tail = tree.vermagic_tail.clone();
    let v1 = ModuleFile::read(&root.join("lib/modules/6.1.0-55-amd64/extra/fxdep/fxexport.ko.xz"))
        .unwrap();
    let private =
        ModuleFile::read(&root.join("lib/modules/6.1.0-55-amd64/extra/fxdep/fxpriv.ko")).unwrap();
    let builds = [
        build_of("lib/modules/6.1.0-56-amd64/extra/fxdep/fxexport.ko", &v2),
        build_of("lib/modules/6.1.0-55-amd64/extra/fxdep/fxexport.ko.xz", &v1),
        build_of("lib/modules/6.1.0-55-amd64/extra/fxdep/fxpriv.ko", &private),
    ];
    let plan = plan_kernel(&abi, &builds, &[], &Default::default(), false);
    assert!(
        matches!(plan.statuses[0], Status::DoesNotFit(_)),
        "{:?}",
        plan.statuses[0]
    );
    assert_eq!(plan.statuses[1], Status::Fits { shadowed: false });
    assert_eq!(plan.statuses[2], Status::Fits { shadowed: false });
}

fn build_of<'a>(path: &'a str, module: &'a ModuleFile) -> Build<'a> {
    Build {
        path,
        name: &module.name,
        built_for: &module.built_for,
        facts: &module.facts,
    }
}
