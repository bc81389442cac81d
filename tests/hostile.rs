//! Hostile and broken trees and input: each problem costs only what it touches, is reported in
//! one stderr line naming the file (and line) and the reason, makes the exit status 1, and
//! loses no existing link.

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::time::Duration;

use common::*;

const ADD: &[&str] = &["--add-modules", "--no-initramfs"];

/// K53 and K56 each with one link already, made by a real run.
fn root_with_links() -> Root {
    let root = Root::new();
    let run = root.run(
        ADD,
        &format!("{}\n{}\n", root.fxstable_55(), root.fxmisc_50()),
    );
    assert_eq!((run.status, run.stderr.as_str()), (0, ""));
    assert_eq!(root.links(K53), [FXMISC_IN_53]);
    assert_eq!(root.links(K56), [FXSTABLE_IN_56]);
    root
}

const FXMISC_IN_53: &str = "fx/fxmisc.ko -> ../../../6.1.0-50-amd64/extra/fx/fxmisc.ko";
const FXSTABLE_IN_56: &str =
    "fx/fxstable.ko.zst -> ../../../6.1.0-55-amd64/extra/fx/fxstable.ko.zst";

#[test]
fn a_fifo_named_like_a_module_is_refused_without_hanging() {
    let root = Root::new();
    let fifo = root.join("x.ko");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let input = format!("{}\n{}\n", fifo.display(), root.fxstable_55());
    let child = root.spawn(root.path(), ADD, &input);
    let run = finish_within(child, Duration::from_secs(30));
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr,
        format!(
            "weak-modules: {}: not a regular file (a FIFO)\n",
            fifo.display()
        )
    );
    assert_eq!(root.links(K56), [FXSTABLE_IN_56]);
    // The lock went with the run: a dry run right after does not wait.
    let dry = finish_within(
        root.spawn(root.path(), &["--add-modules", "--dry-run"], &input),
        Duration::from_secs(30),
    );
    assert_eq!(dry.status, 1);
}

#[test]
fn a_huge_sparse_file_and_a_device_are_refused_before_reading() {
    let root = Root::new();
    let sparse = root.join("huge.ko");
    fs::create_dir_all(root.join("dev")).unwrap();
    symlink("/dev/zero", root.join("dev/zero")).unwrap();
    fs::File::create(&sparse).unwrap().set_len(4 << 30).unwrap();
    let input = format!("{}\n/dev/zero\n{}\n", sparse.display(), root.fxstable_55());
    let run = finish_within(
        root.spawn(root.path(), ADD, &input),
        Duration::from_secs(30),
    );
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr,
        format!(
            "weak-modules: {}: larger than 256 MiB, refused\n\
             weak-modules: {}: not a regular file (a character device)\n",
            sparse.display(),
            root.join("dev/zero").display()
        )
    );
    assert_eq!(root.links(K56), [FXSTABLE_IN_56]);
}

#[test]
fn bad_stdin_lines_cost_only_themselves_and_are_named_by_number() {
    let root = Root::new();
    let mut input = b"/lib/modules/x\xff.ko\n".to_vec();
    input.extend(vec![b'a'; 100_000]);
    input.push(b'\n');
    input.extend(format!("{}\n", root.fxstable_55()).as_bytes());
    let child = spawn_with_bytes(&root, ADD, &input);
    let run = finish_within(child, Duration::from_secs(30));
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr,
        "weak-modules: <stdin> line 1: not valid UTF-8, skipped\n\
         weak-modules: <stdin> line 2: longer than 4096 bytes, skipped\n"
    );
    assert_eq!(root.links(K56), [FXSTABLE_IN_56]);
}

fn spawn_with_bytes(root: &Root, args: &[&str], input: &[u8]) -> std::process::Child {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weak-modules"))
        .arg("--basedir")
        .arg(root.path())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    child
}

#[test]
fn a_path_climbing_above_the_root_is_folded_there() {
    let root = Root::new();
    let input = format!(
        "{}/../../../../../../../../../../lib/modules/{K55}/extra/fx/fxstable.ko.zst\n",
        root.path().display()
    );
    let run = root.run(ADD, &input);
    assert_eq!((run.status, run.stderr.as_str()), (0, ""));
    assert_eq!(root.links(K56), [FXSTABLE_IN_56]);
}

