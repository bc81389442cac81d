//! Refreshing a kernel's initramfs after its `weak-updates/` links changed (docs/behaviour.md,
//! "The initramfs"): either the user's `--check-initramfs-prog`, or dracut into a temporary
//! image that replaces the real one only when its kernel modules or modprobe configuration
//! differ.
//!
//! Beyond the bash tool: zstd and plain cpio images are compared too, an image that cannot be
//! decoded is replaced rather than silently kept, a new image that cannot be decoded is never
//! installed, and the temporary image is removed on every path.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::core::cpio::{CpioError, ImageContents, leading_archives_end};
use crate::cores::parallelism;
use crate::shell::bounded::{IMAGE_LIMIT, ReadError, read_regular};
use crate::shell::children::{Output, run_side_by_side};
use crate::shell::decompress::{Compression, DecompressError, compression_of, decompress};

/// How an initramfs is brought up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Regenerator {
    /// The dracut binary (`--dracut`).
    Dracut(PathBuf),
    /// `--check-initramfs-prog`: a program and its arguments, split on whitespace; the kernel
    /// release is appended.
    CheckProgram(String),
}

#[derive(Debug)]
pub enum Outcome {
    /// The kernel has no initramfs; none is ever created.
    NoImage,
    /// dracut built an image with the same modules and modprobe configuration.
    Unchanged,
    Replaced,
    /// The old image could not be decoded, so the new one replaced it.
    ReplacedUndecodable(ImageError),
    CheckProgramRan,
}

/// Why the contents of an image cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Cpio(#[from] CpioError),
    #[error("main archive: {0}")]
    Decompress(#[from] DecompressError),
    /// Offsets count from the start of the decompressed main archive.
    #[error("decompressed main archive: {0}")]
    MainArchive(CpioError),
    #[error("offset {offset}: main archive is neither cpio nor gzip, xz or zstd (starts {magic})")]
    UnknownFormat { offset: usize, magic: String },
    #[error("no cpio archive found")]
    NoArchive,
}

#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("could not find dracut at {}", .0.display())]
    DracutMissing(PathBuf),
    #[error("the initramfs check program is empty")]
    EmptyCheckProgram,
    #[error("{program}: could not run: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("{program} failed for kernel {release} ({status})")]
    Failed {
        program: String,
        release: String,
        status: ExitStatus,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: ReadError },
    #[error("{}: dracut built an unusable image, keeping this one: {source}", image.display())]
    NewImageUnusable { image: PathBuf, source: ImageError },
}

/// `<base>/boot/initramfs-<release>.img`.
pub fn image_path(base: &Path, release: &str) -> PathBuf {
    base.join("boot").join(format!("initramfs-{release}.img"))
}

/// Brings the initramfs of `release` under `base` up to date, its program's messages going
/// straight to ours. Never called under --dry-run.
pub fn refresh(base: &Path, release: &str, how: &Regenerator) -> Result<Outcome, InitramfsError> {
    match prepare(base, release, how)? {
        Prepared::Done(outcome) => Ok(outcome),
        Prepared::Run(mut pending) => {
            let status = pending.command.status();
            pending.complete(status)
        }
    }
}

/// Brings the initramfs of each of `releases` up to date, the programs of different kernels
/// running side by side up to the number of cores (each writes only its own image).
/// `finished(i, result)` is called in the order of `releases`, after kernel `i`'s program
/// ended and its output was written to `output`; one failing stops no other.
pub fn refresh_all(
    base: &Path,
    releases: &[String],
    how: &Regenerator,
    output: Output<'_>,
    mut finished: impl FnMut(usize, Result<Outcome, InitramfsError>),
) {
    let mut in_order = InOrder {
        slots: Vec::new(),
        next: 0,
    };
    let mut pending = Vec::new();
    let mut commands = Vec::new();
    for release in releases {
        match prepare(base, release, how) {
            Ok(Prepared::Run(mut run)) => {
                commands.push(std::mem::replace(&mut run.command, Command::new("")));
                pending.push((in_order.slots.len(), Some(*run)));
                in_order.slots.push(Slot::Waiting);
            }
            Ok(Prepared::Done(outcome)) => in_order.slots.push(Slot::Ready(Ok(outcome))),
            Err(err) => in_order.slots.push(Slot::Ready(Err(err))),
        }
    }
    in_order.report(&mut finished);
    run_side_by_side(commands, parallelism(), output, |job, status| {
        let (index, run) = &mut pending[job];
        let run = run.take().expect("each job ends once");
        in_order.slots[*index] = Slot::Ready(run.complete(status));
        in_order.report(&mut finished);
    });
}

