//! `--add-modules` on copies of fixtures/root with the real depmod: the scenarios of
//! docs/behaviour.md ("Scenarios"), with our answer where it differs from the bash tool's on
//! purpose (the test name says so).

mod common;

use common::*;

const NO_INITRAMFS: &[&str] = &["--add-modules", "--no-initramfs", "--verbose"];

#[test]
fn s01_a_fitting_module_is_linked_with_a_relative_target_and_indexed() {
    let root = Root::new();
    let module = root.fxstable_55();
    let run = root.run(NO_INITRAMFS, &format!("{module}\n"));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        root.links(K56),
        ["fx/fxstable.ko.zst -> ../../../6.1.0-55-amd64/extra/fx/fxstable.ko.zst"]
    );
    for other in KERNELS.into_iter().filter(|&release| release != K56) {
        assert!(
            root.links(other).is_empty(),
            "{other}: {:?}",
            root.links(other)
        );
    }
    assert_golden("add_modules/s01.txt", &root, &run.stdout);
    assert!(
        root.modules_dep(K56)
            .contains("weak-updates/fx/fxstable.ko.zst:")
    );
    // Ours: the own kernel's indexes already list the module, so only K56 is re-indexed.
    assert_eq!(root.reindexed(), [K56]);
    assert_eq!(run.stderr, "");
}

#[test]
fn s02_a_module_that_does_not_fit_is_not_linked_and_the_symbols_are_named() {
    let root = Root::new();
    let module = root.fxmisc_50();
    let run = root.run(NO_INITRAMFS, &format!("{module}\n"));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        root.links(K53),
        ["fx/fxmisc.ko -> ../../../6.1.0-50-amd64/extra/fx/fxmisc.ko"]
    );
    assert!(root.links(K54).is_empty());
    let sentence = "Module fxmisc.ko from kernel 6.1.0-50-amd64 is not compatible with kernel 6.1.0-54-amd64 in symbols:  ";
    let line = run
        .stdout
        .lines()
        .find(|line| line.starts_with(sentence))
        .expect(&run.stdout);
    let mut symbols: Vec<&str> = line[sentence.len()..].split(' ').collect();
    symbols.sort();
    assert_eq!(symbols, ["misc_deregister", "misc_register"]);
    assert_golden("add_modules/s02.txt", &root, &run.stdout);
    assert_eq!(root.reindexed(), [K53]);
}

#[test]
fn s03_a_kernel_without_symvers_is_skipped() {
    let root = Root::new();
    root.remove("boot/symvers-6.1.0-53-amd64.gz");
    let module = root.fxmisc_50();
    let run = root.run(NO_INITRAMFS, &format!("{module}\n"));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(!root.weak_updates(K53).exists());
    assert!(root.reindexed().is_empty());
}

#[test]
fn s04_s05_symvers_under_lib_modules_in_xz_and_no_system_map_count_as_installed() {
    let root = Root::new();
    let module = root.module(K50, "extra/fx/fxstable.ko");
    let run = root.run(NO_INITRAMFS, &format!("{module}\n"));
    assert_eq!(run.status, 0, "{}", run.stderr);
    // 6.1.0-54 keeps its symvers as lib/modules/K/symvers.xz and has no System.map.
    assert_eq!(
        root.link(K54, "fx/fxstable.ko").as_deref(),
        Some("../../../6.1.0-50-amd64/extra/fx/fxstable.ko")
    );
    assert_eq!(
        root.link(K53, "fx/fxstable.ko").as_deref(),
        Some("../../../6.1.0-50-amd64/extra/fx/fxstable.ko")
    );
    assert_eq!(root.reindexed(), [K53, K54]);
}

