//! One run: read the input and the tree, plan each kernel with the pure core, report, apply
//! under the lock, then depmod and initramfs for the kernels that changed.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::config::{Config, Mode};
use crate::core::paths::{misplaced_release, normalize, release_from_path, resolve_link};
use crate::core::plan::{Build, ExistingLink, KernelPlan, LinkedModule, plan_kernel};
use crate::error::Error;
use crate::report::{self, BuildLabel};
use crate::shell::depmod::{depmod_command, indexes_stale_for, run_depmod};
use crate::shell::initramfs::{Outcome as InitramfsOutcome, Regenerator, image_path, refresh};
use crate::shell::links::{FoundLink, apply, empty_weak_updates, read_links};
use crate::shell::load::{
    LoadError, ModuleFile, installed_kernels, load_kernel, module_files, symvers_candidates,
    symvers_file,
};
use crate::shell::lock::lock_base;

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
    modules: Vec<Loaded>,
    by_identity: HashMap<PathBuf, Option<usize>>,
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
        modules: Vec::new(),
        by_identity: HashMap::new(),
    };
    match &config.mode {
        Mode::AddModules => session.add_modules(read_paths(input, config)?)?,
        Mode::RemoveModules => session.remove_modules(read_paths(input, config)?)?,
        Mode::AddKernel(release) => session.add_kernel(release)?,
        Mode::RemoveKernel(release) => session.remove_kernel(release)?,
    }
    Ok(Outcome {
        problems: session.problems,
    })
}

