//! The command line and the initramfs step, on copies of fixtures/root (docs/behaviour.md,
//! "Scenarios" 26-30 and 35).

mod common;

use common::*;

#[test]
fn s26_no_mode_unknown_option_and_help() {
    let root = Root::new();
    let run = root.run(&[], "");
    assert_eq!(run.status, 1);
    assert_golden("cli/no-mode.stdout", &root, &run.stdout);
    assert_golden("cli/no-mode.stderr", &root, &run.stderr);
    let bogus = root.run(&["--bogus", "--add-modules"], "");
    assert_eq!(bogus.status, 1);
    assert_golden("cli/unknown-option.stderr", &root, &bogus.stderr);
    assert_eq!(
        root.run(&["--add"], "").status,
        1,
        "an ambiguous prefix is an error"
    );
    let help = root.run(&["-h"], "");
    assert_eq!(help.status, 0);
    assert_golden("cli/help.stdout", &root, &help.stdout);
}

#[test]
fn s27_ours_a_missing_dracut_matters_only_when_an_image_needs_it() {
    let root = Root::new();
    let module = root.fxstable_55();
    let run = root.run(
        &["--add-modules", "--dracut", "/nonexistent/dracut"],
        &module,
    );
    assert_eq!(run.status, 0, "{}", run.stderr);

    let root = Root::new();
    std::fs::write(root.join("boot/initramfs-6.1.0-56-amd64.img"), b"image").unwrap();
    let module = root.fxstable_55();
    let run = root.run(
        &["--add-modules", "--dracut", "/nonexistent/dracut"],
        &module,
    );
    assert_eq!(run.status, 1);
    // "could not find dracut at /nonexistent/dracut", after the links are made.
    assert_golden("cli/s27-missing-dracut.stderr", &root, &run.stderr);
    assert!(
        root.link(K56, "fx/fxstable.ko.zst").is_some(),
        "the links are still made"
    );
}

/// A stand-in for dracut that packs the kernel's module tree (weak links included) into a gzip
/// newc cpio image, as dracut would include them.
#[test]
fn s29_an_image_whose_modules_changed_is_replaced() {
    let root = Root::new();
    let dracut = packing_dracut(&root);
    let image = root.join("boot/initramfs-6.1.0-56-amd64.img");
    root.run_program(&dracut, &["-f", image.to_str().unwrap(), K56]);
    let old = std::fs::read(&image).unwrap();
    let module = root.fxstable_55();
    let run = root.run(
        &["--add-modules", "--dracut", dracut.to_str().unwrap()],
        &module,
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_ne!(std::fs::read(&image).unwrap(), old);
    let log = std::fs::read_to_string(root.join("dracut.log")).unwrap();
    assert_eq!(
        log.lines().count(),
        2,
        "only 6.1.0-56 was regenerated: {log}"
    );
    let boot: Vec<String> = std::fs::read_dir(root.join("boot"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("initramfs"))
        .collect();
    assert_eq!(
        boot,
        ["initramfs-6.1.0-56-amd64.img"],
        "no temporary image is left"
    );
}

#[test]
fn s29_an_image_with_the_same_modules_is_kept() {
    let root = Root::new();
    let image = root.join("boot/initramfs-6.1.0-56-amd64.img");
    let packed = packing_dracut(&root);
    root.run_program(&packed, &["-f", image.to_str().unwrap(), K56]);
    let unchanged = root.join("unchanged.img");
    std::fs::copy(&image, &unchanged).unwrap();
    let same = root.script(
        "same-dracut",
        &format!(
            "echo \"$@\" >> {}\ncp {} \"$2\"",
            root.join("same.log").display(),
            unchanged.display()
        ),
    );
    let before = std::fs::metadata(&image).unwrap().modified().unwrap();
    let module = root.fxstable_55();
    let run = root.run(
        &["--add-modules", "--dracut", same.to_str().unwrap()],
        &module,
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let log = std::fs::read_to_string(root.join("same.log")).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert_eq!(
        std::fs::metadata(&image).unwrap().modified().unwrap(),
        before
    );
    let leftovers = std::fs::read_dir(root.join("boot"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("tmp")
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn s30_the_check_program_is_called_with_its_arguments_and_the_release() {
    let root = Root::new();
    let prog = root.script(
        "check",
        &format!("echo \"$@\" >> {}", root.join("check.log").display()),
    );
    let module = root.fxstable_55();
    let run = root.run(
        &[
            "--add-modules",
            "--check-initramfs-prog",
            &format!("{} --x", prog.display()),
        ],
        &module,
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(root.join("check.log")).unwrap(),
        "--x 6.1.0-56-amd64\n"
    );

    let root = Root::new();
    let prog = root.script(
        "check",
        &format!("echo \"$@\" >> {}", root.join("check.log").display()),
    );
    let run = root.run(
        &[
            "--add-modules",
            "--no-initramfs",
            "--check-initramfs-prog",
            prog.to_str().unwrap(),
        ],
        &root.fxstable_55(),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(!root.join("check.log").exists());
}

#[test]
fn s35_with_several_modes_the_first_in_fixed_order_wins() {
    let root = Root::new();
    let module = root.fxstable_55();
    let run = root.run(
        &["--remove-kernel", K56, "--add-modules", "--no-initramfs"],
        &module,
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(root.link(K56, "fx/fxstable.ko.zst").is_some());
}
