//! One read of everything a run decides from: the installed kernels and their records, each
//! planned kernel's symvers, own modules, `weak-updates/` and `modules.dep`, and every module
//! file the run may offer or finds linked. Each file is read once, on all cores where there are
//! many; the rest of the run works from this and never reads the tree again until it applies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hashbrown::{HashMap, HashSet};

use crate::core::index::{IndexMismatch, index_mismatch};
use crate::core::offer::{FoundLink, KernelCase, LinkTarget, Run, may_offer_others_builds, offer};
use crate::core::paths::{release_from_path, resolve_link};
use crate::core::plan::Occupied;
use crate::cores::on_all_cores;
use crate::shell::depmod::{DepListing, OnDisk, read_modules_dep};
use crate::shell::links::{LinkError, WeakUpdates, read_weak_updates};
use crate::shell::load::{
    KernelTree, LoadError, ModuleFile, ReadAhead, installed_kernels, load_kernel_shallow,
    module_files, module_identity, read_kernel_symvers, read_modules_and_kernels, symvers_size,
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
    /// Its modules outside `kernel/` left unread (base-relative): the run offers the kernel no
    /// build it could take, so their exports and names decide nothing (see
    /// [`Reader::own_modules`]). Its index is compared as if they read.
    pub unread: Vec<String>,
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
    let releases: Vec<String> = match request.kernels {
        Some(named) => named
            .iter()
            .filter(|release| reader.snapshot.installed.contains(*release))
            .cloned()
            .collect(),
        None => reader.snapshot.installed.iter().cloned().collect(),
    };
    reader.removed_own(request);
    let offers_installed = offer(request.run, KernelCase::default()).every_installed_build;
    let kernels = reader.modules_and_kernels(request, offers_installed, &releases);
    reader.kernels(request.run, &releases, kernels);
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

/// A kernel's own files, read on the cores with the given modules.
struct KernelFiles {
    shallow: Result<(KernelTree, Vec<PathBuf>), LoadError>,
    weak_updates: Result<WeakUpdates, LinkError>,
    modules_dep: Option<Vec<u8>>,
}

impl KernelFiles {
    /// Its symvers is read only when `may_take_a_build` (given whether the kernel has links).
    fn read(base: &Path, release: &str, may_take_a_build: impl Fn(bool) -> bool) -> Self {
        let weak_updates = read_weak_updates(base, release);
        let has_links = weak_updates
            .as_ref()
            .map_or(true, |found| !found.links.is_empty());
        KernelFiles {
            shallow: load_kernel_shallow(base, release, may_take_a_build(has_links)),
            weak_updates,
            modules_dep: read_modules_dep(base, release),
        }
    }
}

/// [`Reader::may_take_a_build`] before any module is read, telling the given modules' kernels
/// by their paths. A kernel it says no to has its symvers left unread; should a given module's
/// vermagic name another kernel than its path, the kernel's symvers is read once that is known
/// (see [`Reader::kernel_trees`]).
struct Presumed<'p> {
    run: Run,
    lost_own: BTreeSet<String>,
    given_for: HashSet<&'p str>,
}

impl Presumed<'_> {
    fn may_take_a_build(&self, release: &str, has_links: bool) -> bool {
        may_take_a_build(
            self.run,
            &self.lost_own,
            release,
            has_links,
            self.given_for.iter().copied(),
        )
    }
}

/// Whether the run's policy may offer kernel `release` a build it could take, one not made for
/// it (`core::offer::may_offer_others_builds`), the given modules being built for `given_for`.
/// The one rule both [`Presumed`] and [`Reader::may_take_a_build`] follow, so that a symvers
/// left unread is one the run does not need.
fn may_take_a_build<'g>(
    run: Run,
    lost_own: &BTreeSet<String>,
    release: &str,
    has_links: bool,
    mut given_for: impl Iterator<Item = &'g str>,
) -> bool {
    may_offer_others_builds(
        run,
        lost_own.contains(release),
        has_links,
        given_for.any(|built_for| built_for != release),
    )
}