#[test]
fn an_empty_or_vmlinux_less_symvers_leaves_that_kernels_links_alone() {
    for (name, content) in [
        ("empty", ""),
        ("blank", "\n\n"),
        (
            "module lines only",
            "0x12345678\tllc_sap_open\tnet/llc/llc\tEXPORT_SYMBOL\t\n",
        ),
    ] {
        let root = root_with_links();
        let symvers = root.join("boot/symvers-6.1.0-53-amd64.gz");
        fs::remove_file(&symvers).unwrap();
        let plain = root.join("boot/symvers-6.1.0-53-amd64");
        fs::write(&plain, content).unwrap();
        let input = format!("{}\n", root.module(K50, "extra/fx/fxstable.ko"));
        let run = root.run(ADD, &input);
        assert_eq!(run.status, 1, "{name}");
        assert_eq!(
            run.stderr,
            format!(
                "weak-modules: {}: lists no export of vmlinux, not a usable symvers; \
                 kernel {K53} left as it is\n",
                plain.display()
            ),
            "{name}"
        );
        assert_eq!(root.links(K53), [FXMISC_IN_53], "{name}");
        assert!(root.link(K54, "fx/fxstable.ko").is_some(), "{name}");
    }
}

#[test]
fn a_weak_updates_symlink_loop_costs_only_its_kernel() {
    let root = root_with_links();
    let weak = root.weak_updates(K54);
    symlink("weak-updates", &weak).unwrap();
    let run = root.run(
        ADD,
        &format!("{}\n", root.module(K50, "extra/fx/fxstable.ko")),
    );
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr,
        format!(
            "weak-modules: {}: refusing to write outside {}; kernel {K54} left as it is\n",
            weak.display(),
            root.join(&format!("lib/modules/{K54}")).display()
        )
    );
    assert!(root.link(K53, "fx/fxstable.ko").is_some());
    assert_eq!(root.links(K56), [FXSTABLE_IN_56]);
}

#[test]
fn a_dangling_link_with_a_non_utf8_name_is_left_alone_once_and_for_all() {
    let root = root_with_links();
    let odd = root
        .weak_updates(K53)
        .join(std::ffi::OsStr::from_bytes(b"gone\xff.ko"));
    symlink("../../../nowhere/gone.ko", &odd).unwrap();
    let first = root.run(ADD, &format!("{}\n", root.fxmisc_50()));
    assert_eq!(first.status, 0);
    assert_eq!(
        first.stderr,
        format!(
            "weak-modules: warning: {}: name is not UTF-8, not a link of ours, left alone\n",
            odd.display()
        )
    );
    assert!(fs::symlink_metadata(&odd).is_ok());
    let before = root.snapshot();
    let again = root.run(ADD, &format!("{}\n", root.fxmisc_50()));
    assert_eq!(again.status, 0);
    assert!(
        changes(&before, &root.snapshot()).is_empty(),
        "no depmod, no change"
    );
}

#[test]
fn a_symlinked_kernel_directory_is_refused_not_given_dangling_links() {
    let root = Root::new();
    let real = root.join("elsewhere/6.1.0-53-amd64");
    fs::create_dir_all(real.parent().unwrap()).unwrap();
    let kernel_dir = root.join(&format!("lib/modules/{K53}"));
    fs::rename(&kernel_dir, &real).unwrap();
    symlink(&real, &kernel_dir).unwrap();
    let run = root.run(ADD, &format!("{}\n", root.fxmisc_50()));
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr,
        format!(
            "weak-modules: {}: is a symlink; kernel {K53} left as it is \
             (links computed from it would not resolve)\n",
            kernel_dir.display()
        )
    );
    assert!(!real.join("weak-updates").exists());
}

#[test]
fn a_release_that_is_not_one_name_is_a_usage_error() {
    let root = Root::new();
    for release in ["../../x", "a/b", "..", "."] {
        for mode in ["--add-kernel", "--remove-kernel"] {
            let run = root.run(&[mode, release], "");
            assert_eq!(run.status, 1, "{mode} {release}");
            assert_eq!(
                run.stderr,
                format!(
                    "weak-modules: {release:?} is not a kernel release \
                     (one name under lib/modules, without '/' or '..')\n"
                )
            );
        }
    }
    assert!(!root.join("x").exists());
    assert!(!root.join("lib/x").exists());
}

