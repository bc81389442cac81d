//! Reading and changing `weak-updates/`. Every change is atomic: a new link is made in place
//! by one `symlink`; a link replaced is made under a temporary name in its final directory and
//! renamed over the old one, so a reader sees the old link or the new one, never none. Nothing
//! is ever written outside `<base>/lib/modules/<release>/weak-updates/`, and only symlinks are
//! ever removed.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use walkdir::WalkDir;

use crate::core::paths::weak_updates_dir;
use crate::core::plan::{Action, Occupied, UnlinkReason};

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

/// What a kernel's `weak-updates/` holds. Only symlinks are links; everything else is left
/// as it is, except the temporary names of ours that a killed run left behind.
#[derive(Debug, Default)]
pub struct WeakUpdates {
    pub links: Vec<FoundLink>,
    pub occupied: Occupied,
    /// Temporary names of ours (base-relative), to be cleared under the lock.
    pub leftovers: Vec<String>,
    /// Entries whose names are not UTF-8: no link of ours has such a name.
    pub foreign_names: Vec<PathBuf>,
}

/// The name of the file that records work a run owes a kernel (see `shell::owed`).
pub const OWED_FILE: &str = ".weak-modules-owed";

/// `.<name>.weak-modules.<pid>.<n>`: how [`make_link`] and the owed-work record name what
/// they are about to rename into place.
pub fn is_temporary_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let mut fields = rest.rsplitn(3, '.');
    let numbered = |field: Option<&str>| {
        field.is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
    };
    numbered(fields.next())
        && numbered(fields.next())
        && fields.next().is_some_and(|stem| {
            stem.len() > ".weak-modules".len() && stem.ends_with(".weak-modules")
        })
}

/// Reads the kernel's `weak-updates/`. A missing directory is empty; one that is a symlink
/// is refused, since links placed through it would land outside the kernel.
pub fn read_weak_updates(base: &Path, release: &str) -> Result<WeakUpdates, LinkError> {
    let relative_dir = weak_updates_dir(release);
    let dir = base.join(&relative_dir);
    match fs::symlink_metadata(&dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(WeakUpdates::default()),
        Err(source) => return Err(LinkError::Io { path: dir, source }),
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(LinkError::Outside {
                allowed: base.join("lib/modules").join(release),
                path: dir,
            });
        }
        Ok(_) => {}
    }
    let mut found = WeakUpdates::default();
    for entry in WalkDir::new(&dir).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|err| {
            let path = err.path().unwrap_or(&dir).to_owned();
            LinkError::Io {
                path,
                source: err.into(),
            }
        })?;
        let below = entry.path().strip_prefix(&dir).unwrap_or(entry.path());
        let Some(below) = below.to_str() else {
            found.foreign_names.push(entry.path().to_owned());
            continue;
        };
        let relative = format!("{relative_dir}/{below}");
        let name = entry.file_name().to_str().unwrap_or_default();
        if is_temporary_name(name) {
            found.leftovers.push(relative);
        } else if entry.path_is_symlink() {
            let target = fs::read_link(entry.path()).map_err(io_error(entry.path()))?;
            found.links.push(FoundLink {
                link: relative,
                target_text: target.to_string_lossy().into_owned(),
            });
        } else if entry.file_type().is_dir() {
            found.occupied.dirs.insert(relative);
        } else if !(entry.depth() == 1 && name == OWED_FILE) {
            found.occupied.files.insert(relative);
        }
    }
    Ok(found)
}

/// Removes temporary names a killed run left in `weak-updates/`; only under the exclusive
/// lock, when no other run of ours can be about to rename one.
pub fn clear_leftovers(base: &Path, leftovers: &[String]) -> Result<(), LinkError> {
    // Each directory made durable once, after all of its leftovers are gone.
    let mut touched = std::collections::BTreeSet::new();
    for leftover in leftovers {
        let path = base.join(leftover);
        match fs::remove_file(&path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err(LinkError::Io { path, source: err });
            }
            _ => {}
        }
        if let Some(parent) = path.parent() {
            touched.insert(parent.to_owned());
        }
    }
    for dir in touched {
        sync_dir(&dir).map_err(io_error(&dir))?;
    }
    Ok(())
}

/// An action that could not be carried out.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Failed {
    pub action: usize,
    pub error: LinkError,
}

