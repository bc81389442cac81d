//! A copy of fixtures/root in a temp dir, and the real binary run on it.
#![allow(dead_code)]

pub mod rpm;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

pub const K50: &str = "6.1.0-50-amd64";
pub const K53: &str = "6.1.0-53-amd64";
pub const K54: &str = "6.1.0-54-amd64";
pub const K55: &str = "6.1.0-55-amd64";
pub const K56: &str = "6.1.0-56-amd64";
pub const KRT: &str = "6.1.0-56-rt-amd64";
pub const KCLOUD: &str = "6.1.0-50-cloud-amd64";
pub const K612: &str = "6.12.117+deb12-amd64";

/// Every fixture kernel, in the order of fixtures/root/lib/modules (a test in
/// fixtures_provenance.rs holds the two together).
pub const KERNELS: [&str; 8] = [K50, KCLOUD, K53, K54, K55, K56, KRT, K612];

/// Releases no fixture has, for kernels a test makes with [`Root::add_kernel_like`]: a third
/// kernel of 56's ABI, one of 55's, and one more of 56's where a test needs two.
pub const K56_1: &str = "6.1.0-56.1-amd64";
pub const K55_1: &str = "6.1.0-55.1-amd64";
pub const K57: &str = "6.1.0-57-amd64";

/// A release that is not installed: no symvers, no modules.
pub const K_ABSENT: &str = "6.1.0-99-amd64";

/// What `--add-kernel 6.1.0-56-amd64` links on the fixtures when run inside the root (chroot),
/// where the targets are absolute, as [`Root::links`] shows it.
pub const K56_ADDED_IN_CHROOT: [&str; 5] = [
    "fx/fxalloc.ko -> /lib/modules/6.1.0-55-amd64/extra/fx/fxalloc.ko",
    "fx/fxmisc.ko -> /lib/modules/6.1.0-55-amd64/extra/fx/fxmisc.ko",
    "fx/fxstable.ko.zst -> /lib/modules/6.1.0-55-amd64/extra/fx/fxstable.ko.zst",
    "fxdep/fxconsume.ko -> /lib/modules/6.1.0-55-amd64/extra/fxdep/fxconsume.ko",
    "fxdep/fxexport.ko.xz -> /lib/modules/6.1.0-55-amd64/extra/fxdep/fxexport.ko.xz",
];

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub struct Root {
    dir: tempfile::TempDir,
}

