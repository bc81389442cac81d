//! One run: read the input and the tree, plan each kernel with the pure core, report, apply
//! under the lock, then depmod and initramfs for the kernels that are owed them: those whose
//! links changed, those whose indexes do not match their tree, and those an interrupted or
//! failed run left a record for.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::config::{Config, Mode};
use crate::core::index::index_mismatch;
use crate::core::paths::{normalize, release_from_path, resolve_link};
use crate::core::plan::{Build, ExistingLink, KernelPlan, LinkedModule, Obstacle, plan_kernel};
use crate::error::Error;
use crate::report::{self, BuildLabel};
use crate::shell::children::Output as ChildrenOutput;
use crate::shell::depmod::{DepListing, depmod_command, read_modules_dep, run_depmods};
use crate::shell::initramfs::{
    Outcome as InitramfsOutcome, Regenerator, clear_leftover_images, image_path, refresh_all,
};
use crate::shell::input::read_lines;
use crate::shell::links::{
    FoundLink, WeakUpdates, apply, clear_leftovers, empty_weak_updates, read_links,
    read_weak_updates,
};
use crate::shell::load::{
    KernelTree, LoadError, ModuleFile, ReadAhead, installed_kernels, load_kernel, load_kernels,
    module_files, read_modules, symvers_candidates, symvers_file,
};
use crate::shell::lock::{RunLock, lock_exclusive, lock_shared_if_free};
use crate::shell::owed::{Owed, read_owed, record_owed};

/// How a run ended, when it got to the end.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Problems reported on the way (unreadable modules, failed steps); each makes the exit
    /// status 1 once the rest is done.
    pub problems: usize,
}

/// One kernel's plan and the modules its build indices refer to.
struct Planned {
    plan: KernelPlan,
    members: Vec<usize>,
}

/// A module file read once per run, wherever it is referenced from.
struct Loaded {
    /// Relative to the base, as first named.
    path: String,
    file: ModuleFile,
}

struct Session<'c> {
    config: &'c Config,
    out: Box<dyn Write + 'c>,
    problems: usize,
    /// Every line printed on stderr, so that a problem met twice is reported once.
    said_on_stderr: HashSet<String>,
    modules: Vec<Loaded>,
    by_identity: HashMap<PathBuf, Option<usize>>,
    /// Work each kernel is owed by this run or by one before it.
    owed: BTreeMap<String, Owed>,
    /// What each kernel's record on disk says.
    recorded: BTreeMap<String, Owed>,
    /// Kernels and modules read on all cores before they are needed, by release and path.
    kernels_read_ahead: HashMap<String, Result<KernelTree, LoadError>>,
    modules_read_ahead: HashMap<PathBuf, ReadAhead>,
}

pub fn run<'c>(
    config: &'c Config,
    input: impl BufRead,
    out: impl Write + 'c,
) -> Result<Outcome, Error> {
    let mut session = Session {
        config,
        out: Box::new(out),
        problems: 0,
        said_on_stderr: HashSet::new(),
        modules: Vec::new(),
        by_identity: HashMap::new(),
        owed: BTreeMap::new(),
        recorded: BTreeMap::new(),
        kernels_read_ahead: HashMap::new(),
        modules_read_ahead: HashMap::new(),
    };
    match &config.mode {
        Mode::AddModules => {
            let paths = session.read_paths(input)?;
            session.add_modules(paths)?;
        }
        Mode::RemoveModules => {
            let paths = session.read_paths(input)?;
            session.remove_modules(paths)?;
        }
        Mode::AddKernel(release) => session.add_kernel(release)?,
        Mode::RemoveKernel(release) => session.remove_kernel(release)?,
    }
    Ok(Outcome {
        problems: session.problems,
    })
}

