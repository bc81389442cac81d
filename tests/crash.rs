//! The real binary killed at every filesystem-changing step of each mode (strace's fault
//! injection delivers SIGKILL on entry to the Nth such system call), then run once more as
//! the next rpm scriptlet would. At the kill every link is its old or its new value; after the
//! next run the links, every `modules.dep` and every initramfs equal an uninterrupted run's,
//! and nothing of ours is left behind.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use common::*;
use weak_modules::core::cpio::{Content, ImageContents};
use weak_modules::shell::decompress::decompress;

/// Every system call of ours that changes the filesystem or starts or waits for depmod and
/// dracut. A kill on entry to one is a kill just after the one before it.
const KILL_POINTS: &[&str] = &[
    "flock",
    "mkdir",
    "mkdirat",
    "symlink",
    "symlinkat",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "rmdir",
    "write",
    "fsync",
    "fdatasync",
    "clone",
    "clone3",
    "vfork",
    "wait4",
];

/// One job: how its root is prepared, and the command an rpm scriptlet would run.
struct Job {
    name: &'static str,
    prepare: fn(&Root) -> (Vec<String>, String),
}

const JOBS: &[Job] = &[
    Job {
        name: "add-kernel",
        prepare: |root| {
            with_images(root, &[K53]);
            (args(&["--add-kernel", K53]), String::new())
        },
    },
    Job {
        name: "add-modules",
        prepare: |root| {
            with_images(root, &[K53, K56]);
            let input = format!("{}\n{}\n", root.fxstable_55(), root.fxmisc_50());
            (args(&["--add-modules"]), input)
        },
    },
    Job {
        name: "remove-modules",
        prepare: |root| {
            let module = root.fxstable_55();
            let run = root.run(&["--add-modules", "--no-initramfs"], &format!("{module}\n"));
            assert_eq!(run.status, 0, "{}", run.stderr);
            with_images(root, &[K56]);
            fs::remove_file(&module).unwrap();
            (args(&["--remove-modules"]), format!("{module}\n"))
        },
    },
    Job {
        name: "replace",
        prepare: |root| {
            // fxexport v1 (built for 55) linked into a kernel like 56, then v2 (built for 56)
            // replaces it at another path, and its consumer follows.
            let k57 = kernel_like_56(root);
            let v2 = root.join(&format!("lib/modules/{K56}/extra/fxdep/fxexport.ko"));
            let aside = root.join("fxexport-v2.ko");
            fs::rename(&v2, &aside).unwrap();
            let run = root.run(&["--add-kernel", k57, "--no-initramfs"], "");
            assert_eq!(run.status, 0, "{}", run.stderr);
            fs::rename(&aside, &v2).unwrap();
            with_images(root, &[K55, k57]);
            (args(&["--add-modules"]), format!("{}\n", v2.display()))
        },
    },
    Job {
        name: "replace-back",
        prepare: |root| {
            // The other way: v2's file goes, and its links move back to v1.
            let k57 = kernel_like_56(root);
            let run = root.run(&["--add-kernel", k57, "--no-initramfs"], "");
            assert_eq!(run.status, 0, "{}", run.stderr);
            with_images(root, &[K55, k57]);
            let v2 = root.join(&format!("lib/modules/{K56}/extra/fxdep/fxexport.ko"));
            fs::remove_file(&v2).unwrap();
            (args(&["--remove-modules"]), format!("{}\n", v2.display()))
        },
    },
    Job {
        name: "add-kernel-with-dependencies",
        prepare: |root| {
            with_images(root, &[K56]);
            (args(&["--add-kernel", K56]), String::new())
        },
    },
    Job {
        name: "remove-kernel",
        prepare: |root| {
            let run = root.run(&["--add-kernel", K53, "--no-initramfs"], "");
            assert_eq!(run.status, 0, "{}", run.stderr);
            (args(&["--remove-kernel", K53]), String::new())
        },
    },
];

/// A third kernel of 56's ABI, with the files depmod expects of a kernel.
fn kernel_like_56(root: &Root) -> &'static str {
    root.add_kernel_like(K56, K57);
    for file in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        fs::copy(
            root.join(&format!("lib/modules/{K56}/{file}")),
            root.join(&format!("lib/modules/{K57}/{file}")),
        )
        .unwrap();
    }
    K57
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// What a run must leave: every entry below each kernel's weak-updates/, each modules.dep,
/// each initramfs's module list, and anything of ours that should not be there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    links: BTreeMap<String, String>,
    indexes: BTreeMap<String, String>,
    images: BTreeMap<String, Vec<String>>,
    leftovers: Vec<String>,
}