enum Slot {
    Waiting,
    Ready(Result<Outcome, InitramfsError>),
    Reported,
}

/// Results handed on in kernel order as soon as every earlier one is known.
struct InOrder {
    slots: Vec<Slot>,
    next: usize,
}

impl InOrder {
    fn report(&mut self, finished: &mut impl FnMut(usize, Result<Outcome, InitramfsError>)) {
        while let Some(slot) = self.slots.get_mut(self.next) {
            if matches!(slot, Slot::Waiting) {
                return;
            }
            if let Slot::Ready(result) = std::mem::replace(slot, Slot::Reported) {
                finished(self.next, result);
            }
            self.next += 1;
        }
    }
}

/// What refreshing one kernel's image takes.
enum Prepared {
    /// Nothing to run (the kernel has no image).
    Done(Outcome),
    Run(Box<Pending>),
}

/// A program to run for one kernel, and what to do once it ran.
struct Pending {
    command: Command,
    program: String,
    release: String,
    then: AfterRun,
}

enum AfterRun {
    Nothing,
    /// Compare dracut's temporary image with the real one, and replace that if they differ.
    Compare {
        image: PathBuf,
        temp: TempImage,
    },
}

fn prepare(base: &Path, release: &str, how: &Regenerator) -> Result<Prepared, InitramfsError> {
    match how {
        // Like the bash tool, the check program runs for every changed kernel, image or not.
        Regenerator::CheckProgram(command) => {
            let mut words = command.split_whitespace();
            let program = words.next().ok_or(InitramfsError::EmptyCheckProgram)?;
            let mut child = Command::new(program);
            child.args(words).arg(release);
            Ok(Prepared::Run(Box::new(Pending {
                command: child,
                program: program.to_owned(),
                release: release.to_owned(),
                then: AfterRun::Nothing,
            })))
        }
        Regenerator::Dracut(dracut) => {
            let image = image_path(base, release);
            if !image.exists() {
                return Ok(Prepared::Done(Outcome::NoImage));
            }
            ensure_executable(dracut)?;
            let temp = TempImage::beside(&image, release);
            let mut child = Command::new(dracut);
            child.arg("-f").arg(temp.path()).arg(release);
            Ok(Prepared::Run(Box::new(Pending {
                command: child,
                program: dracut.display().to_string(),
                release: release.to_owned(),
                then: AfterRun::Compare { image, temp },
            })))
        }
    }
}

