//! One lock per base directory for the whole run, so parallel scriptlets take turns. It is held
//! on `<base>/lib/modules` itself: nothing is written to take it, and the kernel drops it when
//! the process dies.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, thiserror::Error)]
#[error("{}: cannot lock: {source}", path.display())]
pub struct LockError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Held until dropped.
pub struct RunLock {
    _lock: Flock<File>,
}

/// How a run that changes things waits for another one.
pub enum Waiting {
    /// The lock was free.
    No,
    /// Another process holds it (its pid when `/proc/locks` tells).
    For(Option<u32>),
}

/// The exclusive lock of a run that changes things. Blocks until it is ours; `on_wait` is
/// told once, before blocking, who holds it.
pub fn lock_exclusive(
    base: &Path,
    on_wait: impl FnOnce(&Path, Option<u32>),
) -> Result<Option<RunLock>, LockError> {
    let path = base.join("lib/modules");
    let Some(dir) = open_dir(&path)? else {
        return Ok(None);
    };
    let dir = match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => return Ok(Some(RunLock { _lock: lock })),
        Err((dir, Errno::EWOULDBLOCK)) => dir,
        Err((_, errno)) => return Err(lock_error(path, errno)),
    };
    on_wait(&path, holder_of(&dir));
    Flock::lock(dir, FlockArg::LockExclusive)
        .map(|lock| Some(RunLock { _lock: lock }))
        .map_err(|(_, errno)| lock_error(path, errno))
}

/// A shared lock for a dry run, taken only when free: a dry run never waits, and when a run
/// is changing the tree it reads each link as it is then (every link is always whole).
pub fn lock_shared_if_free(
    base: &Path,
    on_busy: impl FnOnce(&Path, Option<u32>),
) -> Result<Option<RunLock>, LockError> {
    let path = base.join("lib/modules");
    let Some(dir) = open_dir(&path)? else {
        return Ok(None);
    };
    match Flock::lock(dir, FlockArg::LockSharedNonblock) {
        Ok(lock) => Ok(Some(RunLock { _lock: lock })),
        Err((dir, Errno::EWOULDBLOCK)) => {
            on_busy(&path, holder_of(&dir));
            Ok(None)
        }
        Err((_, errno)) => Err(lock_error(path, errno)),
    }
}

fn open_dir(path: &Path) -> Result<Option<File>, LockError> {
    match File::open(path) {
        Ok(dir) => Ok(Some(dir)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LockError {
            path: path.to_owned(),
            source,
        }),
    }
}

fn lock_error(path: PathBuf, errno: Errno) -> LockError {
    LockError {
        path,
        source: std::io::Error::from(errno),
    }
}

/// The pid holding a flock on `file`, from `/proc/locks` (`N: FLOCK ADVISORY WRITE pid
/// MAJ:MIN:INODE 0 EOF`).
fn holder_of(file: &File) -> Option<u32> {
    let meta = file.metadata().ok()?;
    let device = format!(
        "{:02x}:{:02x}:{}",
        nix::sys::stat::major(meta.dev()),
        nix::sys::stat::minor(meta.dev()),
        meta.ino()
    );
    let table = crate::shell::bounded::read_regular(Path::new("/proc/locks"), 16 << 20).ok();
    // /proc files report a size of 0; read_regular still reads them to the end, within the cap.
    let table = String::from_utf8(table?).ok()?;
    holder_in(&table, &device)
}

fn holder_in(table: &str, device: &str) -> Option<u32> {
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let at = fields.iter().position(|field| *field == "FLOCK")?;
        // A waiting request is listed with "->" before its kind; only a holder counts.
        if fields.get(at - 1).is_some_and(|field| *field == "->") {
            return None;
        }
        (fields.get(at + 4) == Some(&device))
            .then(|| fields.get(at + 3)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_read_from_proc_locks() {
        let table = "1: POSIX  ADVISORY  WRITE 77 fd:01:42 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 4321 fd:01:1234 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 999 fd:01:1234 0 EOF\n";
        assert_eq!(holder_in(table, "fd:01:1234"), Some(4321));
        assert_eq!(holder_in(table, "fd:01:42"), None);
    }

    #[test]
    fn a_held_lock_names_its_holder_to_the_waiter() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(base.path().join("lib/modules")).unwrap();
        let held = lock_exclusive(base.path(), |_, _| panic!("free")).unwrap();
        assert!(held.is_some());
        let mut told = None;
        let dry = lock_shared_if_free(base.path(), |_, pid| told = Some(pid)).unwrap();
        assert!(dry.is_none());
        assert_eq!(told, Some(Some(std::process::id())));
    }
}