/// A kernel while it is being read.
struct FoundKernel {
    tree: KernelTree,
    weak_updates: WeakUpdates,
    /// Its modules in `extra/` and `updates/` (base-relative), not read yet.
    out_of_tree: Vec<String>,
    /// Those of them that cannot be read.
    unreadable: Vec<String>,
    /// Those of them left unread.
    unread: Vec<String>,
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

    /// The modules given on stdin, and every installed build when the run offers them all,
    /// read on all cores together with the files of the kernels to plan; those are returned in
    /// the order of `releases`.
    fn modules_and_kernels(
        &mut self,
        request: &Request,
        offers_installed: bool,
        releases: &[String],
    ) -> Vec<KernelFiles> {
        let reads_given = matches!(request.run, Run::AddModules | Run::Explain);
        let given = if reads_given { request.given } else { &[] };
        let extra = if offers_installed {
            self.extra_paths()
        } else {
            Vec::new()
        };
        let paths: Vec<String> = given
            .iter()
            .chain(extra.iter().flat_map(|(_, paths)| paths))
            .cloned()
            .collect();
        let base = self.base;
        let presumed = Presumed {
            run: request.run,
            lost_own: self.snapshot.lost_own.clone(),
            given_for: given.iter().map(|path| release_from_path(path)).collect(),
        };
        let (read, kernels) = self.read_ahead_and(&paths, releases, |release| {
            KernelFiles::read(base, release, |has_links| {
                presumed.may_take_a_build(release, has_links)
            })
        });
        let mut read = read.into_iter();
        let mut registered = HashSet::new();
        for (path, ahead) in given.iter().zip(read.by_ref()) {
            if let Some(module) = self.register(path, ahead, true)
                && registered.insert(module)
            {
                self.snapshot.given.push(module);
            }
        }
        for (directory, paths) in extra {
            self.register_extra(directory, &paths, read.by_ref());
        }
        kernels
    }

    /// `--remove-modules`: the own kernels of given modules that are gone.
    fn removed_own(&mut self, request: &Request) {
        if request.run == Run::RemoveModules {
            self.snapshot.lost_own = request
                .given
                .iter()
                .filter(|path| !self.base.join(path).exists())
                .map(|path| release_from_path(path).to_owned())
                .collect();
        }
    }

    /// Reads the modules at these base-relative paths on all cores, each path not read yet
    /// once; `None` for the others.
    fn read_ahead(&mut self, paths: &[String]) -> Vec<Option<ReadAhead>> {
        self.read_ahead_and(paths, &[], |_| ()).0
    }

    /// [`Reader::read_ahead`], with `read_kernel` of each of `releases` on the same cores.
    fn read_ahead_and<K: Send>(
        &mut self,
        paths: &[String],
        releases: &[String],
        read_kernel: impl Fn(&str) -> K + Sync,
    ) -> (Vec<Option<ReadAhead>>, Vec<K>) {
        let absolute: Vec<PathBuf> = paths.iter().map(|path| self.base.join(path)).collect();
        let mut unread: Vec<PathBuf> = absolute
            .iter()
            .filter(|path| !self.read_paths.contains_key(*path))
            .cloned()
            .collect();
        // Sorted by bytes, which is cheaper than by components; only to drop repeats.
        unread.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
        unread.dedup();
        let base = self.base;
        let (read_now, kernels) = read_modules_and_kernels(
            &unread,
            releases,
            |release| symvers_size(base, release),
            read_kernel,
        );
        let mut read: HashMap<PathBuf, ReadAhead> = unread.into_iter().zip(read_now).collect();
        for (path, ahead) in &read {
            self.read_paths.insert(path.clone(), ahead.identity.clone());
        }
        let read = absolute.iter().map(|path| read.remove(path)).collect();
        (read, kernels)
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
        for (directory, paths) in self.extra_paths() {
            let read = self.read_ahead(&paths);
            self.register_extra(directory, &paths, read);
        }
    }