#[test]
fn s06_a_relative_path_is_taken_from_the_current_directory() {
    let root = Root::new();
    let run = root.run_in(
        root.path(),
        NO_INITRAMFS,
        "lib/modules/6.1.0-55-amd64/extra/fx/fxstable.ko.zst\n",
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(root.link(K56, "fx/fxstable.ko.zst").is_some());
}

#[test]
fn s07_blank_and_duplicate_lines_change_nothing() {
    let root = Root::new();
    let module = root.fxstable_55();
    let spelled_otherwise = module.replace("/extra/fx/", "/extra/./fx/../fx/");
    let run = root.run(
        NO_INITRAMFS,
        &format!("\n{module}\n\n{module}\n   \n{spelled_otherwise}\n"),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        root.links(K56),
        ["fx/fxstable.ko.zst -> ../../../6.1.0-55-amd64/extra/fx/fxstable.ko.zst"]
    );
    assert_eq!(
        run.stdout
            .matches("is compatible with kernel 6.1.0-56-amd64")
            .count(),
        1
    );
}

#[test]
fn s08_empty_stdin_does_nothing() {
    let root = Root::new();
    let before = root.snapshot();
    let run = root.run(&["--add-modules", "--verbose"], "");
    assert_eq!(
        (run.status, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "")
    );
    assert_eq!(changes(&before, &root.snapshot()), Vec::<String>::new());
}

#[test]
fn s09_ours_one_module_that_does_not_fit_no_longer_blocks_the_batch() {
    let root = Root::new();
    let stable = root.module(K50, "extra/fx/fxstable.ko");
    let alloc = root.module(K50, "extra/fx/fxalloc.ko");
    let run = root.run(NO_INITRAMFS, &format!("{stable}\n{alloc}\n"));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        root.links(K53),
        ["fx/fxstable.ko -> ../../../6.1.0-50-amd64/extra/fx/fxstable.ko"]
    );
    assert_golden("add_modules/s09.txt", &root, &run.stdout);
}

#[test]
fn s10_ours_a_present_incompatible_link_is_removed_and_the_new_module_linked() {
    let root = Root::new();
    root.plant_link(
        K53,
        "fx/fxalloc.ko",
        "../../../6.1.0-50-amd64/extra/fx/fxalloc.ko",
    );
    let stable = root.module(K50, "extra/fx/fxstable.ko");
    let run = root.run(NO_INITRAMFS, &format!("{stable}\n"));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        root.links(K53),
        ["fx/fxstable.ko -> ../../../6.1.0-50-amd64/extra/fx/fxstable.ko"]
    );
    assert_golden("add_modules/s10.txt", &root, &run.stdout);
}

#[test]
fn s11_a_consumer_falls_with_its_provider() {
    let root = Root::new();
    let copy = K55_1;
    root.add_kernel_like(K55, copy);
    let exporter = root.module(K50, "extra/fxdep/fxexport.ko");
    let consumer = root.module(K55, "extra/fxdep/fxconsume.ko");
    let run = root.run(NO_INITRAMFS, &format!("{exporter}\n{consumer}\n"));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(root.links(copy).is_empty(), "{:?}", root.links(copy));
    assert_golden("add_modules/s11.txt", &root, &run.stdout);
    // On 6.1.0-56 the kernel's own fxexport (version 2) provides the symbols instead.
    assert_eq!(
        root.links(K56),
        ["fxdep/fxconsume.ko -> ../../../6.1.0-55-amd64/extra/fxdep/fxconsume.ko"]
    );
}

#[test]
fn s12_a_module_the_kernel_ships_itself_does_not_block_the_link() {
    let root = Root::new();
    let own = root.join("lib/modules/6.1.0-56-amd64/kernel/drivers/fx");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::copy(
        fixtures().join("built/6.1.0-55-amd64/fxstable.ko"),
        own.join("fxstable.ko"),
    )
    .unwrap();
    let module = root.fxstable_55();
    let run = root.run(NO_INITRAMFS, &format!("{module}\n"));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(root.link(K56, "fx/fxstable.ko.zst").is_some());
    assert_golden("add_modules/s12.txt", &root, &run.stdout);
}

#[test]
fn s13_ours_a_rerun_touches_nothing_and_runs_no_depmod() {
    let root = Root::new();
    let module = root.fxstable_55();
    root.run(NO_INITRAMFS, &format!("{module}\n"));
    let before = root.snapshot();
    let run = root.run(NO_INITRAMFS, &format!("{module}\n"));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(changes(&before, &root.snapshot()), Vec::<String>::new());
    // No depmod line.
    assert_golden("add_modules/s13.txt", &root, &run.stdout);
}

