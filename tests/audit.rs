//! `--check` audits a root without changing it; `--sync` brings every kernel to what the audit
//! expects. Scenarios on copies of fixtures/root with the real depmod; outputs pinned whole.

mod common;

use std::fs;

use common::*;

/// Every kernel in order (by a real --sync), then five kinds of damage an interrupted run,
/// an erased package or an admin leaves.
fn damaged_root() -> Root {
    let root = Root::new();
    let sync = root.run(&["--sync", "--no-initramfs"], "");
    assert_eq!((sync.status, sync.stderr.as_str()), (0, ""));
    // A package erased without its scriptlets: 56's link to it dangles.
    root.remove(&format!("lib/modules/{K55}/extra/fx/fxmisc.ko"));
    // A kill between a temporary link and its rename.
    root.plant_link(
        K53,
        "fx/.fxalloc.ko.weak-modules.4242.0",
        "../../../6.1.0-50-amd64/extra/fx/fxalloc.ko",
    );
    // A kill before depmod: 53's indexes as they were before its links.
    fs::copy(
        fixtures().join(format!("root/lib/modules/{K53}/modules.dep")),
        root.join(&format!("lib/modules/{K53}/modules.dep")),
    )
    .unwrap();
    // A dracut that failed.
    fs::write(
        root.weak_updates(K54).join(".weak-modules-owed"),
        "initramfs\n",
    )
    .unwrap();
    // An admin's link to a build that does not fit 54 (misc_register changed there).
    root.plant_link(
        K54,
        "fx/fxmisc.ko",
        "../../../6.1.0-50-amd64/extra/fx/fxmisc.ko",
    );
    root
}

#[test]
fn check_reports_every_kind_of_damage_and_changes_nothing() {
    let root = damaged_root();
    let before = root.snapshot();
    let run = root.run(&["--check"], "");
    assert_eq!(run.status, 1);
    assert_eq!(run.stderr, "");
    assert_eq!(run.stdout, include_str!("golden/check-damaged.txt"));
    assert!(changes(&before, &root.snapshot()).is_empty());
}

#[test]
fn sync_puts_every_kernel_in_order_and_a_second_sync_changes_nothing() {
    let root = damaged_root();
    let dracut = packing_dracut(&root);
    let sync = root.run(&["--sync", "--dracut", dracut.to_str().unwrap()], "");
    assert_eq!((sync.status, sync.stderr.as_str()), (0, ""));
    let check = root.run(&["--check"], "");
    assert_eq!((check.status, check.stderr.as_str()), (0, ""));
    assert_eq!(check.stdout, include_str!("golden/check-in-order.txt"));
    assert!(
        !root
            .weak_updates(K53)
            .join("fx/.fxalloc.ko.weak-modules.4242.0")
            .exists()
    );
    assert!(root.modules_dep(K53).contains("weak-updates/fx/fxmisc.ko:"));

    let before = root.snapshot();
    let again = root.run(&["--sync", "--dracut", dracut.to_str().unwrap()], "");
    assert_eq!((again.status, again.stderr.as_str()), (0, ""));
    assert!(changes(&before, &root.snapshot()).is_empty());
}

#[test]
fn check_audits_only_the_kernels_named_and_says_which_are_not_installed() {
    let root = damaged_root();
    let run = root.run(&["--check", K56, K_ABSENT], "");
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr,
        "weak-modules: kernel 6.1.0-99-amd64 is not installed (no symvers file)\n"
    );
    assert_eq!(
        run.stdout,
        "6.1.0-56-amd64: weak-updates/fx/fxmisc.ko -> ../../../6.1.0-55-amd64/extra/fx/fxmisc.ko: target is gone\n\
         6.1.0-56-amd64: indexes do not match: modules.dep lists weak-updates/fx/fxmisc.ko, which is gone\n\
         6.1.0-56-amd64: note: weak-updates/fxdep/fxexport.ko.xz: the kernel's own module of that name is loaded first\n\
         2 kernels checked: 2 findings in 1 of them (weak-modules --sync puts them in order)\n"
    );
}