/// Stdin paths made base-relative: blank lines skipped, relative ones taken from the current
/// directory, the base prefix optional, duplicates dropped.
fn read_paths(input: impl BufRead, config: &Config) -> Result<Vec<String>, Error> {
    let cwd = std::env::current_dir().map_err(|source| Error::Io {
        path: PathBuf::from("."),
        source,
    })?;
    let mut paths = Vec::new();
    for line in input.lines() {
        let line = line.map_err(|source| Error::Io {
            path: PathBuf::from("<stdin>"),
            source,
        })?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some(absolute) = normalize(&cwd.join(line).to_string_lossy()) else {
            continue;
        };
        let absolute = PathBuf::from(format!("/{absolute}"));
        let inside = absolute.strip_prefix(&config.base).unwrap_or(&absolute);
        let path = inside.to_string_lossy().trim_start_matches('/').to_owned();
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    Ok(paths)
}

impl Session<'_> {
    fn say(&mut self, line: &str) {
        if self.config.verbose {
            let _ = writeln!(self.out, "{line}");
        }
    }

    /// A problem with a file: one line on stderr, and the exit status will be 1.
    fn problem(&mut self, err: &dyn std::fmt::Display) {
        eprintln!("weak-modules: {err}");
        self.problems += 1;
    }

    /// Something the user should know that does not fail the run.
    fn warn(&self, message: &str) {
        eprintln!("weak-modules: warning: {message}");
    }

    fn base(&self) -> &Path {
        &self.config.base
    }

    /// The installed kernels (those with a symvers file), read once per run, in name order.
    fn installed(&self) -> Result<BTreeSet<String>, Error> {
        Ok(installed_kernels(self.base())?.into_iter().collect())
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
        let _lock = lock_base(self.base(), !self.config.dry_run)?;
        let installed = self.installed()?;
        let offered: Vec<usize> = paths.iter().filter_map(|p| self.load(p, true)).collect();
        for &module in &offered {
            let Loaded { path, file } = &self.modules[module];
            if let Some(directory) = misplaced_release(path, &file.built_for) {
                let named = match directory {
                    "" => "no kernel".to_owned(),
                    release => format!("kernel {release}"),
                };
                self.warn(&format!(
                    "{}: its vermagic says kernel {}, but its directory names {named}; \
                     it is linked as weak-updates/{path}",
                    self.base().join(path).display(),
                    file.built_for,
                ));
            }
        }
        let mut touched = self.stale_own_kernels(&installed, &paths, &offered);
        for release in &installed {
            if self.reconcile(release, &offered)? {
                touched.insert(release.clone());
            }
        }
        self.finish(&installed, touched)
    }

    fn remove_modules(&mut self, paths: Vec<String>) -> Result<(), Error> {
        if paths.is_empty() {
            return Ok(());
        }
        let _lock = lock_base(self.base(), !self.config.dry_run)?;
        let installed = self.installed()?;
        let mut touched = self.stale_own_kernels(&installed, &paths, &[]);
        // A kernel that lost one of its own modules may now take a module that one refused (a
        // GPL-only or namespaced export, a same-name module): it is checked against every
        // installed build, as --add-kernel would.
        let lost_own: BTreeSet<String> = paths
            .iter()
            .filter(|path| !self.base().join(path).exists())
            .map(|path| release_from_path(path).to_owned())
            .collect();
        for release in &installed {
            self.say_skipped_symlinks(release, &paths)?;
            let offered = if lost_own.contains(release) {
                self.extra_builds_except(release)
            } else {
                Vec::new()
            };
            let Some(planned) = self.plan_for(release, &offered)? else {
                continue;
            };
            if self.commit(release, planned, 0) {
                touched.insert(release.clone());
            }
        }
        self.finish(&installed, touched)
    }

    fn add_kernel(&mut self, release: &str) -> Result<(), Error> {
        if symvers_file(self.base(), release).is_none() {
            return Err(Error::NoSymvers {
                release: release.to_owned(),
                looked_in: symvers_candidates(self.base(), release),
            });
        }
        let _lock = lock_base(self.base(), !self.config.dry_run)?;
        let installed = self.installed()?;
        let offered = self.extra_builds_except(release);
        let mut touched = BTreeSet::new();
        if self.reconcile(release, &offered)? {
            touched.insert(release.to_owned());
        }
        self.finish(&installed, touched)
    }

    fn remove_kernel(&mut self, release: &str) -> Result<(), Error> {
        let _lock = lock_base(self.base(), !self.config.dry_run)?;
        if self.config.dry_run {
            for found in read_links(self.base(), release)? {
                self.say(&format!("rm -f {}", found.link));
            }
            return Ok(());
        }
        for link in empty_weak_updates(self.base(), release)? {
            self.say(&format!("rm -f {link}"));
        }
        Ok(())
    }

    /// Plans, reports and (unless dry run) applies one kernel. Returns whether it changed.
    fn reconcile(&mut self, release: &str, offered: &[usize]) -> Result<bool, Error> {
        match self.plan_for(release, offered)? {
            Some(planned) => Ok(self.commit(release, planned, offered.len())),
            None => Ok(false),
        }
    }

    /// The plan for one kernel given the builds offered to it; `None` when the kernel cannot
    /// be read (reported).
    fn plan_for(&mut self, release: &str, offered: &[usize]) -> Result<Option<Planned>, Error> {
        let tree = match load_kernel(self.base(), release) {
            Ok(tree) => tree,
            Err(err) => {
                self.problem(&err);
                return Ok(None);
            }
        };
        for err in &tree.unreadable {
            self.problem(err);
        }
        let found = read_links(self.base(), release)?;
        let mut members: Vec<usize> = offered.to_vec();
        let existing: Vec<ExistingLink> = found
            .iter()
            .map(|link| self.existing_link(link, &mut members))
            .collect();
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
        let plan = plan_kernel(&tree.abi(), &builds, &existing, self.config.live_system());
        Ok(Some(Planned { plan, members }))
    }

    /// Reports a plan (the verdicts of the first `offered` builds, then every action) and
    /// applies it unless this is a dry run. Returns whether the kernel changed. A failed step
    /// is reported and ends this kernel's changes; what was done before it stays done.
    fn commit(&mut self, release: &str, planned: Planned, offered: usize) -> bool {
        self.report(&planned.plan, &planned.members, offered);
        if self.config.dry_run || !planned.plan.changes_anything() {
            return planned.plan.changes_anything();
        }
        match apply(self.base(), release, &planned.plan.actions) {
            Ok(()) => true,
            Err(stopped) => {
                self.problem(&stopped);
                stopped.done > 0
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
    fn say_skipped_symlinks(&mut self, release: &str, paths: &[String]) -> Result<(), Error> {
        if !self.config.verbose {
            return Ok(());
        }
        let base = self.base().to_string_lossy().into_owned();
        for found in read_links(self.base(), release)? {
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
        Ok(())
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

    /// depmod, then initramfs, for every kernel touched.
    fn finish(
        &mut self,
        installed: &BTreeSet<String>,
        touched: BTreeSet<String>,
    ) -> Result<(), Error> {
        for release in &touched {
            if !installed.contains(release) {
                self.say(&format!(
                    "Skipping depmod for non-installed kernel {release}"
                ));
                continue;
            }
            let command = depmod_command(self.base(), release);
            self.say(&command.join(" "));
            if !self.config.dry_run
                && let Err(err) = run_depmod(&command)
            {
                self.problem(&err);
            }
        }
        if self.config.no_initramfs {
            return Ok(());
        }
        let how = match &self.config.check_initramfs_prog {
            Some(words) => Regenerator::CheckProgram(words.join(" ")),
            None => Regenerator::Dracut(self.config.dracut.clone()),
        };
        for release in touched.iter().filter(|r| installed.contains(*r)) {
            if self.config.dry_run {
                self.say(&format!("Would check the initramfs of kernel {release}"));
                continue;
            }
            match refresh(self.base(), release, &how) {
                Ok(outcome) => {
                    let image = image_path(self.base(), release);
                    let line = match outcome {
                        InitramfsOutcome::NoImage => continue,
                        InitramfsOutcome::Unchanged => {
                            format!("{}: modules unchanged, kept", image.display())
                        }
                        InitramfsOutcome::Replaced => {
                            format!("{}: modules changed, replaced", image.display())
                        }
                        InitramfsOutcome::ReplacedUndecodable(why) => {
                            format!("{}: could not be read ({why}), replaced", image.display())
                        }
                        InitramfsOutcome::CheckProgramRan => continue,
                    };
                    self.say(&line);
                }
                Err(err) => self.problem(&err),
            }
        }
        Ok(())
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
