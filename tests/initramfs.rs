//! `shell::initramfs::refresh` against images built here (gzip, xz, zstd, plain cpio, with and
//! without an early cpio) and a fake dracut script that copies a prepared image.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{Root, spawn_guard};
use weak_modules::shell::initramfs::{InitramfsError, Outcome, Regenerator, refresh};

// Shared with the parser's unit tests; this file uses only part of it.
#[allow(dead_code)]
#[path = "common/cpio_writer.rs"]
mod cpio_writer;

use cpio_writer::ArchiveWriter;

const RELEASE: &str = "6.1.0-18-amd64";

#[derive(Clone, Copy, Debug)]
enum Packing {
    Plain,
    Gzip,
    Xz,
    Zstd,
}

fn pack(packing: Packing, data: &[u8]) -> Vec<u8> {
    match packing {
        Packing::Plain => data.to_vec(),
        Packing::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(data).unwrap();
            encoder.finish().unwrap()
        }
        Packing::Xz => {
            let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
            encoder.write_all(data).unwrap();
            encoder.finish().unwrap()
        }
        Packing::Zstd => zstd::encode_all(data, 3).unwrap(),
    }
}

/// The shape dracut gives an image: an optional uncompressed early cpio with microcode, zero
/// padding to 512 bytes, then the packed main archive.
fn image(packing: Packing, early_cpio: bool, main_archive: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    if early_cpio {
        bytes = ArchiveWriter::newc()
            .directory("kernel")
            .file("kernel/x86/microcode/GenuineIntel.bin", b"microcode")
            .finish();
        bytes.resize(bytes.len().next_multiple_of(512), 0);
    }
    bytes.extend(pack(packing, main_archive));
    bytes
}

fn modules_dir(name: &str) -> String {
    format!("usr/lib/modules/{RELEASE}/{name}")
}

/// A main archive with two modules, one conf file, and files that do not matter.
fn main_archive(extra_module: Option<&str>, conf: &[u8], shell: &[u8]) -> Vec<u8> {
    let mut writer = ArchiveWriter::newc()
        .directory(".")
        .file("usr/bin/sh", shell)
        .file(&modules_dir("kernel/fs/ext4.ko.xz"), b"ext4 module")
        .symlink(&modules_dir("weak-updates/d.ko"), "../extra/d.ko")
        .file(&modules_dir("extra/d.ko"), b"out-of-tree module")
        .file("etc/modprobe.d/d.conf", conf);
    if let Some(name) = extra_module {
        writer = writer.file(&modules_dir(name), b"another module");
    }
    writer.finish()
}

fn base_archive() -> Vec<u8> {
    main_archive(None, b"options d x=1\n", b"shell v1")
}

/// A root with an empty boot/ and a scratch/ for scripts and prepared images.
fn new_root() -> Root {
    let root = Root::empty();
    fs::create_dir_all(root.boot()).unwrap();
    fs::create_dir_all(root.scratch()).unwrap();
    root
}

/// What these tests need of the shared root: the image and dracut of one kernel.
trait Images {
    fn boot(&self) -> PathBuf;
    fn scratch(&self) -> PathBuf;
    fn image_path(&self) -> PathBuf;
    fn install_image(&self, bytes: &[u8]);
    fn recording_script(&self, name: &str, body: &str) -> PathBuf;
    fn dracut_writing(&self, new_image: &[u8], status: i32) -> Regenerator;
    fn argv_path(&self) -> PathBuf;
    fn recorded_argv(&self) -> Option<String>;
    fn boot_entries(&self) -> Vec<String>;
    fn refresh(&self, how: &Regenerator) -> Result<Outcome, InitramfsError>;
    fn assert_only_image_left(&self);
}

impl Images for Root {
    fn boot(&self) -> PathBuf {
        self.join("boot")
    }

    fn scratch(&self) -> PathBuf {
        self.join("scratch")
    }

    fn image_path(&self) -> PathBuf {
        self.boot().join(format!("initramfs-{RELEASE}.img"))
    }

    fn install_image(&self, bytes: &[u8]) {
        fs::write(self.image_path(), bytes).unwrap();
    }

    /// A script in the scratch directory that records its arguments, then runs `body`.
    fn recording_script(&self, name: &str, body: &str) -> PathBuf {
        let argv = self.argv_path();
        self.script(
            &format!("scratch/{name}"),
            &format!("echo \"$@\" > '{}'\n{body}", argv.display()),
        )
    }

