//! One read of everything a run decides from: the installed kernels and their records, each
//! planned kernel's symvers, own modules, `weak-updates/` and `modules.dep`, and every module
//! file the run may offer or finds linked. Each file is read once, on all cores where there are
//! many; the rest of the run works from this and never reads the tree again until it applies.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::core::index::{IndexMismatch, index_mismatch};
use crate::core::offer::{FoundLink, KernelCase, LinkTarget, Run, offer};
use crate::core::paths::{release_from_path, resolve_link};
use crate::core::plan::Occupied;
use crate::shell::depmod::{DepListing, OnDisk, read_modules_dep};
use crate::shell::links::{WeakUpdates, read_weak_updates};
use crate::shell::load::{
    KernelTree, LoadError, ModuleFile, ReadAhead, installed_kernels, load_kernels_shallow,
    module_files, module_identity, read_modules,
};
use crate::shell::owed::{Owed, read_owed};

/// What a run asks to be read.
#[derive(Debug)]
pub struct Request<'a> {
    pub run: Run,
    /// Base-relative module paths from stdin.
    pub given: &'a [String],
    /// The kernels to plan (those not installed are left out); `None`: every installed one.
    pub kernels: Option<&'a [String]>,
    /// A kernel whose links are about to be removed (`--remove-kernel`).
    pub leaving: Option<&'a str>,
}

/// A module file, read once per run wherever it is referenced from.
#[derive(Debug)]
pub struct Loaded {
    /// Relative to the base, as first named.
    pub path: String,
    pub file: ModuleFile,
}

/// One kernel to plan, as found.
#[derive(Debug)]
pub struct KernelRead {
    pub tree: KernelTree,
    pub links: Vec<FoundLink>,
    /// Entries of `weak-updates/` that are not symlinks.
    pub occupied: Occupied,
    /// Temporary names of ours a killed run left in `weak-updates/`.
    pub leftovers: Vec<String>,
    /// Its modules outside `kernel/` that cannot be read (base-relative).
    pub unreadable: Vec<String>,
    /// How its `modules.dep` differs from its tree, if it does.
    pub index: Option<IndexMismatch>,
}

/// Something found wrong while reading, in the order it was met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnostic {
    /// Costs what it touches, and the exit status.
    Problem(String),
    Warning(String),
}

#[derive(Debug, Default)]
pub struct Snapshot {
    pub installed: BTreeSet<String>,
    /// Work an earlier run left owed, by kernel (only kernels owed something).
    pub records: BTreeMap<String, Owed>,
    pub modules: Vec<Loaded>,
    /// Module ids of the readable given paths, in input order, each once.
    pub given: Vec<usize>,
    /// Kernels that could be read, by release.
    pub kernels: BTreeMap<String, KernelRead>,
    /// Module ids of every readable module in `extra/`, by kernel directory; read only when
    /// some kernel is offered them.
    pub extra_builds: BTreeMap<String, Vec<usize>>,
    /// Own kernels of given modules whose `modules.dep` does not match them yet.
    pub stale_own: BTreeSet<String>,
    /// Kernels one of whose own modules was given to `--remove-modules` and is gone.
    pub lost_own: BTreeSet<String>,
    /// The links (base-relative) of the kernel `Request::leaving` names; `None` when its
    /// `weak-updates/` cannot be read (then it is left as it is).
    pub leaving_links: Option<Vec<String>>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Snapshot {
    /// The readable builds in the `extra/` of every kernel directory but `release`'s.
    pub fn installed_builds_except(&self, release: &str) -> Vec<usize> {
        self.extra_builds
            .iter()
            .filter(|(directory, _)| *directory != release)
            .flat_map(|(_, builds)| builds.iter().copied())
            .collect()
    }
}

pub fn read(base: &Path, request: &Request) -> Result<Snapshot, LoadError> {
    let mut reader = Reader {
        base,
        snapshot: Snapshot::default(),
        by_identity: HashMap::new(),
        read_paths: HashMap::new(),
        modules_deps: HashMap::new(),
    };
    reader.installed()?;
    reader.given(request);
    let releases: Vec<String> = match request.kernels {
        Some(named) => named
            .iter()
            .filter(|release| reader.snapshot.installed.contains(*release))
            .cloned()
            .collect(),
        None => reader.snapshot.installed.iter().cloned().collect(),
    };
    let offers_installed = offer(request.run, KernelCase::default()).every_installed_build;
    if offers_installed {
        reader.extra_builds();
    }
    reader.kernels(&releases);
    if !offers_installed && reader.some_kernel_lost_a_module(request.run) {
        reader.extra_builds();
    }
    reader.indexes();
    if matches!(request.run, Run::AddModules | Run::RemoveModules) {
        reader.stale_own(request.given);
    }
    if let Some(release) = request.leaving {
        match read_weak_updates(base, release) {
            Ok(found) => {
                let links = found.links.into_iter().map(|found| found.link).collect();
                reader.snapshot.leaving_links = Some(links);
            }
            Err(err) => reader.problem(err.to_string()),
        }
    }
    Ok(reader.snapshot)
}

/// A kernel while it is being read.
struct FoundKernel {
    tree: KernelTree,
    weak_updates: WeakUpdates,
    /// Its modules in `extra/` and `updates/` (base-relative), not read yet.
    out_of_tree: Vec<String>,
    /// Those of them that cannot be read.
    unreadable: Vec<String>,
}

struct Reader<'b> {
    base: &'b Path,
    snapshot: Snapshot,
    /// Module ids by the path with every symlink resolved (`None`: unreadable), so that two
    /// names of one file are read once.
    by_identity: HashMap<PathBuf, Option<usize>>,
    /// Paths already read ahead (each then registered by its caller), as named, with their
    /// identities.
    read_paths: HashMap<PathBuf, PathBuf>,
    /// Each kernel's `modules.dep`, read at most once.
    modules_deps: HashMap<String, Option<Vec<u8>>>,
}

