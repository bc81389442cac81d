//! Reading a file whose size nobody vouches for: only regular files are opened (a FIFO or a
//! device named like a module must not hang or flood the run), and never more than a cap.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::OFlag;

/// No real module comes near this, compressed or not (the largest debug-info `.ko` of a
/// distribution kernel is tens of MiB).
pub const MODULE_LIMIT: usize = 256 << 20;
/// A symvers of a full distribution kernel is a few MiB.
pub const SYMVERS_LIMIT: usize = 64 << 20;
/// `modules.dep` of a full kernel is well under 1 MiB.
pub const INDEX_LIMIT: usize = 64 << 20;
/// An initramfs image of a big server with firmware is a few hundred MiB.
pub const IMAGE_LIMIT: usize = 2 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    #[error("larger than {} MiB, refused", .0 >> 20)]
    TooLarge(usize),
}

/// The whole content of the regular file at `path` (symlinks followed), if it holds at most
/// `limit` bytes.
pub fn read_regular(path: &Path, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    read_regular_into(path, limit, &mut bytes)?;
    Ok(bytes)
}

/// [`read_regular`] into `bytes`, replacing what it held and reusing its memory: reading
/// thousands of modules into one buffer spares the kernel faulting in fresh pages for each.
pub fn read_regular_into(path: &Path, limit: usize, bytes: &mut Vec<u8>) -> Result<(), ReadError> {
    let (file, meta) = open_regular(path, limit)?;
    read_open_into(file, meta.len(), limit, bytes)
}

/// Opens the regular file at `path` (symlinks followed) for reading, if it holds at most
/// `limit` bytes; returns it with what `fstat` said of it (its size above all). Reads from it
/// must stay capped: the file may grow after this.
pub fn open_regular(path: &Path, limit: usize) -> Result<(File, Metadata), ReadError> {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    let file = File::options()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular(describe(&kind)));
    }
    if !usize::try_from(meta.len()).is_ok_and(|len| len <= limit) {
        return Err(ReadError::TooLarge(limit));
    }
    Ok((file, meta))
}

/// The rest of `file` (from [`open_regular`], which found `declared` bytes) into `bytes`,
/// replacing what it held; refused past `limit` bytes.
pub fn read_open_into(
    file: File,
    declared: u64,
    limit: usize,
    bytes: &mut Vec<u8>,
) -> Result<(), ReadError> {
    bytes.clear();
    bytes.reserve(usize::try_from(declared).unwrap_or(limit).min(limit));
    // The size may grow between fstat and read: the cap holds whatever the file does.
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    file.take(cap).read_to_end(bytes)?;
    if bytes.len() > limit {
        bytes.clear();
        return Err(ReadError::TooLarge(limit));
    }
    Ok(())
}

fn describe(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.ko");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = read_regular(&fifo, 16).unwrap_err();
        assert_eq!(err.to_string(), "not a regular file (a FIFO)");
    }

    #[test]
    fn devices_and_directories_are_refused() {
        let err = read_regular(Path::new("/dev/zero"), 16).unwrap_err();
        assert_eq!(err.to_string(), "not a regular file (a character device)");
        let err = read_regular(Path::new("/"), 16).unwrap_err();
        assert_eq!(err.to_string(), "not a regular file (a directory)");
    }

    #[test]
    fn a_sparse_file_over_the_cap_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.ko");
        File::create(&path).unwrap().set_len(4 << 30).unwrap();
        let err = read_regular(&path, MODULE_LIMIT).unwrap_err();
        assert_eq!(err.to_string(), "larger than 256 MiB, refused");
    }

    #[test]
    fn a_file_within_the_cap_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ko");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_regular(&path, 10).unwrap(), b"0123456789");
        assert!(matches!(
            read_regular(&path, 9),
            Err(ReadError::TooLarge(9))
        ));
    }
}
