//! One run: read the input and the tree, plan each kernel with the pure core, report, apply
//! under the lock, then depmod and initramfs for the kernels that are owed them: those whose
//! links changed, those whose indexes do not match their tree, and those an interrupted or
//! failed run left a record for.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::config::{Config, Mode};
use crate::core::audit::{KernelState, audit};
use crate::core::index::{IndexMismatch, index_mismatch};
use crate::core::paths::{normalize, release_from_path, resolve_link};
use crate::core::plan::{
    Action, Build, ExistingLink, KernelPlan, LinkedModule, Obstacle, Status, UnlinkReason,
    plan_kernel,
};
use crate::error::Error;
use crate::report::explain::{self, Row, Verdict as ExplainedVerdict};
use crate::report::json::JsonLines;
use crate::report::text::Text;
use crate::report::{BuildRef, Event, Fit, ImageOutcome, Reporter, UnlinkWhy, reason_views};
use crate::shell::depmod::{depmod_command, indexes_stale_for, read_modules_dep, run_depmod};
use crate::shell::initramfs::{
    Outcome as InitramfsOutcome, Regenerator, clear_leftover_images, image_path, refresh,
};
use crate::shell::input::read_lines;
use crate::shell::links::{
    FoundLink, WeakUpdates, apply, clear_leftovers, empty_weak_updates, read_links,
    read_weak_updates,
};
use crate::shell::load::{
    KernelTree, LoadError, ModuleFile, installed_kernels, load_kernel, module_files,
    symvers_candidates, symvers_file,
};
use crate::shell::lock::{RunLock, lock_exclusive, lock_shared_if_free};
use crate::shell::owed::{Owed, read_owed, record_owed};

/// How a run ended, when it got to the end.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Problems reported on the way (unreadable modules, failed steps); each makes the exit
    /// status 1 once the rest is done.
    pub problems: usize,
    /// What `--check` found out of order.
    pub findings: usize,
}

/// One kernel's plan and the modules its build indices refer to.
struct Planned {
    plan: KernelPlan,
    members: Vec<usize>,
    existing: Vec<ExistingLink>,
    /// How the kernel's indexes differ from its tree, if they do.
    index: Option<IndexMismatch>,
    /// Temporary names of ours left in `weak-updates/` (cleared unless this is a dry run).
    leftovers: Vec<String>,
}

/// A module file read once per run, wherever it is referenced from.
struct Loaded {
    /// Relative to the base, as first named.
    path: String,
    file: ModuleFile,
}

struct Session<'c> {
    config: &'c Config,
    reporter: Box<dyn Reporter + 'c>,
    problems: usize,
    findings: usize,
    /// Every line printed on stderr, so that a problem met twice is reported once.
    said_on_stderr: HashSet<String>,
    modules: Vec<Loaded>,
    by_identity: HashMap<PathBuf, Option<usize>>,
    /// Work each kernel is owed by this run or by one before it.
    owed: BTreeMap<String, Owed>,
    /// What each kernel's record on disk says.
    recorded: BTreeMap<String, Owed>,
}

pub fn run<'c>(
    config: &'c Config,
    input: impl BufRead,
    out: impl Write + 'c,
) -> Result<Outcome, Error> {
    let mut session = Session {
        config,
        reporter: if config.json {
            Box::new(JsonLines::new(out))
        } else {
            Box::new(Text::new(out, config.verbose))
        },
        problems: 0,
        findings: 0,
        said_on_stderr: HashSet::new(),
        modules: Vec::new(),
        by_identity: HashMap::new(),
        owed: BTreeMap::new(),
        recorded: BTreeMap::new(),
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
        Mode::Check(releases) => session.check(releases)?,
        Mode::Sync => session.sync()?,
        Mode::Explain => {
            let paths = session.read_paths(input)?;
            session.explain(paths)?;
        }
    }
    session.tell(Event::Summary {
        problems: session.problems,
        findings: session.findings,
    });
    Ok(Outcome {
        problems: session.problems,
        findings: session.findings,
    })
}