    /// A dracut that writes `new_image` to its `-f` argument and exits with `status`.
    fn dracut_writing(&self, new_image: &[u8], status: i32) -> Regenerator {
        let prepared = self.scratch().join("prepared.img");
        fs::write(&prepared, new_image).unwrap();
        let body = format!("cp '{}' \"$2\"\nexit {status}", prepared.display());
        Regenerator::Dracut(self.recording_script("dracut", &body))
    }

    fn argv_path(&self) -> PathBuf {
        self.scratch().join("argv")
    }

    fn recorded_argv(&self) -> Option<String> {
        let text = fs::read_to_string(self.argv_path()).ok()?;
        Some(text.trim_end().to_owned())
    }

    fn boot_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.boot())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Runs dracut or the check program in this process: under the shared guard, so that no
    /// script another test is writing is open in the child (see `spawn_guard`).
    fn refresh(&self, how: &Regenerator) -> Result<Outcome, InitramfsError> {
        let _turn = spawn_guard();
        refresh(self.path(), RELEASE, how)
    }

    fn assert_only_image_left(&self) {
        assert_eq!(self.boot_entries(), [format!("initramfs-{RELEASE}.img")]);
    }
}

/// Identity and content of the installed image, to show it was not touched.
fn fingerprint(path: &Path) -> (u64, i64, i64, Vec<u8>) {
    let meta = fs::metadata(path).unwrap();
    (
        meta.ino(),
        meta.mtime(),
        meta.mtime_nsec(),
        fs::read(path).unwrap(),
    )
}

#[test]
fn without_an_image_dracut_is_not_run() {
    let root = new_root();
    let dracut = root.dracut_writing(&image(Packing::Gzip, false, &base_archive()), 0);
    let outcome = root.refresh(&dracut).unwrap();
    assert!(matches!(outcome, Outcome::NoImage), "{outcome:?}");
    assert_eq!(root.recorded_argv(), None);
    assert!(root.boot_entries().is_empty());
}

#[test]
fn without_an_image_a_missing_dracut_is_fine() {
    let root = new_root();
    let dracut = Regenerator::Dracut(root.scratch().join("no-such-dracut"));
    assert!(matches!(root.refresh(&dracut), Ok(Outcome::NoImage)));
}

#[test]
fn same_modules_leave_the_image_untouched() {
    let root = new_root();
    root.install_image(&image(Packing::Gzip, true, &base_archive()));
    let before = fingerprint(&root.image_path());
    // Other packing, no early cpio, a different non-module file: still the same modules.
    let rebuilt = main_archive(None, b"options d x=1\n", b"shell v2");
    let dracut = root.dracut_writing(&image(Packing::Xz, false, &rebuilt), 0);

    let outcome = root.refresh(&dracut).unwrap();

    assert!(matches!(outcome, Outcome::Unchanged), "{outcome:?}");
    assert_eq!(fingerprint(&root.image_path()), before);
    root.assert_only_image_left();
    let temp = root.boot().join(format!(
        ".initramfs-{RELEASE}.img.weak-modules.{}.tmp",
        std::process::id()
    ));
    assert_eq!(
        root.recorded_argv().unwrap(),
        format!("-f {} {RELEASE}", temp.display())
    );
}

#[test]
fn an_added_module_replaces_the_image() {
    let root = new_root();
    root.install_image(&image(Packing::Gzip, true, &base_archive()));
    let rebuilt = main_archive(Some("weak-updates/e.ko"), b"options d x=1\n", b"shell v1");
    let new_image = image(Packing::Gzip, true, &rebuilt);
    let dracut = root.dracut_writing(&new_image, 0);

    let outcome = root.refresh(&dracut).unwrap();

    assert!(matches!(outcome, Outcome::Replaced), "{outcome:?}");
    assert_eq!(fs::read(root.image_path()).unwrap(), new_image);
    root.assert_only_image_left();
}