#[test]
fn a_bad_module_is_reported_once_however_often_it_is_met() {
    let root = Root::new();
    let bad = root.join(&format!("lib/modules/{K50}/extra/fx/broken.ko"));
    fs::write(&bad, "not an ELF file").unwrap();
    // Removing one of 55's modules makes 55 take every installed build (so it reads K50's
    // extra/), and every kernel is planned, K50 with its own extra/ among them.
    let gone = root.module(K55, "extra/fx/fxmisc.ko");
    fs::remove_file(&gone).unwrap();
    let run = root.run(
        &["--remove-modules", "--no-initramfs"],
        &format!("{gone}\n"),
    );
    assert_eq!(run.status, 1);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines,
        [format!(
            "weak-modules: {}: not a usable kernel module: not an ELF file",
            bad.display()
        )],
        "{}",
        run.stderr
    );
}

#[test]
fn a_fitting_build_blocked_by_an_unreadable_link_is_reported() {
    let root = Root::new();
    fs::write(root.join("notes.ko"), "not a module").unwrap();
    root.plant_link(K53, "fx/fxmisc.ko", "../../../../../notes.ko");
    let run = root.run(ADD, &format!("{}\n", root.fxmisc_50()));
    assert_eq!(run.status, 1);
    let link = root.weak_updates(K53).join("fx/fxmisc.ko");
    assert_eq!(
        run.stderr,
        format!(
            "weak-modules: warning: {}: target cannot be read as a module, left alone\n\
             weak-modules: {}: a link to something that is not a readable module, left alone; \
             /lib/modules/{K50}/extra/fx/fxmisc.ko is not linked into kernel {K53}\n",
            link.display(),
            link.display()
        )
    );
    assert_eq!(
        root.link(K53, "fx/fxmisc.ko").unwrap(),
        "../../../../../notes.ko"
    );
}

#[test]
fn a_file_at_one_link_path_does_not_stop_the_kernels_other_links() {
    let root = Root::new();
    // A directory: depmod ignores it, so its own output stays out of this test's stderr.
    let in_the_way = root.weak_updates(K53).join("fx/fxmisc.ko");
    fs::create_dir_all(&in_the_way).unwrap();
    fs::write(in_the_way.join("README"), "an admin's notes").unwrap();
    let run = root.run(&["--add-kernel", K53, "--no-initramfs", "--verbose"], "");
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr,
        format!(
            "weak-modules: {}: not a symlink, left alone; \
             /lib/modules/{K50}/extra/fx/fxmisc.ko is not linked into kernel {K53}\n",
            in_the_way.display()
        )
    );
    assert_golden("hostile/file-at-one-link-path.txt", &root, &run.stdout);
    assert_eq!(
        root.links(K53),
        [
            "fx/fxmisc.ko/README".to_owned(),
            "fx/fxstable.ko -> ../../../6.1.0-50-amd64/extra/fx/fxstable.ko".to_owned(),
            "fxdep/fxconsume.ko -> ../../../6.1.0-50-amd64/extra/fxdep/fxconsume.ko".to_owned(),
            "fxdep/fxexport.ko -> ../../../6.1.0-50-amd64/extra/fxdep/fxexport.ko".to_owned(),
            "fxdep/fxpriv.ko -> ../../../6.1.0-50-amd64/extra/fxdep/fxpriv.ko".to_owned(),
        ]
    );
    assert_eq!(
        fs::read_to_string(in_the_way.join("README")).unwrap(),
        "an admin's notes"
    );
}

#[test]
fn a_waiting_run_names_the_holder_and_a_dry_run_does_not_wait() {
    let root = root_with_links();
    let lock_dir = fs::File::open(root.join("lib/modules")).unwrap();
    let held = nix::fcntl::Flock::lock(lock_dir, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let dry = finish_within(
        root.spawn(root.path(), &["--add-kernel", K54, "--dry-run"], ""),
        Duration::from_secs(30),
    );
    assert_eq!(dry.status, 0);
    assert_eq!(
        dry.stderr,
        format!(
            "weak-modules: warning: {}: locked by process {}; a dry run reads the tree without waiting\n",
            root.join("lib/modules").display(),
            std::process::id()
        )
    );
    let waiting = root.spawn(root.path(), &["--add-kernel", K54, "--no-initramfs"], "");
    std::thread::sleep(Duration::from_millis(500));
    assert!(root.links(K54).is_empty(), "it waits");
    drop(held);
    let run = finish_within(waiting, Duration::from_secs(60));
    assert_eq!(run.status, 0);
    assert_eq!(
        run.stderr,
        format!(
            "weak-modules: waiting for the lock on {}, held by process {}\n",
            root.join("lib/modules").display(),
            std::process::id()
        )
    );
    assert!(!root.links(K54).is_empty());
}