#[test]
fn s25_ours_dry_run_changes_nothing_at_all_and_prints_the_plan() {
    let root = Root::new();
    let image = root.join("boot/initramfs-6.1.0-56-amd64.img");
    std::fs::write(&image, b"old image").unwrap();
    let dracut = root.script("dracut", "touch \"$0.ran\"");
    let before = root.snapshot();
    let module = root.fxstable_55();
    let run = root.run(
        &[
            "--add-modules",
            "--dry-run",
            "--verbose",
            "--dracut",
            dracut.to_str().unwrap(),
        ],
        &format!("{module}\n"),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(changes(&before, &root.snapshot()), Vec::<String>::new());
    assert!(!root.join("dracut.ran").exists());
    assert_golden("add_modules/s25.txt", &root, &run.stdout);
}

#[test]
fn s28_delete_modules_warns_and_runs_normally() {
    let root = Root::new();
    let module = root.fxstable_55();
    let run = root.run(
        &["--delete-modules", "--add-modules", "--no-initramfs"],
        &format!("{module}\n"),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("WARNING: --delete-modules is deprecated, no effect\n")
    );
    assert!(root.link(K56, "fx/fxstable.ko.zst").is_some());
}

#[test]
fn s31_a_module_outside_lib_modules_mirrors_its_whole_path() {
    let root = Root::new();
    std::fs::create_dir_all(root.join("opt/x")).unwrap();
    std::fs::copy(
        fixtures().join("built/6.1.0-55-amd64/fxstable.ko"),
        root.join("opt/x/fxstable.ko"),
    )
    .unwrap();
    let run = root.run(
        NO_INITRAMFS,
        &format!("{}\n", root.join("opt/x/fxstable.ko").display()),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        root.links(K56),
        ["opt/x/fxstable.ko -> ../../../../../../opt/x/fxstable.ko"]
    );
}

#[test]
fn s32_a_vermagic_that_differs_from_the_path_mirrors_the_whole_path() {
    let root = Root::new();
    let odd = root.join("lib/modules/6.1.0-50-amd64/extra/odd");
    std::fs::create_dir_all(&odd).unwrap();
    std::fs::copy(
        fixtures().join("built/6.1.0-55-amd64/fxstable.ko"),
        odd.join("fxstable.ko"),
    )
    .unwrap();
    let run = root.run(
        NO_INITRAMFS,
        &format!("{}\n", odd.join("fxstable.ko").display()),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        root.link(K56, "lib/modules/6.1.0-50-amd64/extra/odd/fxstable.ko")
            .as_deref(),
        Some("../../../../../../../6.1.0-50-amd64/extra/odd/fxstable.ko")
    );
}

#[test]
fn s33_a_release_with_a_plus_is_matched_literally() {
    let root = Root::new();
    let copy = "6.12.117+deb12.1-amd64";
    root.add_kernel_like(K612, copy);
    let module = root.module(K612, "extra/fx/fxstable.ko.xz");
    let run = root.run(NO_INITRAMFS, &format!("{module}\n"));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        root.links(copy),
        ["fx/fxstable.ko.xz -> ../../../6.12.117+deb12-amd64/extra/fx/fxstable.ko.xz"]
    );
}

#[test]
fn bad_input_gets_one_line_each_and_exit_1_and_the_rest_is_done() {
    let root = Root::new();
    let good = root.fxstable_55();
    let missing = root.module(K55, "extra/fx/nothere.ko");
    let text = root.join("notes.ko");
    std::fs::write(&text, "not a module\n").unwrap();
    let truncated = root.join("truncated.ko");
    let bytes = std::fs::read(fixtures().join("built/6.1.0-55-amd64/fxmisc.ko")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let directory = root.module(K55, "extra/fx");
    let input = [
        good.as_str(),
        &missing,
        text.to_str().unwrap(),
        truncated.to_str().unwrap(),
        &directory,
    ]
    .join("\n");
    let run = root.run(&["--add-modules", "--no-initramfs"], &input);
    assert_eq!(run.status, 1);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stderr);
    assert!(
        lines[0].starts_with(&format!("weak-modules: {missing}: ")),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with(&format!("weak-modules: {}: ", text.display())));
    assert!(lines[2].starts_with(&format!("weak-modules: {}: ", truncated.display())));
    assert!(lines[3].starts_with(&format!("weak-modules: {directory}: ")));
    assert!(root.link(K56, "fx/fxstable.ko.zst").is_some());
}