impl Pending {
    fn complete(self, status: io::Result<ExitStatus>) -> Result<Outcome, InitramfsError> {
        let status = status.map_err(|source| InitramfsError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        if !status.success() {
            return Err(InitramfsError::Failed {
                program: self.program,
                release: self.release,
                status,
            });
        }
        match self.then {
            AfterRun::Nothing => Ok(Outcome::CheckProgramRan),
            AfterRun::Compare { image, temp } => replace_if_changed(&image, temp),
        }
    }
}

fn replace_if_changed(image: &Path, temp: TempImage) -> Result<Outcome, InitramfsError> {
    let unusable = |source| InitramfsError::NewImageUnusable {
        image: image.to_owned(),
        source,
    };
    let new = DecodedImage::decode(read(temp.path())?).map_err(unusable)?;
    let new_contents = new.contents().map_err(unusable)?;
    let old = DecodedImage::decode(read(image)?);
    let outcome = compare(old, &new_contents);
    if !matches!(outcome, Outcome::Unchanged) {
        temp.install(image)?;
    }
    Ok(outcome)
}

fn compare(old: Result<DecodedImage, ImageError>, new: &ImageContents<'_>) -> Outcome {
    let contents = old.and_then(|old| old.contents().map(|contents| contents == *new));
    match contents {
        Ok(true) => Outcome::Unchanged,
        Ok(false) => Outcome::Replaced,
        Err(err) => Outcome::ReplacedUndecodable(err),
    }
}

/// The bash tool's test: the path must be an executable file.
fn ensure_executable(program: &Path) -> Result<(), InitramfsError> {
    let executable = fs::metadata(program)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0);
    if executable {
        Ok(())
    } else {
        Err(InitramfsError::DracutMissing(program.to_owned()))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, InitramfsError> {
    read_regular(path, IMAGE_LIMIT).map_err(|source| InitramfsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn io_error(path: &Path, source: io::Error) -> InitramfsError {
    InitramfsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// An image split into its leading uncompressed cpio archives (the early cpio, or the whole
/// image when it is not compressed) and its decompressed main archive.
struct DecodedImage {
    leading: Vec<u8>,
    main: Vec<u8>,
}

impl DecodedImage {
    fn decode(mut image: Vec<u8>) -> Result<Self, ImageError> {
        let split = leading_archives_end(&image)?;
        let main = decompress_main(&image[split..], split)?;
        // Only the early cpio is still needed; free the compressed bytes.
        image.truncate(split);
        image.shrink_to_fit();
        Ok(DecodedImage {
            leading: image,
            main,
        })
    }

    fn contents(&self) -> Result<ImageContents<'_>, ImageError> {
        let mut contents = ImageContents::new();
        contents.add_archives(&self.leading)?;
        contents
            .add_archives(&self.main)
            .map_err(ImageError::MainArchive)?;
        if contents.archive_count() == 0 {
            return Err(ImageError::NoArchive);
        }
        Ok(contents)
    }
}

fn decompress_main(compressed: &[u8], offset: usize) -> Result<Vec<u8>, ImageError> {
    if compressed.is_empty() {
        return Ok(Vec::new());
    }
    if compression_of(compressed) == Compression::None {
        let magic = compressed.iter().take(4).map(|byte| format!("{byte:02x}"));
        return Err(ImageError::UnknownFormat {
            offset,
            magic: magic.collect::<Vec<_>>().join(" "),
        });
    }
    Ok(decompress(compressed)?)
}

/// Removes the temporary images a killed run left beside the kernel's image. Only under the
/// exclusive lock: then no other run of ours is writing one.
pub fn clear_leftover_images(base: &Path, release: &str) -> Vec<PathBuf> {
    let boot = base.join("boot");
    let prefix = format!(".initramfs-{release}.img.weak-modules.");
    let Ok(entries) = fs::read_dir(&boot) else {
        return Vec::new();
    };
    let mut cleared = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if ours && entry.file_type().is_ok_and(|kind| kind.is_file()) {
            let path = entry.path();
            if fs::remove_file(&path).is_ok() {
                cleared.push(path);
            }
        }
    }
    cleared
}

/// dracut's output, in the image's directory so the final rename is atomic. Removed when
/// dropped unless installed.
struct TempImage {
    path: PathBuf,
    installed: bool,
}

impl TempImage {
    fn beside(image: &Path, release: &str) -> Self {
        let name = format!(
            ".initramfs-{release}.img.weak-modules.{}.tmp",
            std::process::id()
        );
        TempImage {
            path: image.with_file_name(name),
            installed: false,
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the new image durable, renames it over `image`, and makes the rename durable.
    fn install(mut self, image: &Path) -> Result<(), InitramfsError> {
        sync(&self.path)?;
        fs::rename(&self.path, image).map_err(|source| io_error(image, source))?;
        self.installed = true;
        match image.parent() {
            Some(directory) => sync(directory),
            None => Ok(()),
        }
    }
}

impl Drop for TempImage {
    fn drop(&mut self) {
        if !self.installed {
            // Absent when dracut failed before writing it; nothing to report then.
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn sync(path: &Path) -> Result<(), InitramfsError> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|source| io_error(path, source))
}