fn state(base: &Path) -> State {
    let mut links = BTreeMap::new();
    let mut indexes = BTreeMap::new();
    let mut leftovers = Vec::new();
    for entry in fs::read_dir(base.join("lib/modules")).unwrap() {
        let kernel = entry.unwrap().path();
        let release = kernel.file_name().unwrap().to_string_lossy().into_owned();
        if let Ok(dep) = fs::read_to_string(kernel.join("modules.dep")) {
            indexes.insert(release.clone(), dep);
        }
        for entry in walkdir::WalkDir::new(kernel.join("weak-updates")).min_depth(1) {
            let Ok(entry) = entry else { continue };
            let below = entry
                .path()
                .strip_prefix(base)
                .unwrap()
                .display()
                .to_string();
            let name = entry.file_name().to_string_lossy();
            if name.contains(".weak-modules") {
                leftovers.push(below);
            } else if entry.path_is_symlink() {
                let target = fs::read_link(entry.path()).unwrap();
                links.insert(below, target.display().to_string());
            } else if !entry.file_type().is_dir() {
                links.insert(below, "<file>".into());
            }
        }
    }
    let mut images = BTreeMap::new();
    for entry in fs::read_dir(base.join("boot")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains(".weak-modules") {
            leftovers.push(format!("boot/{name}"));
        } else if name.starts_with("initramfs-") {
            images.insert(name, image_listing(&path));
        }
    }
    leftovers.sort();
    State {
        links,
        indexes,
        images,
        leftovers,
    }
}

fn image_listing(path: &Path) -> Vec<String> {
    let archive = decompress(&fs::read(path).unwrap()).unwrap();
    let mut contents = ImageContents::new();
    contents.add_archives(&archive).unwrap();
    contents
        .paths()
        .map(|path| {
            let shown = String::from_utf8_lossy(path).into_owned();
            match contents.get(path) {
                Some(Content::SymlinkTo(target)) => {
                    format!("{shown} -> {}", String::from_utf8_lossy(target))
                }
                _ => shown,
            }
        })
        .collect()
}

