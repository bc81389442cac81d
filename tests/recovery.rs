//! What a killed or failed run leaves is finished by the next run: leftover temporary names,
//! indexes that no longer match the links, an initramfs owed a regeneration, a failed dracut.
//! And a kernel never loses a module it had a fitting link for while its links change.

mod common;

use std::fs;
use std::os::unix::fs::symlink;

use common::*;

const ADD: &[&str] = &["--add-modules", "--no-initramfs"];
const FXSTABLE_IN_56: &str =
    "fx/fxstable.ko.zst -> ../../../6.1.0-55-amd64/extra/fx/fxstable.ko.zst";

#[test]
fn a_temporary_link_left_by_a_kill_is_cleared_and_never_taken_for_a_link() {
    let root = Root::new();
    // Killed between the symlink under its temporary name and the rename.
    let temp = root
        .weak_updates(K56)
        .join("fx/.fxstable.ko.zst.weak-modules.4242.0");
    fs::create_dir_all(temp.parent().unwrap()).unwrap();
    symlink("../../../6.1.0-55-amd64/extra/fx/fxstable.ko.zst", &temp).unwrap();
    let run = root.run(ADD, &format!("{}\n", root.fxstable_55()));
    assert_eq!((run.status, run.stderr.as_str()), (0, ""));
    assert_eq!(root.links(K56), [FXSTABLE_IN_56]);
    assert!(
        root.modules_dep(K56)
            .contains("weak-updates/fx/fxstable.ko.zst:")
    );
}

#[test]
fn indexes_left_stale_by_a_kill_before_depmod_are_rebuilt_by_the_next_run() {
    for (case, stale) in [("old", None), ("emptied by a full disk", Some(""))] {
        let root = Root::new();
        let run = root.run(ADD, &format!("{}\n", root.fxstable_55()));
        assert_eq!(run.status, 0);
        // The links are in place but modules.dep is as before the run, or empty.
        let dep = root.join(&format!("lib/modules/{K56}/modules.dep"));
        match stale {
            None => fs::copy(
                fixtures().join(format!("root/lib/modules/{K56}/modules.dep")),
                &dep,
            )
            .map(drop)
            .unwrap(),
            Some(text) => fs::write(&dep, text).unwrap(),
        }
        // The next run is about something else entirely.
        let next = root.run(
            &["--add-modules", "--no-initramfs", "--verbose"],
            &format!("{}\n", root.fxmisc_50()),
        );
        assert_eq!((next.status, next.stderr.as_str()), (0, ""), "{case}");
        assert!(
            next.stdout.lines().any(|line| line
                == format!(
                    "Indexes of kernel {K56} do not match its modules: \
                     modules.dep does not list weak-updates/fx/fxstable.ko.zst"
                )
                || line
                    == format!(
                        "Indexes of kernel {K56} do not match its modules: modules.dep is empty"
                    )),
            "{case}: {}",
            next.stdout
        );
        assert!(
            root.modules_dep(K56)
                .contains("weak-updates/fx/fxstable.ko.zst:"),
            "{case}"
        );
        let again = root.run(ADD, &format!("{}\n", root.fxmisc_50()));
        assert_eq!(again.status, 0);
        let before = root.snapshot();
        root.run(ADD, &format!("{}\n", root.fxmisc_50()));
        assert!(
            changes(&before, &root.snapshot()).is_empty(),
            "{case}: settled"
        );
    }
}