/// Carries out one kernel's actions, each on its own: a failure costs that action only. The
/// links come first, in order; then the removals, in order. A removal that would leave the
/// kernel without a module it has (the link of the build superseding it failed) is not done.
pub fn apply(base: &Path, release: &str, actions: &[Action]) -> Vec<Failed> {
    let root = base.join(weak_updates_dir(release));
    let mut failed: Vec<Failed> = Vec::new();
    let mut changed = ChangedDirs::default();
    let mut known = KnownDirs::default();
    // Every link's path is checked and its directory made here, in order; the links
    // themselves are then made on all cores (see `place_links`).
    let mut placing: Vec<Placing> = Vec::new();
    for (index, action) in actions.iter().enumerate() {
        let Action::Link { target, .. } = action else {
            continue;
        };
        let ready = checked_path(base, &root, action.link_path(), &mut known)
            .and_then(|path| make_parent(&root, &path, &mut known).map(|()| path));
        match ready {
            Ok(path) => placing.push(Placing {
                action: index,
                path,
                target,
            }),
            Err(error) => failed.push(Failed {
                action: index,
                error,
            }),
        }
    }
    for (placed, result) in placing.iter().zip(place_links(&placing)) {
        match result {
            Ok(()) => changed.add(&root, placed.path.parent().unwrap_or(&root), placed.action),
            Err(error) => failed.push(Failed {
                action: placed.action,
                error,
            }),
        }
    }
    let unplaced: Vec<usize> = failed
        .iter()
        .filter_map(|failure| match actions[failure.action] {
            Action::Link { build, .. } => Some(build),
            Action::Unlink { .. } => None,
        })
        .collect();
    for (index, action) in actions.iter().enumerate() {
        let Action::Unlink { why, .. } = action else {
            continue;
        };
        if let UnlinkReason::Superseded { by } | UnlinkReason::Duplicate { by } = why
            && unplaced.contains(by)
        {
            continue;
        }
        let step = checked_path(base, &root, action.link_path(), &mut known)
            .and_then(|path| remove_link(&root, &path, &mut known).map(|()| path));
        match step {
            Ok(path) => changed.add(&root, path.parent().unwrap_or(&root), index),
            Err(error) => failed.push(Failed {
                action: index,
                error,
            }),
        }
    }
    failed.sort_by_key(|failure| failure.action);
    for (action, error) in changed.sync() {
        failed.push(Failed { action, error });
    }
    failed
}

/// A link about to be made: its path checked, its directory there.
struct Placing<'a> {
    action: usize,
    path: PathBuf,
    target: &'a str,
}

/// Makes every link, directory by directory: creating entries in one directory takes its lock
/// in turn, in different directories it does not, so the directories are shared out among
/// the cores. The share of each thread is fixed by the directories' order, the calling
/// thread's included, so that a run always makes the same links on the same thread.
fn place_links(placing: &[Placing]) -> Vec<Result<(), LinkError>> {
    let mut by_dir: std::collections::BTreeMap<&Path, Vec<usize>> = Default::default();
    for (item, placed) in placing.iter().enumerate() {
        by_dir
            .entry(placed.path.parent().unwrap_or(&placed.path))
            .or_default()
            .push(item);
    }
    let dirs: Vec<Vec<usize>> = by_dir.into_values().collect();
    let threads = crate::cores::parallelism().min(dirs.len()).max(1);
    let share = |thread: usize| -> Vec<(usize, Result<(), LinkError>)> {
        dirs.iter()
            .skip(thread)
            .step_by(threads)
            .flatten()
            .map(|&item| (item, make_link(&placing[item].path, placing[item].target)))
            .collect()
    };
    let mut results = crate::cores::on_threads(threads, share);
    results.sort_by_key(|(item, _)| *item);
    results.into_iter().map(|(_, result)| result).collect()
}

/// Removes these links (base-relative) of the kernel's `weak-updates/`, found there under the
/// lock, keeping the directory (the `--remove-kernel` job). Directories they leave empty go
/// too; anything else stays.
pub fn empty_weak_updates(base: &Path, release: &str, links: &[String]) -> Result<(), LinkError> {
    let root = base.join(weak_updates_dir(release));
    let mut changed = ChangedDirs::default();
    let mut known = KnownDirs::default();
    for (index, link) in links.iter().enumerate() {
        let path = checked_path(base, &root, link, &mut known)?;
        remove_link(&root, &path, &mut known)?;
        changed.add(&root, path.parent().unwrap_or(&root), index);
    }
    match changed.sync().into_iter().next() {
        Some((_, error)) => Err(error),
        None => Ok(()),
    }
}

/// The directories a batch of link changes touched, each made durable once at the end
/// rather than once per change (a kernel may get hundreds of links in one run). Until then a
/// crash may lose some of the changes, never the record of owed work written before them,
/// so the next run plans them again.
#[derive(Debug, Default)]
struct ChangedDirs {
    /// Directory -> the last change made in or below it.
    dirs: std::collections::BTreeMap<PathBuf, usize>,
}

