//! One lock per base directory for the whole run, so parallel scriptlets take turns. It is held
//! on `<base>/lib/modules` itself: nothing is written to take it, and the kernel drops it when
//! the process dies.

use std::fs::File;
use std::path::{Path, PathBuf};

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

/// Blocks until the lock is ours. `exclusive` for runs that change things, shared for dry runs,
/// which then see a consistent tree.
pub fn lock_base(base: &Path, exclusive: bool) -> Result<Option<RunLock>, LockError> {
    let path = base.join("lib/modules");
    let dir = match File::open(&path) {
        Ok(dir) => dir,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(LockError { path, source }),
    };
    let how = if exclusive {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockShared
    };
    Flock::lock(dir, how)
        .map(|lock| Some(RunLock { _lock: lock }))
        .map_err(|(_, errno)| LockError {
            path,
            source: std::io::Error::from(errno),
        })
}