/// dracut-cpio (`--enhanced-cpio`) pads entry names with NULs so that file data is aligned;
/// such an image must not look module-free, or a needed new image would be thrown away.
#[test]
fn an_image_with_nul_padded_names_is_compared_by_its_modules() {
    let root = new_root();
    let padded = |extra_module: Option<&str>| {
        let mut writer = ArchiveWriter::newc()
            .data_aligned_to(4096)
            .file(&modules_dir("kernel/fs/ext4.ko.xz"), b"ext4 module")
            .file(&modules_dir("extra/d.ko"), b"out-of-tree module");
        if let Some(name) = extra_module {
            writer = writer.file(&modules_dir(name), b"another module");
        }
        image(Packing::Zstd, true, &writer.finish())
    };
    root.install_image(&padded(None));
    let new_image = padded(Some("weak-updates/e.ko"));
    let dracut = root.dracut_writing(&new_image, 0);

    let outcome = root.refresh(&dracut).unwrap();

    assert!(matches!(outcome, Outcome::Replaced), "{outcome:?}");
    assert_eq!(fs::read(root.image_path()).unwrap(), new_image);
    let unchanged = root.dracut_writing(&padded(Some("weak-updates/e.ko")), 0);
    assert!(matches!(root.refresh(&unchanged), Ok(Outcome::Unchanged)));
    root.assert_only_image_left();
}

#[test]
fn a_changed_module_file_replaces_the_image() {
    let root = new_root();
    root.install_image(&image(Packing::Xz, false, &base_archive()));
    let rebuilt = ArchiveWriter::newc()
        .file(&modules_dir("kernel/fs/ext4.ko.xz"), b"ext4 module")
        .symlink(&modules_dir("weak-updates/d.ko"), "../extra/d.ko")
        .file(&modules_dir("extra/d.ko"), b"out-of-tree module, rebuilt")
        .file("etc/modprobe.d/d.conf", b"options d x=1\n")
        .finish();
    let new_image = image(Packing::Xz, false, &rebuilt);
    let dracut = root.dracut_writing(&new_image, 0);

    assert!(matches!(root.refresh(&dracut), Ok(Outcome::Replaced)));
    assert_eq!(fs::read(root.image_path()).unwrap(), new_image);
}

#[test]
fn a_changed_modprobe_conf_replaces_the_image() {
    let root = new_root();
    root.install_image(&image(Packing::Gzip, false, &base_archive()));
    let rebuilt = main_archive(None, b"options d x=2\n", b"shell v1");
    let new_image = image(Packing::Gzip, false, &rebuilt);
    let dracut = root.dracut_writing(&new_image, 0);

    assert!(matches!(root.refresh(&dracut), Ok(Outcome::Replaced)));
    assert_eq!(fs::read(root.image_path()).unwrap(), new_image);
    root.assert_only_image_left();
}

#[test]
fn zstd_images_are_compared() {
    let root = new_root();
    root.install_image(&image(Packing::Zstd, true, &base_archive()));
    let before = fingerprint(&root.image_path());
    let same = root.dracut_writing(&image(Packing::Zstd, true, &base_archive()), 0);
    assert!(matches!(root.refresh(&same), Ok(Outcome::Unchanged)));
    assert_eq!(fingerprint(&root.image_path()), before);

    let rebuilt = main_archive(Some("extra/e.ko.zst"), b"options d x=1\n", b"shell v1");
    let new_image = image(Packing::Zstd, true, &rebuilt);
    let different = root.dracut_writing(&new_image, 0);
    assert!(matches!(root.refresh(&different), Ok(Outcome::Replaced)));
    assert_eq!(fs::read(root.image_path()).unwrap(), new_image);
    root.assert_only_image_left();
}

#[test]
fn plain_cpio_images_are_compared() {
    let root = new_root();
    root.install_image(&image(Packing::Plain, true, &base_archive()));
    let before = fingerprint(&root.image_path());
    let same = root.dracut_writing(&image(Packing::Plain, false, &base_archive()), 0);
    assert!(matches!(root.refresh(&same), Ok(Outcome::Unchanged)));
    assert_eq!(fingerprint(&root.image_path()), before);

    let rebuilt = main_archive(Some("extra/e.ko"), b"options d x=1\n", b"shell v1");
    let different = root.dracut_writing(&image(Packing::Plain, true, &rebuilt), 0);
    assert!(matches!(root.refresh(&different), Ok(Outcome::Replaced)));
}