impl ChangedDirs {
    /// A change in `dir`, below the `weak-updates/` `root`. Its parents up to the root are
    /// synced too: a directory made or pruned on the way changed their entries.
    fn add(&mut self, root: &Path, dir: &Path, change: usize) {
        let mut dir = dir;
        // A directory already in the map has its parents there too.
        while self.dirs.insert(dir.to_owned(), change).is_none() && dir != root {
            match dir.parent() {
                Some(parent) if parent.starts_with(root) => dir = parent,
                _ => break,
            }
        }
    }

    /// Syncs every directory touched that still exists; the failures, with the last change
    /// made in each.
    fn sync(self) -> Vec<(usize, LinkError)> {
        self.dirs
            .into_iter()
            .filter_map(|(dir, change)| {
                sync_dir(&dir)
                    .map_err(|source| (change, LinkError::Io { path: dir, source }))
                    .err()
            })
            .collect()
    }
}

/// Directories of `weak-updates/` (its root included) a batch has found to be directories, not
/// symlinks: each is looked at once, not once per link (a kernel may get hundreds in one
/// directory). Removing a link may remove the directories it empties, so a removal forgets
/// them all.
#[derive(Default)]
struct KnownDirs(std::collections::HashSet<PathBuf>);

impl KnownDirs {
    /// Whether `dir` is a symlink, looked at the first time only.
    fn is_symlink(&mut self, dir: &Path) -> bool {
        if self.0.contains(dir) {
            return false;
        }
        match fs::symlink_metadata(dir) {
            Ok(meta) if meta.file_type().is_symlink() => true,
            Ok(meta) => {
                if meta.is_dir() {
                    self.0.insert(dir.to_owned());
                }
                false
            }
            Err(_) => false,
        }
    }
}

/// The absolute path of a base-relative link path, after making sure it stays inside the
/// kernel's `weak-updates/`: no `..`, and no directory on the way is a symlink.
fn checked_path(
    base: &Path,
    root: &Path,
    link: &str,
    known: &mut KnownDirs,
) -> Result<PathBuf, LinkError> {
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
        if known.is_symlink(&dir) {
            return Err(outside());
        }
    }
    if known.is_symlink(root) {
        return Err(outside());
    }
    Ok(path)
}

static TEMP_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Makes the directory a link goes in, if it is not known to be there.
fn make_parent(root: &Path, path: &Path, known: &mut KnownDirs) -> Result<(), LinkError> {
    let parent = path.parent().unwrap_or(root);
    if !known.0.contains(parent) {
        fs::create_dir_all(parent).map_err(io_error(parent))?;
        known.0.insert(parent.to_owned());
    }
    Ok(())
}

/// Makes the link at `path`, whose directory is there: in place where nothing is, else under
/// a temporary name renamed over the link that is there.
fn make_link(path: &Path, target: &str) -> Result<(), LinkError> {
    if !is_link_or_nothing(path)? {
        // Nothing there: the link is made in place, in one step.
        match symlink(target, path) {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                // Something came meanwhile: replaced below if it is a link.
                is_link_or_nothing(path)?;
            }
            made => return made.map_err(io_error(path)),
        }
    }
    let parent = path.parent().unwrap_or(path);
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
    Ok(())
}

/// Whether a symlink is at `path` (`false`: nothing is); anything else there is refused.
fn is_link_or_nothing(path: &Path) -> Result<bool, LinkError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Ok(true),
        Ok(_) => Err(LinkError::NotALink {
            path: path.to_owned(),
        }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        // Not looked at: the rename below fails the same way if it is not a link.
        Err(_) => Ok(true),
    }
}

fn remove_link(root: &Path, path: &Path, known: &mut KnownDirs) -> Result<(), LinkError> {
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
    prune_empty_dirs(root, path.parent().unwrap_or(root));
    known.0.clear();
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

/// Makes a rename or unlink durable: the directory entry itself must reach the disk. A
/// directory that is gone has no entry left to make durable. The one place both the links and
/// the record of owed work (`owed.rs`) sync their directories.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    match fs::File::open(dir) {
        Ok(handle) => handle.sync_all(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directories_made_on_a_links_way_are_synced_with_it() {
        let root = Path::new("/b/lib/modules/K/weak-updates");
        let mut changed = ChangedDirs::default();
        changed.add(root, &root.join("kernel/drivers/net"), 0);
        changed.add(root, &root.join("kernel/drivers/scsi"), 1);
        changed.add(root, &root.join("extra"), 2);
        let dirs: Vec<String> = changed
            .dirs
            .keys()
            .map(|dir| dir.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(
            dirs,
            [
                "",
                "extra",
                "kernel",
                "kernel/drivers",
                "kernel/drivers/net",
                "kernel/drivers/scsi"
            ]
        );
    }
}
