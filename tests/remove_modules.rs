//! `--remove-modules` on copies of fixtures/root with the real depmod (docs/behaviour.md,
//! "Scenarios" 14-17, with our replacement of removed links).

mod common;

use common::*;

fn add(root: &Root, modules: &[&str]) {
    let run = root.run(&["--add-modules", "--no-initramfs"], &modules.join("\n"));
    assert_eq!(run.status, 0, "{}", run.stderr);
}

const REMOVE: &[&str] = &["--remove-modules", "--no-initramfs", "--verbose"];

/// Leaves in a kernel's extra/ only the given modules, as if only their kmod package were
/// installed for it: a kernel that loses a link re-checks every installed build, and the
/// fixture's other modules would join in.
fn keep_only_in_extra(root: &Root, release: &str, keep: &[&str]) {
    let extra = root.join(&format!("lib/modules/{release}/extra"));
    for path in weak_modules::shell::load::module_files(&extra) {
        let below = path
            .strip_prefix(&extra)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if !keep.contains(&below.as_str()) {
            std::fs::remove_file(path).unwrap();
        }
    }
}

#[test]
fn s14_the_link_of_a_deleted_module_goes_and_empty_directories_with_it() {
    let root = Root::new();
    keep_only_in_extra(&root, K55, &["fx/fxstable.ko.zst"]);
    let module = root.fxstable_55();
    add(&root, &[&module]);
    assert!(root.link(K56, "fx/fxstable.ko.zst").is_some());
    std::fs::remove_file(&module).unwrap();
    let run = root.run(REMOVE, &format!("{module}\n"));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(root.links(K56).is_empty());
    assert!(!root.weak_updates(K56).join("fx").exists());
    assert!(root.weak_updates(K56).is_dir());
    assert_golden("remove_modules/s14.txt", &root, &run.stdout);
    // The own kernel's modules.dep still lists the deleted file: it is re-indexed too.
    assert_eq!(root.reindexed(), [K55, K56]);
    assert!(!root.modules_dep(K56).contains("fxstable"));
}

#[test]
fn s14_ours_another_fitting_build_replaces_the_removed_link() {
    let root = Root::new();
    keep_only_in_extra(&root, K55, &["fxdep/fxexport.ko.xz"]);
    let copy = K56_1;
    root.add_kernel_like(K56, copy);
    let v1 = root.module(K55, "extra/fxdep/fxexport.ko.xz");
    let v2 = root.module(K56, "extra/fxdep/fxexport.ko");
    add(&root, &[&v1, &v2]);
    // The newest build by rpm order wins the name.
    assert_eq!(
        root.links(copy),
        ["fxdep/fxexport.ko -> ../../../6.1.0-56-amd64/extra/fxdep/fxexport.ko"]
    );
    std::fs::remove_file(&v2).unwrap();
    let run = root.run(REMOVE, &format!("{v2}\n"));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        root.links(copy),
        ["fxdep/fxexport.ko.xz -> ../../../6.1.0-55-amd64/extra/fxdep/fxexport.ko.xz"]
    );
    assert!(
        root.modules_dep(copy)
            .contains("weak-updates/fxdep/fxexport.ko.xz:")
    );
}

#[test]
fn s15_the_link_of_a_module_still_present_is_kept() {
    let root = Root::new();
    let module = root.fxstable_55();
    add(&root, &[&module]);
    let before = root.snapshot();
    let run = root.run(REMOVE, &format!("{module}\n"));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(changes(&before, &root.snapshot()), Vec::<String>::new());
}

#[test]
fn s16_a_link_that_points_elsewhere_is_left_alone() {
    let root = Root::new();
    std::fs::create_dir_all(root.join("opt")).unwrap();
    std::fs::copy(
        fixtures().join("built/6.1.0-50-amd64/fxmisc.ko"),
        root.join("opt/fxmisc.ko"),
    )
    .unwrap();
    root.plant_link(K53, "fx/fxmisc.ko", "../../../../../opt/fxmisc.ko");
    let before = root.links(K53);
    let run = root.run(REMOVE, &format!("{}\n", root.fxmisc_50()));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(root.links(K53), before);
    assert_golden("remove_modules/s16.txt", &root, &run.stdout);
}

#[test]
fn s17_an_unrelated_incompatible_link_is_pruned_with_its_reason() {
    let root = Root::new();
    root.plant_link(
        K53,
        "fx/fxalloc.ko",
        "../../../6.1.0-50-amd64/extra/fx/fxalloc.ko",
    );
    let run = root.run(REMOVE, &format!("{}\n", root.fxstable_55()));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(root.links(K53).is_empty());
    assert_golden("remove_modules/s17.txt", &root, &run.stdout);
}

#[test]
fn dangling_links_are_cleaned_with_their_reason_and_the_kernel_rechecked() {
    let root = Root::new();
    root.plant_link(
        K53,
        "gone/old.ko",
        "../../../6.1.0-50-amd64/extra/gone/old.ko",
    );
    let run = root.run(
        REMOVE,
        &format!("{}\n", root.module(K50, "extra/gone/old.ko")),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(!root.weak_updates(K53).join("gone").exists());
    assert_golden("remove_modules/dangling.txt", &root, &run.stdout);
    // The kernel lost a link, so it was checked against every installed build: 6.1.0-50's
    // modules that fit it, never linked in this fixture, are linked now.
    assert!(
        root.link(K53, "fx/fxstable.ko").is_some(),
        "{:?}",
        root.links(K53)
    );
    assert!(
        root.link(K53, "fx/fxalloc.ko").is_none(),
        "kmalloc_trace changed at -53"
    );
}