#[test]
fn a_failing_dracut_leaves_the_image_and_no_temp_file() {
    let root = new_root();
    root.install_image(&image(Packing::Gzip, true, &base_archive()));
    let before = fingerprint(&root.image_path());
    let rebuilt = main_archive(Some("extra/e.ko"), b"", b"");
    // Writes a complete, different image before failing: it must still not be installed.
    let dracut = root.dracut_writing(&image(Packing::Gzip, false, &rebuilt), 1);

    let err = root.refresh(&dracut).unwrap_err();

    assert!(
        matches!(&err, InitramfsError::Failed { release, .. } if release == RELEASE),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{} failed for kernel {RELEASE} (exit status: 1)",
            root.scratch().join("dracut").display()
        )
    );
    assert_eq!(fingerprint(&root.image_path()), before);
    root.assert_only_image_left();
}

#[test]
fn an_undecodable_new_image_is_never_installed() {
    let root = new_root();
    root.install_image(&image(Packing::Gzip, true, &base_archive()));
    let before = fingerprint(&root.image_path());
    let mut truncated = image(Packing::Zstd, true, &base_archive());
    truncated.truncate(truncated.len() - 10);
    for garbage in [&b"this is not an initramfs"[..], b"", &truncated] {
        let dracut = root.dracut_writing(garbage, 0);
        let err = root.refresh(&dracut).unwrap_err();
        assert!(
            matches!(err, InitramfsError::NewImageUnusable { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(&root.image_path().display().to_string()),
            "{err}"
        );
        assert_eq!(fingerprint(&root.image_path()), before);
        root.assert_only_image_left();
    }
}

#[test]
fn an_undecodable_old_image_is_replaced() {
    let root = new_root();
    // lz4 legacy magic: a format this tool does not read.
    root.install_image(b"\x02\x21\x4c\x18 not readable");
    let new_image = image(Packing::Gzip, true, &base_archive());
    let dracut = root.dracut_writing(&new_image, 0);

    let outcome = root.refresh(&dracut).unwrap();

    let Outcome::ReplacedUndecodable(reason) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        reason.to_string(),
        "offset 0: main archive is neither cpio nor gzip, xz or zstd (starts 02 21 4c 18)"
    );
    assert_eq!(fs::read(root.image_path()).unwrap(), new_image);
    root.assert_only_image_left();
}

#[test]
fn a_missing_dracut_is_a_clear_error() {
    let root = new_root();
    root.install_image(&image(Packing::Gzip, false, &base_archive()));
    let missing = root.scratch().join("no-such-dracut");
    let err = root
        .refresh(&Regenerator::Dracut(missing.clone()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("could not find dracut at {}", missing.display())
    );

    let not_executable = root.scratch().join("dracut.txt");
    fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    let err = root
        .refresh(&Regenerator::Dracut(not_executable))
        .unwrap_err();
    assert!(matches!(err, InitramfsError::DracutMissing(_)), "{err:?}");
    root.assert_only_image_left();
}

#[test]
fn the_check_program_gets_its_arguments_and_the_release() {
    let root = new_root();
    let program = root.recording_script("check", "exit 0");
    let how = Regenerator::CheckProgram(format!("{}  --x   -y", program.display()));

    // Runs whether or not the kernel has an image, as in the bash tool.
    let outcome = root.refresh(&how).unwrap();

    assert!(matches!(outcome, Outcome::CheckProgramRan), "{outcome:?}");
    assert_eq!(root.recorded_argv().unwrap(), format!("--x -y {RELEASE}"));
    assert!(root.boot_entries().is_empty());
}

#[test]
fn a_failing_check_program_is_an_error() {
    let root = new_root();
    let program = root.recording_script("check", "exit 3");
    let how = Regenerator::CheckProgram(program.display().to_string());

    let err = root.refresh(&how).unwrap_err();

    assert_eq!(
        err.to_string(),
        format!(
            "{} failed for kernel {RELEASE} (exit status: 3)",
            program.display()
        )
    );
}

#[test]
fn an_empty_or_missing_check_program_is_an_error() {
    let root = new_root();
    let empty = root.refresh(&Regenerator::CheckProgram("  ".into()));
    assert!(matches!(empty, Err(InitramfsError::EmptyCheckProgram)));
    let missing = root.scratch().join("no-such-check");
    let how = Regenerator::CheckProgram(missing.display().to_string());
    let err = root.refresh(&how).unwrap_err();
    assert!(matches!(err, InitramfsError::Spawn { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: could not run", missing.display())),
        "{err}"
    );
}