impl Reader<'_> {
    fn problem(&mut self, message: String) {
        self.snapshot.diagnostics.push(Diagnostic::Problem(message));
    }

    fn warning(&mut self, message: String) {
        self.snapshot.diagnostics.push(Diagnostic::Warning(message));
    }

    fn installed(&mut self) -> Result<(), LoadError> {
        self.snapshot.installed = installed_kernels(self.base)?.into_iter().collect();
        for release in &self.snapshot.installed {
            let owed = read_owed(self.base, release);
            if !owed.is_nothing() {
                self.snapshot.records.insert(release.clone(), owed);
            }
        }
        Ok(())
    }

    fn given(&mut self, request: &Request) {
        match request.run {
            Run::AddModules | Run::Explain => {
                let read = self.read_ahead(request.given);
                for (path, ahead) in request.given.iter().zip(read) {
                    if let Some(module) = self.register(path, ahead, true)
                        && !self.snapshot.given.contains(&module)
                    {
                        self.snapshot.given.push(module);
                    }
                }
            }
            Run::RemoveModules => {
                self.snapshot.lost_own = request
                    .given
                    .iter()
                    .filter(|path| !self.base.join(path).exists())
                    .map(|path| release_from_path(path).to_owned())
                    .collect();
            }
            _ => {}
        }
    }

    /// Reads the modules at these base-relative paths on all cores, each path not read yet
    /// once; `None` for the others.
    fn read_ahead(&mut self, paths: &[String]) -> Vec<Option<ReadAhead>> {
        let absolute: Vec<PathBuf> = paths.iter().map(|path| self.base.join(path)).collect();
        let mut unread: Vec<PathBuf> = absolute
            .iter()
            .filter(|path| !self.read_paths.contains_key(*path))
            .cloned()
            .collect();
        unread.sort();
        unread.dedup();
        let read_now = read_modules(&unread);
        let mut read: HashMap<PathBuf, ReadAhead> = unread.into_iter().zip(read_now).collect();
        for (path, ahead) in &read {
            self.read_paths.insert(path.clone(), ahead.identity.clone());
        }
        absolute.iter().map(|path| read.remove(path)).collect()
    }

    /// The module id of the module at `path`, read ahead or now, registered under its
    /// identity. `None` (after a problem, when `report` is set) when it cannot be read.
    fn register(&mut self, path: &str, ahead: Option<ReadAhead>, report: bool) -> Option<usize> {
        let absolute = self.base.join(path);
        let identity = match &ahead {
            Some(ahead) => ahead.identity.clone(),
            None => match self.read_paths.get(&absolute) {
                Some(identity) => identity.clone(),
                None => module_identity(&absolute),
            },
        };
        if let Some(known) = self.by_identity.get(&identity) {
            return *known;
        }
        let read = match ahead {
            Some(ahead) => ahead.read,
            None => ModuleFile::read(&absolute),
        };
        let module = match read {
            Ok(file) => {
                self.snapshot.modules.push(Loaded {
                    path: path.to_owned(),
                    file,
                });
                Some(self.snapshot.modules.len() - 1)
            }
            Err(err) => {
                if report {
                    self.problem(err.to_string());
                }
                None
            }
        };
        self.by_identity.insert(identity, module);
        module
    }

    /// Paths below the base, as base-relative text.
    fn relative(&self, paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .filter_map(|path| path.strip_prefix(self.base).ok())
            .map(|path| path.to_string_lossy().into_owned())
            .collect()
    }

    /// Every module in `extra/` of every kernel directory, installed or not.
    fn extra_builds(&mut self) {
        let modules_dir = self.base.join("lib/modules");
        let Ok(entries) = std::fs::read_dir(&modules_dir) else {
            return;
        };
        let mut directories: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        directories.sort();
        for directory in directories {
            let paths = self.relative(&module_files(&modules_dir.join(&directory).join("extra")));
            let read = self.read_ahead(&paths);
            let builds = paths
                .iter()
                .zip(read)
                .filter_map(|(path, ahead)| self.register(path, ahead, true))
                .collect();
            self.snapshot.extra_builds.insert(directory, builds);
        }
    }

    /// Every kernel to plan: its tree, its own modules and its links.
    fn kernels(&mut self, releases: &[String]) {
        let mut found = self.kernel_trees(releases);
        self.own_modules(&mut found);
        self.links(found);
    }

    /// The trees and `weak-updates/` of the kernels that can be read (the others are a
    /// problem each and left out), with the paths of their out-of-tree modules.
    fn kernel_trees(&mut self, releases: &[String]) -> Vec<FoundKernel> {
        let mut found = Vec::new();
        for (release, shallow) in releases
            .iter()
            .zip(load_kernels_shallow(self.base, releases))
        {
            let (tree, out_of_tree) = match shallow {
                Ok(shallow) => shallow,
                Err(err) => {
                    self.problem(err.to_string());
                    continue;
                }
            };
            let weak_updates = match read_weak_updates(self.base, release) {
                Ok(weak_updates) => weak_updates,
                Err(err) => {
                    self.problem(format!("{err}; kernel {release} left as it is"));
                    continue;
                }
            };
            for path in &weak_updates.foreign_names {
                self.warning(format!(
                    "{}: name is not UTF-8, not a link of ours, left alone",
                    path.display()
                ));
            }
            found.push(FoundKernel {
                out_of_tree: self.relative(&out_of_tree),
                tree,
                weak_updates,
                unreadable: Vec::new(),
            });
        }
        found
    }

    /// Each kernel's own modules outside `kernel/`, read with every other module of the run:
    /// the same file is often a candidate for the other kernels too.
    fn own_modules(&mut self, found: &mut [FoundKernel]) {
        let all: Vec<String> = found
            .iter()
            .flat_map(|kernel| kernel.out_of_tree.iter().cloned())
            .collect();
        let mut read = self.read_ahead(&all).into_iter();
        for kernel in found {
            for path in std::mem::take(&mut kernel.out_of_tree) {
                match self.register(&path, read.next().flatten(), true) {
                    Some(module) => kernel.tree.add_out_of_tree(
                        self.base.join(&path),
                        &self.snapshot.modules[module].file,
                    ),
                    None => kernel.unreadable.push(path),
                }
            }
        }
    }

    /// Each kernel's links, resolved to the modules they lead to (read on all cores).
    fn links(&mut self, found: Vec<FoundKernel>) {
        let base_text = self.base.to_string_lossy().into_owned();
        let targets: Vec<Vec<Option<String>>> = found
            .iter()
            .map(|kernel| {
                kernel
                    .weak_updates
                    .links
                    .iter()
                    .map(|link| resolve_link(&link.link, &link.target_text, &base_text))
                    .map(|path| path.filter(|path| self.base.join(path).is_file()))
                    .collect()
            })
            .collect();
        let all_targets: Vec<String> = targets.iter().flatten().flatten().cloned().collect();
        let mut read = self.read_ahead(&all_targets).into_iter();
        for (kernel, targets) in found.into_iter().zip(targets) {
            let mut links = Vec::new();
            for (link, target) in kernel.weak_updates.links.into_iter().zip(targets) {
                let leads_to = match target {
                    Some(path) => match self.register(&path, read.next().flatten(), false) {
                        Some(module) => LinkTarget::Module(module),
                        None => {
                            self.warning(format!(
                                "{}: target cannot be read as a module, left alone",
                                self.base.join(&link.link).display()
                            ));
                            LinkTarget::Unreadable
                        }
                    },
                    None => LinkTarget::Gone,
                };
                links.push(FoundLink {
                    link: link.link,
                    target_text: link.target_text,
                    leads_to,
                });
            }
            self.snapshot.kernels.insert(
                kernel.tree.release.clone(),
                KernelRead {
                    tree: kernel.tree,
                    links,
                    occupied: kernel.weak_updates.occupied,
                    leftovers: kernel.weak_updates.leftovers,
                    unreadable: kernel.unreadable,
                    index: None,
                },
            );
        }
    }

    /// Whether the policy offers some kernel every installed build because it lost a module.
    fn some_kernel_lost_a_module(&self, run: Run) -> bool {
        self.snapshot.kernels.iter().any(|(release, kernel)| {
            let case = KernelCase {
                lost_own_module: self.snapshot.lost_own.contains(release),
                has_gone_link: kernel
                    .links
                    .iter()
                    .any(|link| link.leads_to == LinkTarget::Gone),
            };
            offer(run, case).every_installed_build
        })
    }

    fn modules_dep(&mut self, release: &str) -> Option<&[u8]> {
        self.modules_deps
            .entry(release.to_owned())
            .or_insert_with(|| read_modules_dep(self.base, release))
            .as_deref()
    }

    /// How each kernel's `modules.dep` differs from its tree: an earlier run may have been
    /// killed before its depmod.
    fn indexes(&mut self) {
        let releases: Vec<String> = self.snapshot.kernels.keys().cloned().collect();
        for release in releases {
            self.modules_dep(&release);
            let (present, unreadable, any_module) =
                self.watched_modules(&self.snapshot.kernels[&release]);
            let index = index_mismatch(
                self.modules_deps[&release].as_deref(),
                &present,
                &unreadable,
                any_module,
            );
            if let Some(kernel) = self.snapshot.kernels.get_mut(&release) {
                kernel.index = index;
            }
        }
    }

    /// Paths below the kernel's directory of its modules outside `kernel/`: those that read,
    /// those that do not, and whether it has any module at all.
    fn watched_modules(&self, kernel: &KernelRead) -> (Vec<String>, Vec<String>, bool) {
        let release = &kernel.tree.release;
        let kernel_prefix = format!("lib/modules/{release}/");
        let kernel_dir = self.base.join("lib/modules").join(release);
        let below_kernel = |path: &Path| {
            path.strip_prefix(&kernel_dir)
                .ok()
                .map(|below| below.to_string_lossy().into_owned())
        };
        let mut present: Vec<String> = kernel
            .tree
            .native
            .iter()
            .filter_map(|module| below_kernel(&module.path))
            .filter(|below| !below.starts_with("kernel/"))
            .collect();
        let mut unreadable: Vec<String> = kernel
            .unreadable
            .iter()
            .filter_map(|path| below_kernel(&self.base.join(path)))
            .collect();
        for link in &kernel.links {
            let below = link.link.strip_prefix(&kernel_prefix).map(str::to_owned);
            match (link.leads_to, below) {
                (LinkTarget::Module(_), Some(below)) => present.push(below),
                (LinkTarget::Unreadable, Some(below)) => unreadable.push(below),
                _ => {}
            }
        }
        let any_module = !kernel.tree.native.is_empty() || !present.is_empty();
        (present, unreadable, any_module)
    }

    /// The given modules' own kernels whose indexes do not match them yet (the bash tool
    /// always runs depmod there; we do when it has something to do).
    fn stale_own(&mut self, given: &[String]) {
        // Each readable module against the kernel it was built for, as read; each given path
        // against the kernel its path names, looked at again only if it was not read.
        let mut owners: Vec<(String, String, Option<OnDisk>)> = self
            .snapshot
            .given
            .iter()
            .map(|&module| {
                let module = &self.snapshot.modules[module];
                let on_disk = OnDisk::File {
                    modified: module.file.modified,
                };
                (
                    module.path.clone(),
                    module.file.built_for.clone(),
                    Some(on_disk),
                )
            })
            .collect();
        let read: HashMap<String, Option<OnDisk>> = owners
            .iter()
            .map(|(path, _, on_disk)| (path.clone(), *on_disk))
            .collect();
        for path in given {
            let release = release_from_path(path).to_owned();
            owners.push((path.clone(), release, read.get(path).copied().flatten()));
        }
        let mut listings: HashMap<String, DepListing> = HashMap::new();
        for (path, release, known) in owners {
            if !self.snapshot.installed.contains(&release)
                || self.snapshot.stale_own.contains(&release)
            {
                continue;
            }
            let below = path
                .strip_prefix(&format!("lib/modules/{release}/"))
                .or_else(|| path.strip_prefix(&format!("usr/lib/modules/{release}/")));
            let Some(below) = below else {
                continue;
            };
            if !listings.contains_key(&release) {
                let listing = DepListing::new(self.base, &release, self.modules_dep(&release));
                listings.insert(release.clone(), listing);
            }
            if listings[&release].stale_for(below, known) {
                self.snapshot.stale_own.insert(release);
            }
        }
    }
}