/// A copy of a prepared root, links kept as links, every file with the same time.
fn copy_root(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(FIXED_TIME);
    for entry in walkdir::WalkDir::new(from).min_depth(1) {
        let entry = entry.unwrap();
        let target = to.path().join(entry.path().strip_prefix(from).unwrap());
        if entry.path_is_symlink() {
            symlink(fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else if entry.file_type().is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else {
            fs::copy(entry.path(), &target).unwrap();
            let file = fs::File::options().write(true).open(&target).unwrap();
            file.set_modified(when).unwrap();
        }
    }
    to
}

/// The binary on `base`, under strace: counting the kill points, or killed at one.
fn traced(
    base: &Path,
    job_args: &[String],
    input: &str,
    strace: &[String],
) -> std::process::ExitStatus {
    let dracut = base.join("dracut");
    let mut child = spawn_guarded(
        Command::new("strace")
            .arg("-qq")
            .args(strace)
            .arg(env!("CARGO_BIN_EXE_weak-modules"))
            .arg("--basedir")
            .arg(base)
            .arg("--dracut")
            .arg(&dracut)
            .args(job_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that a depmod or dracut it leaves running can be awaited.
            .process_group(0),
    )
    .expect("strace must be installed (Debian's strace package)");
    let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let status = child.wait().unwrap();
    while nix::sys::signal::kill(group, None).is_ok() {
        std::thread::sleep(Duration::from_millis(10));
    }
    status
}

fn count_kill_points(base: &Path, job_args: &[String], input: &str) -> Vec<(&'static str, usize)> {
    let log = base.join("strace.log");
    let status = traced(
        base,
        job_args,
        input,
        &[
            "-o".into(),
            log.display().to_string(),
            format!("-etrace={}", KILL_POINTS.join(",")),
        ],
    );
    assert!(status.success(), "uninterrupted traced run: {status:?}");
    let text = fs::read_to_string(&log).unwrap();
    fs::remove_file(&log).unwrap();
    KILL_POINTS
        .iter()
        .map(|call| {
            let prefix = format!("{call}(");
            (
                *call,
                text.lines()
                    .filter(|line| line.starts_with(&prefix))
                    .count(),
            )
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}

fn run_plain(base: &Path, job_args: &[String], input: &str) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weak-modules"));
    command
        .arg("--basedir")
        .arg(base)
        .arg("--dracut")
        .arg(base.join("dracut"))
        .args(job_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let output = spawn_guarded(&mut command)
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Prepares the job's root once, runs it uninterrupted for the expected end state, then
/// kills a fresh copy at each kill point and runs the job again on it.
fn kill_everywhere(job: &Job) -> usize {
    let prepared = Root::new();
    let (job_args, input) = (job.prepare)(&prepared);
    // Each copy is its own base: module paths are given as inside the base.
    let input = input.replace(prepared.path().to_str().unwrap(), "");
    // The copies get a dracut script of their own path.
    let before = state(prepared.path());

    let reference = copy_root(prepared.path());
    refresh_dracut(reference.path());
    let points = count_kill_points(reference.path(), &job_args, &input);
    let expected = {
        let uninterrupted = copy_root(prepared.path());
        refresh_dracut(uninterrupted.path());
        let (status, stderr) = run_plain(uninterrupted.path(), &job_args, &input);
        assert_eq!(
            (status, stderr.as_str()),
            (0, ""),
            "{}: uninterrupted",
            job.name
        );
        state(uninterrupted.path())
    };
    assert_ne!(before, expected, "{}: the job changes something", job.name);

    let mut killed = 0;
    for &(call, count) in &points {
        for when in 1..=count {
            let point = format!("{} {call}#{when}", job.name);
            let copy = copy_root(prepared.path());
            refresh_dracut(copy.path());
            let status = traced(
                copy.path(),
                &job_args,
                &input,
                &[
                    "-o".into(),
                    "/dev/null".into(),
                    format!("-etrace={call}"),
                    format!("-einject={call}:signal=KILL:when={when}"),
                ],
            );
            assert_eq!(status.signal(), Some(9), "{point}: not killed ({status:?})");
            killed += 1;
            let at_kill = state(copy.path());
            for (link, value) in &at_kill.links {
                let old = before.links.get(link).cloned();
                let new = expected.links.get(link).cloned();
                assert!(
                    Some(value) == old.as_ref() || Some(value) == new.as_ref(),
                    "{point}: {link} -> {value} is neither old ({old:?}) nor new ({new:?})"
                );
            }
            for link in expected.links.keys().chain(before.links.keys()) {
                let there = at_kill.links.contains_key(link);
                let was = before.links.contains_key(link);
                let will = expected.links.contains_key(link);
                assert!(
                    there == was || there == will,
                    "{point}: {link} neither old nor new"
                );
            }
            let (status, stderr) = run_plain(copy.path(), &job_args, &input);
            assert_eq!((status, stderr.as_str()), (0, ""), "{point}: the next run");
            assert_eq!(state(copy.path()), expected, "{point}: after the next run");
        }
    }
    killed
}

/// The stand-in dracut in each copy writes into that copy.
fn refresh_dracut(base: &Path) {
    let script = format!("#!/bin/sh\n{}\n", packing_dracut_body(base));
    let path: PathBuf = base.join("dracut");
    let _ = fs::remove_file(&path);
    write_executable(&path, script);
}

macro_rules! crash_test {
    ($name:ident, $index:expr) => {
        #[test]
        fn $name() {
            let job = &JOBS[$index];
            let killed = kill_everywhere(job);
            eprintln!("{}: {killed} kill points", job.name);
            assert!(killed > 0);
        }
    };
}

crash_test!(killed_anywhere_in_add_kernel_the_next_run_finishes_it, 0);
crash_test!(killed_anywhere_in_add_modules_the_next_run_finishes_it, 1);
crash_test!(
    killed_anywhere_in_remove_modules_the_next_run_finishes_it,
    2
);
crash_test!(
    killed_anywhere_while_replacing_links_the_next_run_finishes_it,
    3
);
crash_test!(
    killed_anywhere_while_replacing_links_back_the_next_run_finishes_it,
    4
);
crash_test!(
    killed_anywhere_in_add_kernel_with_dependencies_the_next_run_finishes_it,
    5
);
crash_test!(killed_anywhere_in_remove_kernel_the_next_run_finishes_it, 6);