#[test]
fn bad_input_leaves_existing_links_untouched() {
    let root = Root::new();
    let module = root.fxstable_55();
    root.run(NO_INITRAMFS, &format!("{module}\n"));
    let before = root.snapshot();
    let run = root.run(NO_INITRAMFS, &root.module(K55, "extra/fx/missing.ko"));
    assert_eq!(run.status, 1);
    assert_eq!(changes(&before, &root.snapshot()), Vec::<String>::new());
}

#[test]
fn a_relative_base_directory_accepts_absolute_and_relative_input_paths() {
    let root = Root::new();
    let parent = root.path().parent().unwrap();
    let relative_base = root.path().file_name().unwrap().to_str().unwrap();
    let absolute = root.fxstable_55();
    let list = root.join("list");
    std::fs::write(
        &list,
        format!("{absolute}\n/lib/modules/6.1.0-50-amd64/extra/fx/fxmisc.ko\n"),
    )
    .unwrap();
    let run = output_guarded(
        std::process::Command::new(env!("CARGO_BIN_EXE_weak-modules"))
            .current_dir(parent)
            .args([
                "--basedir",
                relative_base,
                "--add-modules",
                "--no-initramfs",
            ])
            .stdin(std::fs::File::open(&list).unwrap()),
    )
    .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(root.link(K56, "fx/fxstable.ko.zst").is_some());
    assert!(
        root.link(K53, "fx/fxmisc.ko").is_some(),
        "a path without the base is taken inside it"
    );
}

#[test]
fn a_link_to_something_unreadable_is_left_alone_with_a_warning() {
    let root = Root::new();
    std::fs::write(root.join("opt-notes.ko"), "not a module").unwrap();
    root.plant_link(K53, "odd/notes.ko", "../../../../../opt-notes.ko");
    let module = root.module(K50, "extra/fx/fxstable.ko");
    let run = root.run(&["--add-modules", "--no-initramfs"], &module);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(root.link(K53, "odd/notes.ko").is_some());
    assert!(root.link(K53, "fx/fxstable.ko").is_some());
    // depmod's own complaint about that link is left out: its wording is the installed
    // version's.
    let ours: String = run
        .stderr
        .lines()
        .filter(|line| !line.starts_with("depmod: "))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_golden("add_modules/unreadable-link.stderr", &root, &ours);
}

#[test]
fn a_file_in_the_way_is_left_alone_and_the_other_kernels_still_change() {
    let root = Root::new();
    let in_the_way = root.weak_updates(K56).join("fx/fxstable.ko.zst");
    std::fs::create_dir_all(in_the_way.parent().unwrap()).unwrap();
    std::fs::write(&in_the_way, "an admin's file").unwrap();
    let input = format!("{}\n{}\n", root.fxstable_55(), root.fxmisc_50());
    let run = root.run(&["--add-modules", "--no-initramfs"], &input);
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr,
        format!(
            "weak-modules: {}: not a symlink, left alone; \
             /lib/modules/{K55}/extra/fx/fxstable.ko.zst is not linked into kernel {K56}\n",
            in_the_way.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(&in_the_way).unwrap(),
        "an admin's file"
    );
    assert!(root.link(K53, "fx/fxmisc.ko").is_some());
    assert!(root.reindexed().contains(&K53.to_owned()));
}

#[test]
fn a_module_outside_its_own_kernels_directory_is_linked_under_its_whole_path_with_a_warning() {
    // What the guide's `%{kmod_kernel_version}.%{_arch}` makes of a release without `.arch`.
    let root = Root::new();
    let dir = root.join("lib/modules/6.1.0-55-amd64.x86_64/extra/fx");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixtures().join("built/6.1.0-55-amd64/fxstable.ko"),
        dir.join("fxstable.ko"),
    )
    .unwrap();
    let module = dir.join("fxstable.ko");
    let run = root.run(
        &["--add-modules", "--no-initramfs"],
        &format!("{}\n", module.display()),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        format!(
            "weak-modules: warning: {}: its vermagic says kernel 6.1.0-55-amd64, but its \
             directory names kernel 6.1.0-55-amd64.x86_64; it is linked as \
             weak-updates/lib/modules/6.1.0-55-amd64.x86_64/extra/fx/fxstable.ko\n",
            module.display()
        )
    );
    assert_eq!(
        root.links(K56),
        ["lib/modules/6.1.0-55-amd64.x86_64/extra/fx/fxstable.ko -> \
          ../../../../../../../6.1.0-55-amd64.x86_64/extra/fx/fxstable.ko"]
    );
}