impl Session<'_> {
    fn say(&mut self, line: &str) {
        if self.config.verbose {
            let _ = writeln!(self.out, "{line}");
        }
    }

    fn stderr_once(&mut self, line: String) -> bool {
        let first = self.said_on_stderr.insert(line.clone());
        if first {
            eprintln!("{line}");
        }
        first
    }

    /// A problem with a file: one line on stderr, and the exit status will be 1.
    fn problem(&mut self, err: &dyn std::fmt::Display) {
        if self.stderr_once(format!("weak-modules: {err}")) {
            self.problems += 1;
        }
    }

    /// Something the user should know that does not fail the run.
    fn warn(&mut self, message: &str) {
        self.stderr_once(format!("weak-modules: warning: {message}"));
    }

    fn base(&self) -> &Path {
        &self.config.base
    }

    /// Stdin paths made base-relative: blank lines skipped, relative ones taken from the
    /// current directory, the base prefix optional, duplicates dropped. A line that cannot be
    /// a path is reported with its number and costs only itself.
    fn read_paths(&mut self, input: impl BufRead) -> Result<Vec<String>, Error> {
        let cwd = std::env::current_dir().map_err(|source| Error::Io {
            path: PathBuf::from("."),
            source,
        })?;
        let (lines, problems) = read_lines(input);
        for problem in &problems {
            self.problem(problem);
        }
        let mut paths = Vec::new();
        for line in lines {
            let absolute = PathBuf::from(format!(
                "/{}",
                normalize(&cwd.join(&line.text).to_string_lossy())
            ));
            let inside = absolute
                .strip_prefix(&self.config.base)
                .unwrap_or(&absolute);
            let path = inside.to_string_lossy().trim_start_matches('/').to_owned();
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
        Ok(paths)
    }

    /// The run's lock: exclusive when it changes things (saying once whom it waits for),
    /// shared and only if free for a dry run, which never waits.
    fn lock(&mut self) -> Result<Option<RunLock>, Error> {
        let mut notice = None;
        let lock = if self.config.dry_run {
            lock_shared_if_free(self.base(), |path, holder| {
                notice = Some(format!(
                    "{}: locked by {}; a dry run reads the tree without waiting",
                    path.display(),
                    holder_text(holder)
                ));
            })?
        } else {
            lock_exclusive(self.base(), |path, holder| {
                eprintln!(
                    "weak-modules: waiting for the lock on {}, held by {}",
                    path.display(),
                    holder_text(holder)
                );
            })?
        };
        if let Some(notice) = notice {
            self.warn(&notice);
        }
        Ok(lock)
    }

    /// The installed kernels (those with a symvers file), read once per run, in name order,
    /// and the work their records say an earlier run owes them. Leftover temporary images of
    /// a killed run are cleared.
    fn installed(&mut self) -> Result<BTreeSet<String>, Error> {
        let installed: BTreeSet<String> = installed_kernels(self.base())?.into_iter().collect();
        for release in &installed {
            let owed = read_owed(self.base(), release);
            if !owed.is_nothing() {
                self.say(&format!(
                    "Kernel {release} is owed {} by an interrupted or failed run",
                    owed.describe()
                ));
                self.recorded.insert(release.clone(), owed);
                self.owe(release, owed);
            }
            if !self.config.dry_run {
                for cleared in clear_leftover_images(self.base(), release) {
                    self.say(&format!(
                        "Removed {}, left by an interrupted run",
                        cleared.display()
                    ));
                }
            }
        }
        Ok(installed)
    }

    fn owe(&mut self, release: &str, work: Owed) {
        let owed = self.owed.entry(release.to_owned()).or_default();
        *owed = owed.and(work);
    }

    /// What a change to a kernel's modules owes it.
    fn work_for_a_change(&self) -> Owed {
        Owed {
            depmod: true,
            initramfs: !self.config.no_initramfs,
        }
    }

    /// Reads a module once per run. `None` (after a reported problem, when `report` is set)
    /// when it cannot be read.
    fn load(&mut self, path: &str, report: bool) -> Option<usize> {
        let absolute = self.base().join(path);
        let ahead = self.modules_read_ahead.remove(&absolute);
        let identity = match &ahead {
            Some(ahead) => ahead.identity.clone(),
            None => std::fs::canonicalize(&absolute).unwrap_or(absolute.clone()),
        };
        if let Some(known) = self.by_identity.get(&identity) {
            return *known;
        }
        let read = match ahead {
            Some(ahead) => ahead.read,
            None => ModuleFile::read(&absolute),
        };
        let loaded = match read {
            Ok(file) => {
                self.modules.push(Loaded {
                    path: path.to_owned(),
                    file,
                });
                Some(self.modules.len() - 1)
            }
            Err(err) => {
                if report {
                    self.problem(&err);
                }
                None
            }
        };
        self.by_identity.insert(identity, loaded);
        loaded
    }

    fn add_modules(&mut self, paths: Vec<String>) -> Result<(), Error> {
        if paths.is_empty() {
            return Ok(());
        }
        let _lock = self.lock()?;
        let installed = self.installed()?;
        self.read_modules_ahead(&paths);
        let offered: Vec<usize> = paths.iter().filter_map(|p| self.load(p, true)).collect();
        self.read_kernels_ahead(&installed);
        let work = self.work_for_a_change();
        for release in self.stale_own_kernels(&installed, &paths, &offered) {
            self.owe(&release, work);
        }
        for release in &installed {
            self.reconcile(release, &offered);
        }
        self.finish(&installed);
        Ok(())
    }

    fn remove_modules(&mut self, paths: Vec<String>) -> Result<(), Error> {
        if paths.is_empty() {
            return Ok(());
        }
        let _lock = self.lock()?;
        let installed = self.installed()?;
        self.read_kernels_ahead(&installed);
        let work = self.work_for_a_change();
        for release in self.stale_own_kernels(&installed, &paths, &[]) {
            self.owe(&release, work);
        }
        // A kernel that lost one of its own modules may now take a module that one refused (a
        // GPL-only or namespaced export, a same-name module): it is checked against every
        // installed build, as --add-kernel would.
        let lost_own: BTreeSet<String> = paths
            .iter()
            .filter(|path| !self.base().join(path).exists())
            .map(|path| release_from_path(path).to_owned())
            .collect();
        for release in &installed {
            self.say_skipped_symlinks(release, &paths);
            let offered = if lost_own.contains(release) {
                self.extra_builds_except(release)
            } else {
                Vec::new()
            };
            if let Some(planned) = self.plan_for(release, &offered) {
                self.commit(release, planned, 0);
            }
        }
        self.finish(&installed);
        Ok(())
    }

    fn add_kernel(&mut self, release: &str) -> Result<(), Error> {
        if symvers_file(self.base(), release).is_none() {
            return Err(Error::NoSymvers {
                release: release.to_owned(),
                looked_in: symvers_candidates(self.base(), release),
            });
        }
        let _lock = self.lock()?;
        let installed = self.installed()?;
        let offered = self.extra_builds_except(release);
        self.reconcile(release, &offered);
        self.finish(&installed);
        Ok(())
    }

    fn remove_kernel(&mut self, release: &str) -> Result<(), Error> {
        let _lock = self.lock()?;
        let installed = self.installed()?;
        // The bash tool runs no depmod for a kernel on its way out.
        self.owed.remove(release);
        if self.config.dry_run {
            match read_links(self.base(), release) {
                Ok(links) => {
                    for found in links {
                        self.say(&format!("rm -f {}", found.link));
                    }
                }
                Err(err) => self.problem(&err),
            }
        } else {
            match empty_weak_updates(self.base(), release) {
                Ok(removed) => {
                    for link in removed {
                        self.say(&format!("rm -f {link}"));
                    }
                    if let Err(err) = record_owed(self.base(), release, Owed::default()) {
                        self.problem(&err);
                    }
                }
                Err(err) => self.problem(&err),
            }
        }
        self.finish(&installed);
        Ok(())
    }

    /// Plans, reports and (unless dry run) applies one kernel.
    fn reconcile(&mut self, release: &str, offered: &[usize]) {
        if let Some(planned) = self.plan_for(release, offered) {
            self.commit(release, planned, offered.len());
        }
    }

    /// The plan for one kernel given the builds offered to it; `None` when the kernel cannot
    /// be read (reported once; its links are left as they are).
    fn plan_for(&mut self, release: &str, offered: &[usize]) -> Option<Planned> {
        let read = self
            .kernels_read_ahead
            .remove(release)
            .unwrap_or_else(|| load_kernel(self.base(), release));
        let tree = match read {
            Ok(tree) => tree,
            Err(err) => {
                self.problem(&err);
                return None;
            }
        };
        for err in &tree.unreadable {
            self.problem(err);
        }
        let weak_updates = match read_weak_updates(self.base(), release) {
            Ok(found) => found,
            Err(err) => {
                self.problem(&format!("{err}; kernel {release} left as it is"));
                return None;
            }
        };
        self.clear_leftovers(&weak_updates);
        for path in &weak_updates.foreign_names {
            self.warn(&format!(
                "{}: name is not UTF-8, not a link of ours, left alone",
                path.display()
            ));
        }
        let mut members: Vec<usize> = offered.to_vec();
        let existing: Vec<ExistingLink> = weak_updates
            .links
            .iter()
            .map(|link| self.existing_link(link, &mut members))
            .collect();
        self.check_indexes(&tree, &existing);
        // A link whose module is gone may be replaced by another build of that module, and
        // what the gone module refused (an export it offered, a same-name module) may fit now:
        // such a kernel is checked against every installed build, as --add-kernel would.
        if existing
            .iter()
            .any(|link| link.leads_to == LinkedModule::Gone)
        {
            for build in self.extra_builds_except(release) {
                member_index(&mut members, build);
            }
        }
        let builds: Vec<Build> = members
            .iter()
            .map(|&m| {
                let module = &self.modules[m];
                Build {
                    path: &module.path,
                    name: &module.file.name,
                    built_for: &module.file.built_for,
                    facts: &module.file.facts,
                }
            })
            .collect();
        let plan = plan_kernel(
            &tree.abi(),
            &builds,
            &existing,
            &weak_updates.occupied,
            self.config.live_system(),
        );
        Some(Planned { plan, members })
    }

    /// Temporary names a killed run left are never links; a run that changes things clears
    /// them.
    fn clear_leftovers(&mut self, weak_updates: &WeakUpdates) {
        if self.config.dry_run || weak_updates.leftovers.is_empty() {
            return;
        }
        for leftover in &weak_updates.leftovers {
            self.say(&format!(
                "Removing {}, left by an interrupted run",
                self.base().join(leftover).display()
            ));
        }
        if let Err(err) = clear_leftovers(self.base(), &weak_updates.leftovers) {
            self.problem(&err);
        }
    }

    /// A kernel whose `modules.dep` does not describe its tree is owed depmod, whatever this
    /// run changes: an earlier run may have been killed before its depmod.
    fn check_indexes(&mut self, tree: &KernelTree, existing: &[ExistingLink]) {
        let release = &tree.release;
        let kernel_prefix = format!("lib/modules/{release}/");
        let kernel_dir = self.base().join("lib/modules").join(release);
        let below_kernel = |path: &Path| {
            path.strip_prefix(&kernel_dir)
                .ok()
                .map(|below| below.to_string_lossy().into_owned())
        };
        let mut present: Vec<String> = tree
            .native
            .iter()
            .filter_map(|module| below_kernel(&module.path))
            .filter(|below| !below.starts_with("kernel/"))
            .collect();
        let mut unreadable: Vec<String> = tree
            .unreadable
            .iter()
            .filter_map(|err| match err {
                LoadError::Read { path, .. }
                | LoadError::Decompress { path, .. }
                | LoadError::Module { path, .. } => below_kernel(path),
                _ => None,
            })
            .collect();
        for link in existing {
            let below = link.link.strip_prefix(&kernel_prefix).map(str::to_owned);
            match (link.leads_to, below) {
                (LinkedModule::Build(_), Some(below)) => present.push(below),
                (LinkedModule::Unreadable, Some(below)) => unreadable.push(below),
                _ => {}
            }
        }
        let any_module = !tree.native.is_empty() || !present.is_empty();
        let modules_dep = read_modules_dep(self.base(), release);
        if let Some(mismatch) =
            index_mismatch(modules_dep.as_deref(), &present, &unreadable, any_module)
        {
            self.say(&format!(
                "Indexes of kernel {release} do not match its modules: {mismatch}"
            ));
            let work = self.work_for_a_change();
            self.owe(release, work);
        }
    }

    /// Reports a plan (the verdicts of the first `offered` builds, then every action) and
    /// applies it unless this is a dry run. The work a change owes the kernel is recorded
    /// before the first link changes. A failed step is reported and costs only that step.
    fn commit(&mut self, release: &str, planned: Planned, offered: usize) {
        self.report(&planned.plan, &planned.members, offered);
        for blocked in &planned.plan.blocked {
            let module = &self.modules[planned.members[blocked.build]].path;
            let what = match blocked.by {
                Obstacle::NotALink => "not a symlink",
                Obstacle::UnreadableLink => "a link to something that is not a readable module",
            };
            let line = format!(
                "{}: {what}, left alone; /{module} is not linked into kernel {release}",
                self.base().join(&blocked.link).display()
            );
            self.problem(&line);
        }
        if !planned.plan.changes_anything() {
            return;
        }
        let work = self.work_for_a_change();
        self.owe(release, work);
        if self.config.dry_run {
            return;
        }
        if !self.record(release) {
            return;
        }
        let (_, failed) = apply(self.base(), release, &planned.plan.actions);
        for failure in failed {
            self.problem(&failure);
        }
    }

    /// Writes what the kernel is owed into its record, if that changes the record. `false`
    /// (after a reported problem) when it cannot be written: then nothing may change there.
    fn record(&mut self, release: &str) -> bool {
        let owed = self.owed.get(release).copied().unwrap_or_default();
        if self.recorded.get(release).copied().unwrap_or_default() == owed {
            return true;
        }
        match record_owed(self.base(), release, owed) {
            Ok(()) => {
                self.recorded.insert(release.to_owned(), owed);
                true
            }
            Err(err) => {
                self.problem(&err);
                false
            }
        }
    }

    fn existing_link(&mut self, found: &FoundLink, members: &mut Vec<usize>) -> ExistingLink {
        let base = self.base().to_string_lossy().into_owned();
        let resolved = resolve_link(&found.link, &found.target_text, &base);
        let leads_to = match resolved {
            Some(path) if self.base().join(&path).is_file() => match self.load(&path, false) {
                Some(module) => LinkedModule::Build(member_index(members, module)),
                None => {
                    let link = self.base().join(&found.link);
                    self.warn(&format!(
                        "{}: target cannot be read as a module, left alone",
                        link.display()
                    ));
                    LinkedModule::Unreadable
                }
            },
            _ => LinkedModule::Gone,
        };
        ExistingLink {
            link: found.link.clone(),
            target_text: found.target_text.clone(),
            leads_to,
        }
    }

    fn report(&mut self, plan: &KernelPlan, members: &[usize], offered: usize) {
        if !self.config.verbose {
            return;
        }
        let label = |member: usize| {
            let module = &self.modules[members[member]];
            format!("/{} (kernel {})", module.path, module.file.built_for)
        };
        let mut lines = Vec::new();
        if offered > 0 || plan.changes_anything() {
            lines.extend(report::kernel_notes(plan));
        }
        for (index, status) in plan.statuses.iter().enumerate().take(offered) {
            let module = &self.modules[members[index]];
            let file_name = module.path.rsplit('/').next().unwrap_or(&module.path);
            let build = BuildLabel {
                file_name,
                built_for: &module.file.built_for,
            };
            lines.extend(report::status_lines(&build, &plan.release, status, label));
        }
        for action in &plan.actions {
            lines.extend(report::action_lines(action, &plan.release, label));
        }
        for line in lines {
            self.say(&line);
        }
    }

    /// The bash tool's note for a removed module whose link in this kernel points elsewhere.
    fn say_skipped_symlinks(&mut self, release: &str, paths: &[String]) {
        if !self.config.verbose {
            return;
        }
        let Ok(links) = read_links(self.base(), release) else {
            return;
        };
        let base = self.base().to_string_lossy().into_owned();
        for found in links {
            let file_name = found.link.rsplit('/').next().unwrap_or_default();
            let resolved = resolve_link(&found.link, &found.target_text, &base);
            let same_file = paths.iter().any(|p| p.ends_with(&format!("/{file_name}")));
            if same_file && !paths.iter().any(|p| Some(p) == resolved.as_ref()) {
                let line = format!(
                    "Skipping symlink {}",
                    self.base().join(&found.link).display()
                );
                self.say(&line);
            }
        }
    }

    /// Every readable module in `extra/` of every kernel directory but one.
    fn extra_builds_except(&mut self, release: &str) -> Vec<usize> {
        let mut builds = Vec::new();
        let paths = self.extra_modules_except(release);
        self.read_modules_ahead(&paths);
        for path in paths {
            builds.extend(self.load(&path, true));
        }
        builds
    }

    /// Reads the modules at these base-relative paths on all cores, for [`Session::load`].
    fn read_modules_ahead(&mut self, paths: &[String]) {
        let known: HashSet<&str> = self.modules.iter().map(|m| m.path.as_str()).collect();
        let absolute: Vec<PathBuf> = paths
            .iter()
            .filter(|path| !known.contains(path.as_str()))
            .map(|path| self.base().join(path))
            .filter(|path| !self.modules_read_ahead.contains_key(path))
            .collect();
        let read = read_modules(&absolute);
        self.modules_read_ahead
            .extend(absolute.into_iter().zip(read));
    }

    /// Loads these kernels on all cores, for [`Session::plan_for`].
    fn read_kernels_ahead(&mut self, releases: &BTreeSet<String>) {
        let releases: Vec<String> = releases.iter().cloned().collect();
        let read = load_kernels(self.base(), &releases);
        self.kernels_read_ahead
            .extend(releases.into_iter().zip(read));
    }

    /// Base-relative paths of every module in `extra/` of every kernel directory but one.
    fn extra_modules_except(&self, release: &str) -> Vec<String> {
        let modules_dir = self.base().join("lib/modules");
        let Ok(entries) = std::fs::read_dir(&modules_dir) else {
            return Vec::new();
        };
        let mut releases: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name != release)
            .collect();
        releases.sort();
        releases
            .iter()
            .flat_map(|name| module_files(&modules_dir.join(name).join("extra")))
            .filter_map(|path| {
                path.strip_prefix(self.base())
                    .ok()
                    .map(|p| p.to_string_lossy().into_owned())
            })
            .collect()
    }

    /// The modules' own kernels whose indexes do not match them yet (the bash tool always runs
    /// depmod there; we do when it has something to do).
    fn stale_own_kernels(
        &self,
        installed: &BTreeSet<String>,
        paths: &[String],
        offered: &[usize],
    ) -> BTreeSet<String> {
        let mut owners: Vec<(String, String)> = offered
            .iter()
            .map(|&m| {
                (
                    self.modules[m].path.clone(),
                    self.modules[m].file.built_for.clone(),
                )
            })
            .collect();
        owners.extend(
            paths
                .iter()
                .map(|p| (p.clone(), release_from_path(p).to_owned())),
        );
        let mut listings: HashMap<String, DepListing> = HashMap::new();
        owners
            .into_iter()
            .filter(|(_, release)| installed.contains(release))
            .filter(|(path, release)| {
                let below = path
                    .strip_prefix(&format!("lib/modules/{release}/"))
                    .or_else(|| path.strip_prefix(&format!("usr/lib/modules/{release}/")));
                let listing = listings
                    .entry(release.clone())
                    .or_insert_with(|| DepListing::read(self.base(), release));
                below.is_some_and(|below| listing.stale_for(below))
            })
            .map(|(_, release)| release)
            .collect()
    }

    /// depmod, then initramfs, for every installed kernel that is owed them. Each piece of
    /// work is recorded before it starts and cleared from the record once it succeeded, so a
    /// kill or a failure leaves it to the next run.
    fn finish(&mut self, installed: &BTreeSet<String>) {
        let owed: Vec<(String, Owed)> = std::mem::take(&mut self.owed).into_iter().collect();
        let mut pending = BTreeMap::new();
        for (release, work) in owed {
            if installed.contains(&release) {
                pending.insert(release, work);
            } else if work.depmod {
                self.say(&format!(
                    "Skipping depmod for non-installed kernel {release}"
                ));
            }
        }
        self.owed = pending;
        let releases: Vec<String> = self.owed.keys().cloned().collect();
        if !self.config.dry_run {
            for release in &releases {
                self.record(release);
            }
        }
        let depmods: Vec<(&String, Vec<String>)> = releases
            .iter()
            .filter(|release| self.owed[*release].depmod)
            .map(|release| (release, depmod_command(self.base(), release)))
            .collect();
        for (_, command) in &depmods {
            self.say(&command.join(" "));
        }
        if !self.config.dry_run {
            let commands: Vec<Vec<String>> = depmods.iter().map(|(_, c)| c.clone()).collect();
            let _ = self.out.flush();
            run_depmods(
                &commands,
                ChildrenOutput::ours(),
                |index, result| match result {
                    Ok(()) => self.done(depmods[index].0, |owed| owed.depmod = false),
                    Err(err) => self.problem(&err),
                },
            );
        }
        if self.config.no_initramfs {
            return;
        }
        let how = match &self.config.check_initramfs_prog {
            Some(words) => Regenerator::CheckProgram(words.join(" ")),
            None => Regenerator::Dracut(self.config.dracut.clone()),
        };
        let images: Vec<String> = releases
            .iter()
            .filter(|release| self.owed[*release].initramfs)
            .cloned()
            .collect();
        if self.config.dry_run {
            for release in &images {
                self.say(&format!("Would check the initramfs of kernel {release}"));
            }
            return;
        }
        let _ = self.out.flush();
        let base = self.base().to_owned();
        refresh_all(
            &base,
            &images,
            &how,
            ChildrenOutput::ours(),
            |index, result| {
                let release = &images[index];
                match result {
                    Ok(outcome) => {
                        let image = image_path(&base, release);
                        let line = match outcome {
                            InitramfsOutcome::NoImage | InitramfsOutcome::CheckProgramRan => None,
                            InitramfsOutcome::Unchanged => {
                                Some(format!("{}: modules unchanged, kept", image.display()))
                            }
                            InitramfsOutcome::Replaced => {
                                Some(format!("{}: modules changed, replaced", image.display()))
                            }
                            InitramfsOutcome::ReplacedUndecodable(why) => Some(format!(
                                "{}: could not be read ({why}), replaced",
                                image.display()
                            )),
                        };
                        if let Some(line) = line {
                            self.say(&line);
                        }
                        self.done(release, |owed| owed.initramfs = false);
                    }
                    Err(err) => self.problem(&err),
                }
            },
        );
    }

    /// Marks a piece of a kernel's owed work done, in memory and in its record.
    fn done(&mut self, release: &str, piece: impl FnOnce(&mut Owed)) {
        if let Some(owed) = self.owed.get_mut(release) {
            piece(owed);
        }
        self.record(release);
    }
}

fn holder_text(holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!("process {pid}"),
        None => "another process".to_owned(),
    }
}

/// The position of `module` among the kernel's builds, adding it if it is not there yet.
fn member_index(members: &mut Vec<usize>, module: usize) -> usize {
    match members.iter().position(|m| *m == module) {
        Some(index) => index,
        None => {
            members.push(module);
            members.len() - 1
        }
    }
}

/// Used by error reporting for kernels without symvers.
pub fn describe_lookup(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

impl From<LoadError> for Error {
    fn from(err: LoadError) -> Self {
        Error::Load(err)
    }
}