#[test]
fn a_failed_dracut_is_retried_by_the_next_run_and_its_temporary_image_cleared() {
    let root = Root::new();
    let image = root.join(&format!("boot/initramfs-{K56}.img"));
    fs::write(&image, "old image").unwrap();
    // A dracut killed mid-run left its temporary image.
    let left = root.join(&format!("boot/.initramfs-{K56}.img.weak-modules.4242.tmp"));
    fs::write(&left, "half an image").unwrap();
    let failing = root.script("failing-dracut", "exit 3");
    let input = format!("{}\n", root.fxstable_55());
    let run = root.run(
        &["--add-modules", "--dracut", failing.to_str().unwrap()],
        &input,
    );
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr,
        format!(
            "weak-modules: {} failed for kernel {K56} (exit status: 3)\n",
            failing.display()
        )
    );
    assert!(!left.exists(), "the killed run's temporary image is gone");
    assert_eq!(fs::read_to_string(&image).unwrap(), "old image");
    assert_eq!(
        fs::read_to_string(root.weak_updates(K56).join(".weak-modules-owed")).unwrap(),
        "initramfs\n"
    );

    // The same command again: nothing to link, but the initramfs is still owed.
    let dracut = packing_dracut(&root);
    let retry = root.run(
        &[
            "--add-modules",
            "--verbose",
            "--dracut",
            dracut.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!((retry.status, retry.stderr.as_str()), (0, ""));
    // "Kernel 6.1.0-56-amd64 is owed the initramfs by an interrupted or failed run", and the
    // unreadable old image replaced.
    assert_golden("recovery/owed-initramfs.txt", &root, &retry.stdout);
    assert_ne!(fs::read(&image).unwrap(), b"old image");
    assert!(!root.weak_updates(K56).join(".weak-modules-owed").exists());
    assert_eq!(
        fs::read_to_string(root.join("dracut.log"))
            .unwrap()
            .lines()
            .count(),
        1
    );
}

/// fxexport v1 (built for 55) is linked into a kernel like 56; then v2 (built for 56, newer)
/// comes and its link path is taken by a directory: v1's link must stay, not go first.
#[test]
fn a_superseded_link_stays_when_its_replacement_cannot_be_placed() {
    let root = Root::new();
    root.add_kernel_like(K56, K57);
    let v2 = root.join(&format!("lib/modules/{K56}/extra/fxdep/fxexport.ko"));
    let aside = root.join("fxexport-v2.ko");
    fs::rename(&v2, &aside).unwrap();
    let run = root.run(&["--add-kernel", K57, "--no-initramfs"], "");
    assert_eq!(run.status, 0, "{}", run.stderr);
    let v1_link = "fxdep/fxexport.ko.xz -> ../../../6.1.0-55-amd64/extra/fxdep/fxexport.ko.xz";
    assert!(
        root.links(K57).contains(&v1_link.to_owned()),
        "{:?}",
        root.links(K57)
    );

    fs::rename(&aside, &v2).unwrap();
    fs::create_dir_all(root.weak_updates(K57).join("fxdep/fxexport.ko")).unwrap();
    let run = root.run(ADD, &format!("{}\n", v2.display()));
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr,
        format!(
            "weak-modules: {}: not a symlink, left alone; \
             /lib/modules/{K56}/extra/fxdep/fxexport.ko is not linked into kernel {K57}\n",
            root.weak_updates(K57).join("fxdep/fxexport.ko").display()
        )
    );
    assert!(
        root.links(K57).contains(&v1_link.to_owned()),
        "{:?}",
        root.links(K57)
    );
}

/// depmod fails for one kernel (its modules.dep is a directory it cannot replace): that kernel
/// gets no initramfs built from stale indexes, both stay owed, and the next run does both.
#[test]
fn a_failed_depmod_is_retried_and_its_kernels_initramfs_waits_for_it() {
    let root = Root::new();
    let dracut = with_images(&root, &[K56]);
    let dracut = dracut.to_str().unwrap();
    fs::remove_file(root.join("dracut.log")).ok();
    let dep = root.join(&format!("lib/modules/{K56}/modules.dep"));
    fs::remove_file(&dep).unwrap();
    fs::create_dir_all(dep.join("in-the-way")).unwrap();
    let input = format!("{}\n", root.fxstable_55());
    let run = root.run(&["--add-modules", "--dracut", dracut], &input);
    assert_eq!(run.status, 1);
    assert!(
        run.stderr
            .lines()
            .any(|line| line.starts_with("weak-modules: /sbin/depmod -b ")
                && line.ends_with(&format!("-a {K56}: exited with exit status: 1"))),
        "{}",
        run.stderr
    );
    assert!(
        !root.join("dracut.log").exists(),
        "no image from stale indexes"
    );
    assert_eq!(
        fs::read_to_string(root.weak_updates(K56).join(".weak-modules-owed")).unwrap(),
        "depmod\ninitramfs\n"
    );

    fs::remove_dir_all(&dep).unwrap();
    let retry = root.run(&["--add-modules", "--dracut", dracut], &input);
    assert_eq!((retry.status, retry.stderr.as_str()), (0, ""));
    assert!(
        root.modules_dep(K56)
            .contains("weak-updates/fx/fxstable.ko.zst:")
    );
    assert_eq!(
        fs::read_to_string(root.join("dracut.log"))
            .unwrap()
            .lines()
            .count(),
        1
    );
    assert!(!root.weak_updates(K56).join(".weak-modules-owed").exists());
}