    /// The paths of the modules in `extra/` of every kernel directory, by directory.
    fn extra_paths(&self) -> Vec<(String, Vec<String>)> {
        let modules_dir = self.base.join("lib/modules");
        let Ok(entries) = std::fs::read_dir(&modules_dir) else {
            return Vec::new();
        };
        let mut directories: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        directories.sort();
        directories
            .into_iter()
            .map(|directory| {
                let extra = module_files(&modules_dir.join(&directory).join("extra"));
                (directory, self.relative(&extra))
            })
            .collect()
    }

    fn register_extra(
        &mut self,
        directory: String,
        paths: &[String],
        read: impl IntoIterator<Item = Option<ReadAhead>>,
    ) {
        let builds = paths
            .iter()
            .zip(read)
            .filter_map(|(path, ahead)| self.register(path, ahead, true))
            .collect();
        self.snapshot.extra_builds.insert(directory, builds);
    }

    /// Every kernel to plan: its tree, its own modules and its links.
    fn kernels(&mut self, run: Run, releases: &[String], files: Vec<KernelFiles>) {
        let mut found = self.kernel_trees(run, releases, files);
        self.own_modules(run, &mut found);
        self.links(found);
    }

    /// The trees and `weak-updates/` of the kernels that can be read (the others are a
    /// problem each and left out), with the paths of their out-of-tree modules. A symvers left
    /// unread that the run turns out to need (see [`Presumed`]) is read here.
    fn kernel_trees(
        &mut self,
        run: Run,
        releases: &[String],
        files: Vec<KernelFiles>,
    ) -> Vec<FoundKernel> {
        let mut found = Vec::new();
        for (release, files) in releases.iter().zip(files) {
            self.modules_deps.insert(release.clone(), files.modules_dep);
            let (tree, out_of_tree) = match files.shallow {
                Ok(shallow) => shallow,
                Err(err) => {
                    self.problem(err.to_string());
                    continue;
                }
            };
            let weak_updates = match files.weak_updates {
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
            let mut kernel = FoundKernel {
                out_of_tree: self.relative(&out_of_tree),
                tree,
                weak_updates,
                unreadable: Vec::new(),
                unread: Vec::new(),
            };
            if kernel.tree.symvers.is_unread() && self.may_take_a_build(run, &kernel) {
                match read_kernel_symvers(&kernel.tree.symvers_path, release) {
                    Ok(symvers) => kernel.tree.symvers = symvers,
                    Err(err) => {
                        self.problem(err.to_string());
                        continue;
                    }
                }
            }
            found.push(kernel);
        }
        found
    }

    /// Each kernel's own modules outside `kernel/`, read with every other module of the run:
    /// the same file is often a candidate for the others too. A kernel that can be offered no
    /// build of another kernel (its own kernel's modules given to `--add-modules`, say, and no
    /// links) needs neither their exports nor their names; they are left unread unless its
    /// index needs them (see [`Reader::indexes`]).
    fn own_modules(&mut self, run: Run, found: &mut [FoundKernel]) {
        for kernel in found.iter_mut() {
            if !self.may_take_a_build(run, kernel) {
                kernel.unread = std::mem::take(&mut kernel.out_of_tree);
                self.learn_struct_module(kernel);
            }
        }
        let all: Vec<String> = found
            .iter()
            .flat_map(|kernel| kernel.out_of_tree.iter().cloned())
            .collect();
        let mut read = self.read_ahead(&all).into_iter();
        for kernel in found {
            let paths = std::mem::take(&mut kernel.out_of_tree);
            let registered = self.register_own(paths, read.by_ref());
            self.add_own(&mut kernel.tree, &mut kernel.unreadable, registered);
        }
    }

    /// A kernel's own out-of-tree modules, registered: each path with its module id, `None`
    /// (after a problem) when it cannot be read.
    fn register_own(
        &mut self,
        paths: Vec<String>,
        read: impl Iterator<Item = Option<ReadAhead>>,
    ) -> Vec<(String, Option<usize>)> {
        paths
            .into_iter()
            .zip(read)
            .map(|(path, ahead)| {
                let module = self.register(&path, ahead, true);
                (path, module)
            })
            .collect()
    }

    /// Registered own modules into the kernel's tree, or among its unreadable ones.
    fn add_own(
        &self,
        tree: &mut KernelTree,
        unreadable: &mut Vec<String>,
        registered: Vec<(String, Option<usize>)>,
    ) {
        for (path, module) in registered {
            match module {
                Some(module) => {
                    tree.add_out_of_tree(self.base.join(&path), &self.snapshot.modules[module].file)
                }
                None => unreadable.push(path),
            }
        }
    }

    /// A kernel that ships no in-tree module learns the size of its `struct module` from its
    /// own out-of-tree ones (see `KernelTree::add_out_of_tree`): those left unread are read
    /// in order until one tells it, so that the kernel is reported as it would be had they all
    /// been read.
    fn learn_struct_module(&mut self, kernel: &mut FoundKernel) {
        for path in &kernel.unread {
            if kernel.tree.this_module_size.is_some() {
                return;
            }
            if let Some(module) = self.register(path, None, true) {
                kernel
                    .tree
                    .learn_struct_module(&self.snapshot.modules[module].file);
            }
        }
    }

    /// Whether the run's policy may offer the kernel a build it could take: one not made for
    /// it (`core::offer::may_offer_others_builds`).
    fn may_take_a_build(&self, run: Run, kernel: &FoundKernel) -> bool {
        let given_for = self
            .snapshot
            .given
            .iter()
            .map(|&module| self.snapshot.modules[module].file.built_for.as_str());
        may_take_a_build(
            run,
            &self.snapshot.lost_own,
            &kernel.tree.release,
            !kernel.weak_updates.links.is_empty(),
            given_for,
        )
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
                    unread: kernel.unread,
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
        for release in &releases {
            self.modules_dep(release);
        }
        let reader = &*self;
        let indexes = on_all_cores(&releases, |release| reader.index(release));
        for (release, index) in releases.iter().zip(indexes) {
            let index = match index {
                // It may not list a module left unread because that module cannot be read:
                // then it is read after all, and the index compared again.
                Some(IndexMismatch::Lacks(_))
                    if !self.snapshot.kernels[release].unread.is_empty() =>
                {
                    self.read_unread(release);
                    self.index(release)
                }
                index => index,
            };
            if let Some(kernel) = self.snapshot.kernels.get_mut(release) {
                kernel.index = index;
            }
        }
    }

    fn index(&self, release: &str) -> Option<IndexMismatch> {
        let (present, unreadable, any_module) =
            self.watched_modules(&self.snapshot.kernels[release]);
        index_mismatch(
            self.modules_deps[release].as_deref(),
            &present,
            &unreadable,
            any_module,
        )
    }

    /// The kernel's own modules left unread (see [`Reader::own_modules`]), read now.
    fn read_unread(&mut self, release: &str) {
        let Some(mut kernel) = self.snapshot.kernels.remove(release) else {
            return;
        };
        let paths = std::mem::take(&mut kernel.unread);
        let read = self.read_ahead(&paths);
        let registered = self.register_own(paths, read.into_iter());
        self.add_own(&mut kernel.tree, &mut kernel.unreadable, registered);
        self.snapshot.kernels.insert(release.to_owned(), kernel);
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
        present.extend(
            kernel
                .unread
                .iter()
                .filter_map(|path| below_kernel(&self.base.join(path))),
        );
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