impl Session<'_> {
    fn tell(&mut self, event: Event) {
        self.reporter.report(&event);
    }

    /// A problem with a file: one diagnostic per run, and the exit status will be 1.
    fn problem(&mut self, err: &dyn std::fmt::Display) {
        let message = err.to_string();
        if self.said_on_stderr.insert(message.clone()) {
            tracing::error!("{message}");
            self.problems += 1;
            self.tell(Event::Problem { message });
        }
    }

    /// Something the user should know that does not fail the run; once per run.
    fn warn(&mut self, message: &str) {
        if self.said_on_stderr.insert(format!("warning: {message}")) {
            tracing::warn!("{message}");
            self.tell(Event::Warning {
                message: message.to_owned(),
            });
        }
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
                tracing::info!(
                    "waiting for the lock on {}, held by {}",
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
                self.tell(Event::Owed {
                    kernel: release.clone(),
                    work: owed.describe(),
                });
                self.recorded.insert(release.clone(), owed);
                self.owe(release, owed);
            }
            if !self.config.dry_run {
                for cleared in clear_leftover_images(self.base(), release) {
                    self.tell(Event::Cleared {
                        path: cleared.display().to_string(),
                    });
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
        let identity = std::fs::canonicalize(&absolute).unwrap_or(absolute.clone());
        if let Some(known) = self.by_identity.get(&identity) {
            return *known;
        }
        let loaded = match ModuleFile::read(&absolute) {
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
        let offered: Vec<usize> = paths.iter().filter_map(|p| self.load(p, true)).collect();
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
                        self.tell(Event::Removed { link: found.link });
                    }
                }
                Err(err) => self.problem(&err),
            }
        } else {
            match empty_weak_updates(self.base(), release) {
                Ok(removed) => {
                    for link in removed {
                        self.tell(Event::Removed { link });
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

    /// The audit: every kernel named (or installed) planned as `--add-kernel` would plan it,
    /// and every change that plan would make, or work an interrupted run left, is a finding.
    fn check(&mut self, named: &[String]) -> Result<(), Error> {
        let _lock = self.lock()?;
        let installed = self.installed()?;
        let releases: Vec<String> = if named.is_empty() {
            installed.iter().cloned().collect()
        } else {
            named.to_vec()
        };
        let mut kernels_out_of_order = 0;
        for release in &releases {
            if !installed.contains(release) {
                self.problem(&format!(
                    "kernel {release} is not installed (no symvers file)"
                ));
                continue;
            }
            let offered = self.extra_builds_except(release);
            let Some(planned) = self.plan_for(release, &offered) else {
                continue;
            };
            let builds: Vec<&str> = planned
                .members
                .iter()
                .map(|&m| self.modules[m].path.as_str())
                .collect();
            let linked: Vec<(String, usize)> = planned
                .existing
                .iter()
                .filter_map(|link| match link.leads_to {
                    LinkedModule::Build(build) => Some((link.link.clone(), build)),
                    _ => None,
                })
                .collect();
            let owed = self.owed.get(release).map(|owed| owed.describe());
            let state = KernelState {
                builds: &builds,
                linked: &linked,
                index: planned.index.as_ref(),
                owed,
                leftovers: &planned.leftovers,
            };
            let (findings, notes) = audit(&planned.plan, &state);
            if findings.is_empty() {
                self.tell(Event::InOrder {
                    kernel: release.clone(),
                });
            } else {
                kernels_out_of_order += 1;
            }
            self.findings += findings.len();
            for finding in findings {
                self.tell(Event::Finding {
                    kernel: release.clone(),
                    finding: finding.to_string(),
                });
            }
            for note in notes {
                self.tell(Event::Note {
                    kernel: release.clone(),
                    note,
                });
            }
        }
        self.tell(Event::CheckSummary {
            kernels: releases.len(),
            findings: self.findings,
            kernels_out_of_order,
        });
        Ok(())
    }

    /// For each module given, every installed kernel's verdict, planned as `--add-modules`
    /// would plan it: a table, or with `--json` the verdicts and the links that would change.
    fn explain(&mut self, paths: Vec<String>) -> Result<(), Error> {
        let _lock = self.lock()?;
        let installed = self.installed()?;
        let offered: Vec<usize> = paths.iter().filter_map(|p| self.load(p, true)).collect();
        let mut rows: Vec<Vec<Row>> = vec![Vec::new(); offered.len()];
        for release in &installed {
            let Some(planned) = self.plan_for(release, &offered) else {
                continue;
            };
            if self.config.json {
                self.report(&planned.plan, &planned.members, offered.len());
                continue;
            }
            for (index, row) in rows.iter_mut().enumerate() {
                let verdict = self.explained(&planned, index);
                row.push(Row {
                    kernel: release.clone(),
                    verdict,
                });
            }
        }
        if !self.config.json {
            for (rows, &module) in rows.iter().zip(&offered) {
                let module = &self.modules[module];
                let path = format!("/{}", module.path);
                let table = explain::table(&path, &module.file.built_for, rows, self.config.colour);
                self.tell(Event::Explanation { table });
            }
        }
        Ok(())
    }

    /// How build `index` of a plan fares, for the `--explain` table.
    fn explained(&self, planned: &Planned, index: usize) -> ExplainedVerdict {
        let release = &planned.plan.release;
        let short = |link: &str| {
            link.strip_prefix(&format!("lib/modules/{release}/"))
                .unwrap_or(link)
                .to_owned()
        };
        match &planned.plan.statuses[index] {
            Status::OwnKernel => ExplainedVerdict::Own,
            Status::Fits { shadowed } => {
                let new = planned.plan.actions.iter().find_map(|action| match action {
                    Action::Link { link, build, .. } if *build == index => {
                        Some((short(link), false))
                    }
                    _ => None,
                });
                let present = planned
                    .existing
                    .iter()
                    .find(|link| link.leads_to == LinkedModule::Build(index))
                    .map(|link| (short(&link.link), true));
                ExplainedVerdict::Fits {
                    link: new.or(present),
                    shadowed: *shadowed,
                }
            }
            Status::DoesNotFit(reasons) => ExplainedVerdict::DoesNotFit(reason_views(reasons)),
            Status::NewerBuildChosen { chosen } => ExplainedVerdict::NewerBuild {
                chosen: format!("/{}", self.modules[planned.members[*chosen]].path),
            },
        }
    }

    /// Every installed kernel planned as `--add-kernel` would plan it, in one run sharing every
    /// module read: afterwards `--check` finds nothing.
    fn sync(&mut self) -> Result<(), Error> {
        let _lock = self.lock()?;
        let installed = self.installed()?;
        for release in &installed {
            let offered = self.extra_builds_except(release);
            self.reconcile(release, &offered);
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
        let tree = match load_kernel(self.base(), release) {
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
        let index = self.index_mismatch(&tree, &existing);
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
        Some(Planned {
            plan,
            members,
            existing,
            index,
            leftovers: weak_updates.leftovers,
        })
    }

    /// Temporary names a killed run left are never links; a run that changes things clears
    /// them.
    fn clear_leftovers(&mut self, weak_updates: &WeakUpdates) {
        if self.config.dry_run || weak_updates.leftovers.is_empty() {
            return;
        }
        match clear_leftovers(self.base(), &weak_updates.leftovers) {
            Ok(()) => {
                for leftover in &weak_updates.leftovers {
                    let path = self.base().join(leftover).display().to_string();
                    self.tell(Event::Cleared { path });
                }
            }
            Err(err) => self.problem(&err),
        }
    }

    /// How a kernel's `modules.dep` differs from its tree, if it does: an earlier run may have
    /// been killed before its depmod.
    fn index_mismatch(
        &self,
        tree: &KernelTree,
        existing: &[ExistingLink],
    ) -> Option<IndexMismatch> {
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
        index_mismatch(modules_dep.as_deref(), &present, &unreadable, any_module)
    }

    /// Reports a plan (the verdicts of the first `offered` builds, then every action) and
    /// applies it unless this is a dry run. The work a change owes the kernel is recorded
    /// before the first link changes. A failed step is reported and costs only that step.
    fn commit(&mut self, release: &str, planned: Planned, offered: usize) {
        if let Some(mismatch) = &planned.index {
            self.tell(Event::IndexMismatch {
                kernel: release.to_owned(),
                mismatch: mismatch.to_string(),
            });
            let work = self.work_for_a_change();
            self.owe(release, work);
        }
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
        let build = |member: usize| {
            let module = &self.modules[members[member]];
            BuildRef {
                path: format!("/{}", module.path),
                built_for: module.file.built_for.clone(),
            }
        };
        let mut events = Vec::new();
        if (offered > 0 || plan.changes_anything()) && plan.struct_module_unchecked {
            events.push(Event::KernelNote {
                kernel: plan.release.clone(),
                note: format!(
                    "Kernel {} ships no module to read the size of struct module from; it is not checked",
                    plan.release
                ),
            });
        }
        for (index, status) in plan.statuses.iter().enumerate().take(offered) {
            let (fit, shadowed, reasons, chosen) = match status {
                Status::OwnKernel => continue,
                Status::Fits { shadowed } => (Fit::Fits, *shadowed, Vec::new(), None),
                Status::DoesNotFit(reasons) => {
                    (Fit::DoesNotFit, false, reason_views(reasons), None)
                }
                Status::NewerBuildChosen { chosen } => (
                    Fit::NewerBuildChosen,
                    false,
                    Vec::new(),
                    Some(build(*chosen)),
                ),
            };
            events.push(Event::Verdict {
                kernel: plan.release.clone(),
                build: build(index),
                fit,
                shadowed,
                reasons,
                chosen,
            });
        }
        for action in &plan.actions {
            let kernel = plan.release.clone();
            events.push(match action {
                Action::Link {
                    link,
                    target,
                    replacing,
                    ..
                } => Event::Link {
                    kernel,
                    link: link.clone(),
                    target: target.clone(),
                    replacing: replacing.clone(),
                },
                Action::Unlink {
                    link,
                    target_text,
                    why,
                } => {
                    let (why, reasons, superseded_by) = match why {
                        UnlinkReason::TargetGone => (UnlinkWhy::TargetGone, Vec::new(), None),
                        UnlinkReason::DoesNotFit(reasons) => {
                            (UnlinkWhy::DoesNotFit, reason_views(reasons), None)
                        }
                        UnlinkReason::Superseded { by } => {
                            (UnlinkWhy::Superseded, Vec::new(), Some(build(*by)))
                        }
                        UnlinkReason::OwnKernel => (UnlinkWhy::OwnKernel, Vec::new(), None),
                        UnlinkReason::Duplicate { .. } => (UnlinkWhy::Duplicate, Vec::new(), None),
                    };
                    Event::Unlink {
                        kernel,
                        link: link.clone(),
                        target: target_text.clone(),
                        why,
                        reasons,
                        superseded_by,
                    }
                }
            });
        }
        for event in events {
            self.tell(event);
        }
    }

    /// The bash tool's note for a removed module whose link in this kernel points elsewhere.
    fn say_skipped_symlinks(&mut self, release: &str, paths: &[String]) {
        if !self.config.verbose && !self.config.json {
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
                let path = self.base().join(&found.link).display().to_string();
                self.tell(Event::SkippedSymlink { path });
            }
        }
    }

    /// Every readable module in `extra/` of every kernel directory but one.
    fn extra_builds_except(&mut self, release: &str) -> Vec<usize> {
        let mut builds = Vec::new();
        for path in self.extra_modules_except(release) {
            builds.extend(self.load(&path, true));
        }
        builds
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
        owners
            .into_iter()
            .filter(|(_, release)| installed.contains(release))
            .filter(|(path, release)| {
                let below = path
                    .strip_prefix(&format!("lib/modules/{release}/"))
                    .or_else(|| path.strip_prefix(&format!("usr/lib/modules/{release}/")));
                below.is_some_and(|below| indexes_stale_for(self.base(), release, below))
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
                self.tell(Event::DepmodSkipped { kernel: release });
            }
        }
        self.owed = pending;
        let releases: Vec<String> = self.owed.keys().cloned().collect();
        if !self.config.dry_run {
            for release in &releases {
                self.record(release);
            }
        }
        for release in &releases {
            if !self.owed[release].depmod {
                continue;
            }
            let command = depmod_command(self.base(), release);
            self.tell(Event::Depmod {
                kernel: release.clone(),
                command: command.clone(),
            });
            if self.config.dry_run {
                continue;
            }
            match run_depmod(&command) {
                Ok(()) => self.done(release, |owed| owed.depmod = false),
                Err(err) => self.problem(&err),
            }
        }
        if self.config.no_initramfs {
            return;
        }
        let how = match &self.config.check_initramfs_prog {
            Some(words) => Regenerator::CheckProgram(words.join(" ")),
            None => Regenerator::Dracut(self.config.dracut.clone()),
        };
        for release in &releases {
            if !self.owed[release].initramfs {
                continue;
            }
            if self.config.dry_run {
                self.tell(Event::InitramfsPending {
                    kernel: release.clone(),
                });
                continue;
            }
            match refresh(self.base(), release, &how) {
                Ok(outcome) => {
                    let image = image_path(self.base(), release).display().to_string();
                    let (outcome, detail) = match outcome {
                        InitramfsOutcome::NoImage | InitramfsOutcome::CheckProgramRan => {
                            (None, None)
                        }
                        InitramfsOutcome::Unchanged => (Some(ImageOutcome::Unchanged), None),
                        InitramfsOutcome::Replaced => (Some(ImageOutcome::Replaced), None),
                        InitramfsOutcome::ReplacedUndecodable(why) => (
                            Some(ImageOutcome::ReplacedUndecodable),
                            Some(why.to_string()),
                        ),
                    };
                    if let Some(outcome) = outcome {
                        self.tell(Event::Initramfs {
                            kernel: release.clone(),
                            image,
                            outcome,
                            detail,
                        });
                    }
                    self.done(release, |owed| owed.initramfs = false);
                }
                Err(err) => self.problem(&err),
            }
        }
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