/// What one run of the binary did.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Held while a test writes an executable and while it starts a process: a process forked
/// while another thread holds a script open for writing would make running that script fail
/// with "text file busy".
static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Taken by tests that write a script or start a process by other means than [`Root`]'s (e.g.
/// a library call that runs one), for the same reason.
pub fn spawn_guard() -> std::sync::MutexGuard<'static, ()> {
    SPAWN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes an executable file (a script, or a program's copy) under the spawn guard.
pub fn write_executable(path: &Path, bytes: impl AsRef<[u8]>) {
    let _guard = spawn_guard();
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Copies an executable under the spawn guard.
pub fn copy_executable(from: &Path, to: &Path) {
    let _guard = spawn_guard();
    fs::copy(from, to).unwrap();
}

/// Starts a process the test builds itself, under the spawn guard.
pub fn spawn_guarded(command: &mut Command) -> std::io::Result<std::process::Child> {
    let _guard = spawn_guard();
    command.spawn()
}

/// Like [`Command::output`] (stdout and stderr captured), started under the spawn guard. Stdin
/// is what the command sets, inherited otherwise.
pub fn output_guarded(command: &mut Command) -> std::io::Result<Output> {
    spawn_guarded(command.stdout(Stdio::piped()).stderr(Stdio::piped()))?.wait_with_output()
}

/// The modification time every file of a fresh root gets.
pub const FIXED_TIME: u64 = 1_700_000_000;

impl Root {
    /// A fresh copy of fixtures/root, every file with the same modification time so that no
    /// index looks older than a module by accident of checkout order.
    pub fn new() -> Root {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_tree(&fixtures().join("root"), dir.path());
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(FIXED_TIME);
        for entry in walkdir::WalkDir::new(dir.path()) {
            let entry = entry.unwrap();
            if entry.file_type().is_file() {
                let file = fs::File::options().write(true).open(entry.path()).unwrap();
                file.set_modified(when).unwrap();
            }
        }
        Root { dir }
    }

    /// An empty root: no kernel, no file; for tests of one step that lay out their own.
    pub fn empty() -> Root {
        Root {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn module(&self, release: &str, below: &str) -> String {
        self.join(&format!("lib/modules/{release}/{below}"))
            .to_string_lossy()
            .into_owned()
    }

    /// The module most tests install: 6.1.0-55's fxstable, which fits 6.1.0-56 only.
    pub fn fxstable_55(&self) -> String {
        self.module(K55, "extra/fx/fxstable.ko.zst")
    }

    /// 6.1.0-50's fxmisc, which fits 6.1.0-53 and 6.1.0-54.
    pub fn fxmisc_50(&self) -> String {
        self.module(K50, "extra/fx/fxmisc.ko")
    }

    pub fn weak_updates(&self, release: &str) -> PathBuf {
        self.join(&format!("lib/modules/{release}/weak-updates"))
    }

    /// The text of the link at `weak-updates/<below>` of `release`, if it is a symlink.
    pub fn link(&self, release: &str, below: &str) -> Option<String> {
        fs::read_link(self.weak_updates(release).join(below))
            .ok()
            .map(|target| target.to_string_lossy().into_owned())
    }

    /// Every entry below a kernel's weak-updates/, as `path -> target` (or just the path).
    pub fn links(&self, release: &str) -> Vec<String> {
        let dir = self.weak_updates(release);
        let mut found = Vec::new();
        for entry in walkdir::WalkDir::new(&dir).min_depth(1).sort_by_file_name() {
            let Ok(entry) = entry else { continue };
            let below = entry
                .path()
                .strip_prefix(&dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if entry.path_is_symlink() {
                let target = fs::read_link(entry.path()).unwrap();
                found.push(format!("{below} -> {}", target.display()));
            } else if entry.file_type().is_file() {
                found.push(below);
            }
        }
        found
    }

    /// Kernels whose modules.dep the real depmod wrote since the root was made, sorted.
    pub fn reindexed(&self) -> Vec<String> {
        let fixed = SystemTime::UNIX_EPOCH + Duration::from_secs(FIXED_TIME);
        let mut releases = Vec::new();
        for entry in fs::read_dir(self.join("lib/modules")).unwrap() {
            let entry = entry.unwrap();
            let dep = entry.path().join("modules.dep");
            if let Ok(meta) = fs::metadata(&dep)
                && meta.modified().unwrap() != fixed
            {
                releases.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        releases.sort();
        releases
    }

    pub fn modules_dep(&self, release: &str) -> String {
        fs::read_to_string(self.join(&format!("lib/modules/{release}/modules.dep")))
            .unwrap_or_default()
    }

    /// Runs the binary with `--basedir <root>` plus `args`, feeding `stdin`.
    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        self.run_in(self.path(), args, stdin)
    }

    pub fn run_in(&self, cwd: &Path, args: &[&str], stdin: &str) -> Run {
        let child = self.spawn(cwd, args, stdin);
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().unwrap();
        Run {
            status: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Starts the binary with `--basedir <root>` plus `args`, `stdin` already written and
    /// closed, stdout and stderr captured.
    pub fn spawn(&self, cwd: &Path, args: &[&str], stdin: &str) -> std::process::Child {
        let guard = spawn_guard();
        let mut child = Command::new(env!("CARGO_BIN_EXE_weak-modules"))
            .arg("--basedir")
            .arg(self.path())
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run weak-modules");
        drop(guard);
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
        child
    }

    /// A kernel that does not exist in Debian: `release` with `like`'s symvers and no modules of
    /// its own. For cases that need a third kernel of one ABI.
    pub fn add_kernel_like(&self, like: &str, release: &str) {
        let source = weak_modules::shell::load::symvers_file(self.path(), like).unwrap();
        let name = source.file_name().unwrap().to_string_lossy().into_owned();
        let suffix = name.rsplit_once('.').map_or("", |(_, suffix)| suffix);
        fs::copy(
            &source,
            self.join(&format!("boot/symvers-{release}.{suffix}")),
        )
        .unwrap();
        fs::create_dir_all(self.join(&format!("lib/modules/{release}"))).unwrap();
    }

    /// Runs a program directly (not through weak-modules), e.g. a test's stand-in dracut.
    pub fn run_program(&self, program: &Path, args: &[&str]) {
        let guard = spawn_guard();
        let child = Command::new(program)
            .args(args)
            .spawn()
            .expect("run program");
        drop(guard);
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}: {:?}",
            program.display(),
            output.status
        );
    }

    /// Puts a symlink at `weak-updates/<below>` of `release`, as another tool or an admin may
    /// have left it.
    pub fn plant_link(&self, release: &str, below: &str, target: &str) {
        let link = self.weak_updates(release).join(below);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, link).unwrap();
    }

    pub fn remove(&self, relative: &str) {
        fs::remove_file(self.join(relative)).unwrap();
    }

    /// Writes an executable script and returns its path.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.join(name);
        write_executable(&path, format!("#!/bin/sh\n{body}\n"));
        path
    }

    /// Modification time and inode of every file and link under lib/modules and boot.
    pub fn snapshot(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        use std::os::unix::fs::MetadataExt;
        let mut state = Vec::new();
        for top in ["lib/modules", "boot"] {
            for entry in walkdir::WalkDir::new(self.join(top)).sort_by_file_name() {
                let entry = entry.unwrap();
                let meta = fs::symlink_metadata(entry.path()).unwrap();
                state.push((
                    entry.path().to_owned(),
                    meta.ino(),
                    meta.modified().unwrap(),
                ));
            }
        }
        state
    }
}

/// The paths whose inode or modification time differ between two snapshots, or that exist in
/// only one of them: a readable failure message instead of two whole snapshots.
pub fn changes(
    before: &[(PathBuf, u64, SystemTime)],
    after: &[(PathBuf, u64, SystemTime)],
) -> Vec<String> {
    let mut changed: Vec<String> = before
        .iter()
        .filter(|entry| !after.contains(entry))
        .chain(after.iter().filter(|entry| !before.contains(entry)))
        .map(|(path, _, _)| path.display().to_string())
        .collect();
    changed.sort();
    changed.dedup();
    changed
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Waits for a child at most `limit`; a child still running then is killed and the test fails.
pub fn finish_within(mut child: std::process::Child, limit: Duration) -> Run {
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let Output {
                status,
                stdout,
                stderr,
            } = child.wait_with_output().unwrap();
            return Run {
                status: status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
            };
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Gives the kernels an initramfs as the stand-in dracut builds it from their tree now, and
/// returns that dracut's path.
pub fn with_images(root: &Root, releases: &[&str]) -> PathBuf {
    let dracut = packing_dracut(root);
    for release in releases {
        let image = root.join(&format!("boot/initramfs-{release}.img"));
        root.run_program(&dracut, &["-f", image.to_str().unwrap(), release]);
    }
    dracut
}

/// A stand-in dracut: packs the kernel's modules (links as links) into a gzip'd cpio image,
/// and logs its arguments to `dracut.log` in the root.
pub fn packing_dracut(root: &Root) -> PathBuf {
    root.script(
        "dracut",
        &format!(
            "echo \"$@\" >> {log}\n{packing}",
            log = root.join("dracut.log").display(),
            packing = packing_dracut_body(root.path())
        ),
    )
}

/// What the stand-in dracut of the root at `base` runs as `dracut -f IMAGE KREL`: the kernel's
/// modules (links as links), sorted, into a gzip'd newc cpio image.
pub fn packing_dracut_body(base: &Path) -> String {
    format!(
        "out=\"$2\" krel=\"$3\"\ncd {} && find lib/modules/\"$krel\" \\( -name '*.ko*' \\) | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -n > \"$out\"",
        base.display()
    )
}

/// Compares `actual` (the root's path shown as `ROOT`) with `tests/golden/<name>`. With
/// `UPDATE_GOLDEN=1` in the environment the file is written instead, for a person to review
/// in the diff; without it a missing or different file fails the test.
pub fn assert_golden(name: &str, root: &Root, actual: &str) {
    let actual = actual.replace(root.path().to_string_lossy().as_ref(), "ROOT");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{}: {err} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(actual, expected, "differs from {}", path.display());
}

/// Kernel `release` under `base` as the decision sees it: its tree, its out-of-tree modules
/// (`extra/`, `updates/`) read and added; those that cannot be read are left out. A run reads
/// them through its snapshot instead, with every other module of the run.
pub fn load_kernel(
    base: &Path,
    release: &str,
) -> Result<weak_modules::shell::load::KernelTree, weak_modules::shell::load::LoadError> {
    use weak_modules::shell::load::{ModuleFile, load_kernel_shallow};
    let (mut tree, out_of_tree) = load_kernel_shallow(base, release, true)?;
    for path in out_of_tree {
        if let Ok(module) = ModuleFile::read(&path) {
            tree.add_out_of_tree(path, &module);
        }
    }
    Ok(tree)
}
