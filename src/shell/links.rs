//! Reading and changing `weak-updates/`. Every change is atomic: a link is made under a
//! temporary name in its final directory and renamed over the old one, so a reader sees the old
//! link or the new one, never none. Nothing is ever written outside
//! `<base>/lib/modules/<release>/weak-updates/`, and only symlinks are ever removed.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use walkdir::WalkDir;

use crate::core::paths::weak_updates_dir;
use crate::core::plan::Action;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: refusing to write outside {}", path.display(), allowed.display())]
    Outside { path: PathBuf, allowed: PathBuf },
    #[error("{}: not a symlink, left alone", path.display())]
    NotALink { path: PathBuf },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> LinkError + '_ {
    move |source| LinkError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A symlink in a kernel's `weak-updates/`, with its path relative to the base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundLink {
    pub link: String,
    pub target_text: String,
}

/// Every symlink below the kernel's `weak-updates/` (other entries are not ours and are never
/// touched). A missing directory has none.
pub fn read_links(base: &Path, release: &str) -> Result<Vec<FoundLink>, LinkError> {
    let relative_dir = weak_updates_dir(release);
    let dir = base.join(&relative_dir);
    let mut links = Vec::new();
    for entry in WalkDir::new(&dir).sort_by_file_name() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) if err.io_error().map(io::Error::kind) == Some(io::ErrorKind::NotFound) => {
                continue;
            }
            Err(err) => {
                let path = err.path().unwrap_or(&dir).to_owned();
                return Err(LinkError::Io {
                    path,
                    source: err.into(),
                });
            }
        };
        if !entry.path_is_symlink() {
            continue;
        }
        let target = fs::read_link(entry.path()).map_err(io_error(entry.path()))?;
        let below = entry.path().strip_prefix(&dir).unwrap_or(entry.path());
        links.push(FoundLink {
            link: format!("{relative_dir}/{}", below.to_string_lossy()),
            target_text: target.to_string_lossy().into_owned(),
        });
    }
    Ok(links)
}

/// Where applying a plan stopped: the failure, after how many actions were done.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Stopped {
    pub done: usize,
    pub error: LinkError,
}

/// Carries out one kernel's actions in order. Stops at the first failure: what was done stays
/// done (each step is complete in itself), what was not leaves the old state.
pub fn apply(base: &Path, release: &str, actions: &[Action]) -> Result<(), Stopped> {
    let root = base.join(weak_updates_dir(release));
    for (done, action) in actions.iter().enumerate() {
        let step = checked_path(base, &root, action.link_path()).and_then(|path| match action {
            Action::Link { target, .. } => place_link(&root, &path, target),
            Action::Unlink { .. } => remove_link(&root, &path),
        });
        step.map_err(|error| Stopped { done, error })?;
    }
    Ok(())
}

/// Removes every entry of the kernel's `weak-updates/`, keeping the directory (the
/// `--remove-kernel` job). Symlinks and emptied directories go; anything else stays.
pub fn empty_weak_updates(base: &Path, release: &str) -> Result<Vec<String>, LinkError> {
    let links = read_links(base, release)?;
    let root = base.join(weak_updates_dir(release));
    for found in &links {
        let path = checked_path(base, &root, &found.link)?;
        remove_link(&root, &path)?;
    }
    Ok(links.into_iter().map(|found| found.link).collect())
}

/// The absolute path of a base-relative link path, after making sure it stays inside the
/// kernel's `weak-updates/`: no `..`, and no directory on the way is a symlink.
fn checked_path(base: &Path, root: &Path, link: &str) -> Result<PathBuf, LinkError> {
    let path = base.join(link);
    let outside = || LinkError::Outside {
        path: path.clone(),
        allowed: root.to_owned(),
    };
    let below = path.strip_prefix(root).map_err(|_| outside())?;
    if below.as_os_str().is_empty()
        || below
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(outside());
    }
    let mut dir = root.to_owned();
    for component in below.parent().into_iter().flat_map(Path::components) {
        dir.push(component);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(outside()),
            _ => {}
        }
    }
    if fs::symlink_metadata(root).is_ok_and(|meta| meta.file_type().is_symlink()) {
        return Err(outside());
    }
    Ok(path)
}

static TEMP_COUNTER: AtomicU32 = AtomicU32::new(0);

fn place_link(root: &Path, path: &Path, target: &str) -> Result<(), LinkError> {
    let parent = path.parent().unwrap_or(root);
    fs::create_dir_all(parent).map_err(io_error(parent))?;
    if let Ok(meta) = fs::symlink_metadata(path)
        && !meta.file_type().is_symlink()
    {
        return Err(LinkError::NotALink {
            path: path.to_owned(),
        });
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = parent.join(format!(
        ".{name}.weak-modules.{}.{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    symlink(target, &temp).map_err(io_error(&temp))?;
    if let Err(source) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(LinkError::Io {
            path: path.to_owned(),
            source,
        });
    }
    sync_dir(parent)
}

fn remove_link(root: &Path, path: &Path) -> Result<(), LinkError> {
    match fs::symlink_metadata(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(LinkError::Io {
                path: path.to_owned(),
                source,
            });
        }
        Ok(meta) if !meta.file_type().is_symlink() => {
            return Err(LinkError::NotALink {
                path: path.to_owned(),
            });
        }
        Ok(_) => {}
    }
    fs::remove_file(path).map_err(io_error(path))?;
    let parent = path.parent().unwrap_or(root);
    sync_dir(parent)?;
    prune_empty_dirs(root, parent);
    Ok(())
}

/// Removes empty directories from `dir` up to, not including, `root`.
fn prune_empty_dirs(root: &Path, mut dir: &Path) {
    while dir != root && dir.starts_with(root) {
        if fs::remove_dir(dir).is_err() {
            return;
        }
        match dir.parent() {
            Some(parent) => dir = parent,
            None => return,
        }
    }
}

/// Makes a rename or unlink durable: the directory entry itself must reach the disk.
fn sync_dir(dir: &Path) -> Result<(), LinkError> {
    fs::File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error(dir))
}
