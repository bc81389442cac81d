//! Work a kernel is owed that cannot be derived from its tree: written into its
//! `weak-updates/` before its links change, cleared piece by piece as depmod and the initramfs
//! succeed. A run killed at any point, or a depmod or dracut that failed, leaves the record,
//! and the next run on this base finishes the work.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::core::paths::weak_updates_dir;
use crate::shell::bounded::read_regular;
use crate::shell::links::{OWED_FILE, sync_dir};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owed {
    pub depmod: bool,
    pub initramfs: bool,
}

impl Owed {
    pub const ALL: Owed = Owed {
        depmod: true,
        initramfs: true,
    };

    pub fn is_nothing(self) -> bool {
        !self.depmod && !self.initramfs
    }

    pub fn and(self, other: Owed) -> Owed {
        Owed {
            depmod: self.depmod || other.depmod,
            initramfs: self.initramfs || other.initramfs,
        }
    }

    /// "depmod and initramfs", for messages.
    pub fn describe(self) -> String {
        let mut parts = Vec::new();
        if self.depmod {
            parts.push("depmod");
        }
        if self.initramfs {
            parts.push("the initramfs");
        }
        parts.join(" and ")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{}: cannot record the work owed to kernel {release}: {source}", path.display())]
pub struct OwedError {
    pub path: PathBuf,
    pub release: String,
    pub source: io::Error,
}

fn owed_path(base: &Path, release: &str) -> PathBuf {
    base.join(weak_updates_dir(release)).join(OWED_FILE)
}

/// What the record says. A record that cannot be read is taken as owing everything: doing the
/// work again is harmless, skipping it is not.
pub fn read_owed(base: &Path, release: &str) -> Owed {
    let path = owed_path(base, release);
    // Only a record of ours counts: no file, or something else at its name (a kernel whose
    // weak-updates/ is broken is reported where it is planned), records nothing.
    if !fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_file()) {
        return Owed::default();
    }
    match read_regular(&path, 4096) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            Owed {
                depmod: text.lines().any(|line| line == "depmod"),
                initramfs: text.lines().any(|line| line == "initramfs"),
            }
        }
        Err(_) => Owed::ALL,
    }
}

/// Makes the record say `owed` (removing it when nothing is owed), durably: written under a
/// temporary name, synced, renamed into place, and the directory synced.
pub fn record_owed(base: &Path, release: &str, owed: Owed) -> Result<(), OwedError> {
    let path = owed_path(base, release);
    let dir = base.join(weak_updates_dir(release));
    let fail = |path: &Path| {
        let path = path.to_owned();
        move |source| OwedError {
            path,
            release: release.to_owned(),
            source,
        }
    };
    if owed.is_nothing() {
        match fs::remove_file(&path) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            result => result.map_err(fail(&path))?,
        }
        return sync_dir(&dir).map_err(fail(&dir));
    }
    fs::create_dir_all(&dir).map_err(fail(&dir))?;
    let temp = dir.join(format!("{OWED_FILE}.weak-modules.{}.0", std::process::id()));
    let mut text = String::new();
    if owed.depmod {
        text.push_str("depmod\n");
    }
    if owed.initramfs {
        text.push_str("initramfs\n");
    }
    let written = fs::File::create(&temp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    if let Err(source) = written.and_then(|()| fs::rename(&temp, &path)) {
        let _ = fs::remove_file(&temp);
        return Err(fail(&path)(source));
    }
    sync_dir(&dir).map_err(fail(&dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_disappears_when_nothing_is_owed() {
        let base = tempfile::tempdir().unwrap();
        assert_eq!(read_owed(base.path(), "K"), Owed::default());
        record_owed(base.path(), "K", Owed::ALL).unwrap();
        assert_eq!(read_owed(base.path(), "K"), Owed::ALL);
        let initramfs_only = Owed {
            depmod: false,
            initramfs: true,
        };
        record_owed(base.path(), "K", initramfs_only).unwrap();
        assert_eq!(read_owed(base.path(), "K"), initramfs_only);
        record_owed(base.path(), "K", Owed::default()).unwrap();
        assert!(!owed_path(base.path(), "K").exists());
        let entries: Vec<_> = fs::read_dir(base.path().join("lib/modules/K/weak-updates"))
            .unwrap()
            .collect();
        assert!(entries.is_empty(), "no temporary file left: {entries:?}");
    }
}
