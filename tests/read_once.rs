//! A run reads the tree once: one snapshot, then planning, reporting and applying from it
//! (docs/architecture.md, "One run"). Checked on the real binary under strace: no regular file
//! below the root is opened twice, in any mode.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use common::*;

/// Regular files below the root the run opened more than once, with how often.
fn opened_twice(root: &Root, args: &[&str], stdin: &str) -> BTreeMap<String, usize> {
    opened_twice_via(root, root.path(), args, stdin)
}

/// [`opened_twice`], the root named by `base` (the root itself, or a symlink to it).
fn opened_twice_via(
    root: &Root,
    base: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> BTreeMap<String, usize> {
    let mut opened = opened(root, base, args, stdin);
    opened.retain(|_, count| *count > 1);
    opened
}

/// Every regular file below the root the run opened (base-relative), with how often.
fn opened(
    root: &Root,
    base: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> BTreeMap<String, usize> {
    let log = root.path().join("strace.log");
    let mut child = spawn_guarded(
        Command::new("strace")
            .args([
                "-f",
                "-qq",
                "-e",
                "trace=open,openat",
                "-e",
                "status=successful",
            ])
            .arg("-o")
            .arg(&log)
            .arg(env!("CARGO_BIN_EXE_weak-modules"))
            .arg("--basedir")
            .arg(base)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("strace must be installed (Debian's strace package)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().code().is_some());
    // Opened by the name given or by the resolved one, a file counts as one.
    let prefixes = [
        format!("{}/", base.display()),
        format!("{}/", root.path().display()),
    ];
    let mut opened: BTreeMap<String, usize> = BTreeMap::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        if line.contains("O_DIRECTORY") {
            continue;
        }
        let Some(path) = line.split('"').nth(1) else {
            continue;
        };
        if let Some(below) = prefixes
            .iter()
            .find_map(|prefix| path.strip_prefix(prefix.as_str()))
        {
            *opened.entry(below.to_owned()).or_default() += 1;
        }
    }
    assert!(!opened.is_empty(), "strace saw no file opened: {log:?}");
    opened
}

#[test]
fn every_mode_opens_each_file_of_the_tree_once() {
    let root = Root::new();
    let given = format!("{}\n{}\n", root.fxmisc_50(), root.fxstable_55());
    let jobs: [(&[&str], &str); 6] = [
        (&["--dry-run", "--add-modules"], &given),
        (&["--dry-run", "--remove-modules"], &given),
        (&["--dry-run", "--add-kernel", K53], ""),
        (&["--dry-run", "--sync"], ""),
        (&["--check"], ""),
        (&["--explain"], &given),
    ];
    for (args, stdin) in jobs {
        assert_eq!(
            opened_twice(&root, args, stdin),
            BTreeMap::new(),
            "{args:?}"
        );
    }
}

#[test]
fn a_root_reached_through_a_symlink_is_read_once_too() {
    let root = Root::new();
    let outside = tempfile::tempdir().unwrap();
    let base = outside.path().join("root");
    std::os::unix::fs::symlink(root.path(), &base).unwrap();
    let given = format!(
        "{}\n",
        base.join(format!("lib/modules/{K50}/extra/fx/fxmisc.ko"))
            .display()
    );
    assert_eq!(
        opened_twice_via(&root, &base, &["--dry-run", "--add-modules"], &given),
        BTreeMap::new()
    );
}

/// `--add-modules` of a module of 6.1.0-50 offers 6.1.0-50 nothing it could take: its other
/// out-of-tree modules decide nothing there and are not read, unless its `modules.dep` does
/// not list one of them, which may be because that one cannot be read.
#[test]
fn a_kernel_offered_only_its_own_builds_reads_its_other_modules_only_for_its_index() {
    let root = Root::new();
    let given = format!("{}\n", root.fxmisc_50());
    let args = ["--dry-run", "--add-modules"];
    let own_extra = |opened: &BTreeMap<String, usize>| -> Vec<String> {
        let prefix = format!("lib/modules/{K50}/extra/");
        opened
            .keys()
            .filter(|path| path.starts_with(&prefix))
            .cloned()
            .collect()
    };
    let read = own_extra(&opened(&root, root.path(), &args, &given));
    assert_eq!(read, [format!("lib/modules/{K50}/extra/fx/fxmisc.ko")]);

    let broken = root.join(&format!("lib/modules/{K50}/extra/fx/broken.ko"));
    std::fs::write(&broken, "not an ELF file").unwrap();
    let read = own_extra(&opened(&root, root.path(), &args, &given));
    let every: Vec<String> =
        weak_modules::shell::load::module_files(&root.join(&format!("lib/modules/{K50}/extra")))
            .iter()
            .map(|path| {
                let below = path.strip_prefix(root.path()).unwrap();
                below.to_string_lossy().into_owned()
            })
            .collect();
    assert_eq!(read, every, "all of them, for the index");
    let run = root.run(&args, &given);
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr,
        format!(
            "weak-modules: {}: not a usable kernel module: not an ELF file\n",
            broken.display()
        )
    );
    assert!(
        !run.stdout.contains("modules.dep"),
        "the index matches once broken.ko is known unreadable:\n{}",
        run.stdout
    );
}

/// The symvers files below the root the run opened, base-relative.
fn symvers_opened(root: &Root, args: &[&str], stdin: &str) -> Vec<String> {
    opened(root, root.path(), args, stdin)
        .into_keys()
        .filter(|path| path.contains("symvers"))
        .collect()
}

fn symvers_of(root: &Root, release: &str) -> String {
    let path = weak_modules::shell::load::symvers_file(root.path(), release).unwrap();
    let below = path.strip_prefix(root.path()).unwrap();
    below.to_string_lossy().into_owned()
}

/// `--add-modules` of a module of 6.1.0-50, which has no links, offers 6.1.0-50 nothing it
/// could take: no decision there looks at its exports, so its symvers is not read, and a
/// broken one costs the run nothing.
#[test]
fn a_kernel_offered_only_its_own_builds_leaves_its_symvers_unread() {
    let root = Root::new();
    let given = format!("{}\n", root.fxmisc_50());
    let mut others: Vec<String> = KERNELS
        .iter()
        .filter(|release| **release != K50)
        .map(|release| symvers_of(&root, release))
        .collect();
    others.sort();
    assert_eq!(
        symvers_opened(&root, &["--dry-run", "--add-modules"], &given),
        others
    );

    let intact = Root::new();
    let args = ["--add-modules", "--no-initramfs", "--verbose"];
    let expected = intact.run(&args, &format!("{}\n", intact.fxmisc_50()));
    let own = root.join(&symvers_of(&root, K50));
    std::fs::write(&own, "not a symvers\n").unwrap();
    let run = root.run(&args, &given);
    assert_eq!((run.status, run.stderr.as_str()), (0, ""));
    assert_eq!(
        run.stdout.replace(root.path().to_str().unwrap(), "ROOT"),
        expected
            .stdout
            .replace(intact.path().to_str().unwrap(), "ROOT")
    );
    for release in KERNELS {
        assert_eq!(root.links(release), intact.links(release), "{release}");
    }
}

/// A module given from a kernel's directory, here 6.1.0-56's, but built for another kernel
/// (its vermagic names 6.1.0-55): before any module is read, 6.1.0-56 looks offered only its
/// own build and its symvers is left unread; once the vermagic is known it is read after all,
/// and 6.1.0-56 is decided as any other kernel.
#[test]
fn a_symvers_left_unread_is_read_once_a_given_module_turns_out_built_for_another_kernel() {
    let root = Root::new();
    let vendor = root.join(&format!("lib/modules/{K56}/vendor"));
    std::fs::create_dir_all(&vendor).unwrap();
    std::fs::copy(
        root.module(K55, "extra/fx/fxmisc.ko"),
        vendor.join("fxmisc.ko"),
    )
    .unwrap();
    let given = format!("{}\n", vendor.join("fxmisc.ko").display());
    let args = ["--dry-run", "--verbose", "--add-modules", "--no-initramfs"];
    let mut every: Vec<String> = KERNELS
        .iter()
        .map(|release| symvers_of(&root, release))
        .collect();
    every.sort();
    assert_eq!(symvers_opened(&root, &args, &given), every);
    let run = root.run(&args, &given);
    assert_eq!(run.status, 0);
    assert_golden(
        "read_once/built-for-another-kernel.txt",
        &root,
        &format!("{}--- stderr\n{}", run.stdout, run.stderr),
    );
}
