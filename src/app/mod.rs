//! One run: read the input and the tree, plan each kernel with the pure core, report, apply
//! under the lock, then depmod and initramfs for the kernels that are owed them: those whose
//! links changed, those whose indexes do not match their tree, and those an interrupted or
//! failed run left a record for.

mod audit;
mod finish;
mod kernel;
mod modes;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::config::{Config, Mode};
use crate::core::audit::{KernelState, audit};
use crate::core::index::{IndexMismatch, index_mismatch};
use crate::core::offer::{KernelCase, Run, offer};
use crate::core::paths::{
    below_kernel, misplaced_release, normalize, release_from_path, resolve_link,
};
use crate::core::plan::{
    Action, Build, ExistingLink, KernelPlan, LinkedModule, Status, UnlinkReason, plan_kernel,
};
use crate::error::Error;
use crate::report::explain::{self, Row, Verdict as ExplainedVerdict};
use crate::report::json::JsonLines;
use crate::report::text::Text;
use crate::report::{BuildRef, Event, Fit, ImageOutcome, Reporter, UnlinkWhy, reason_views};
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
    /// What `--check` found out of order.
    pub findings: usize,
}

/// One kernel's plan and the modules its build indices refer to.
struct Planned {
    plan: KernelPlan,
    members: Vec<usize>,
    /// How many of `members`, from the first, the mode offered: their verdicts are reported.
    offered: usize,
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

    /// Loads these kernels on all cores, for the planning of each.
    fn read_kernels_ahead<'r>(&mut self, releases: impl IntoIterator<Item = &'r String>) {
        let releases: Vec<String> = releases.into_iter().cloned().collect();
        let read = load_kernels(self.base(), &releases);
        self.kernels_read_ahead
            .extend(releases.into_iter().zip(read));
    }

    fn run_kind(&self) -> Run {
        match self.config.mode {
            Mode::AddModules => Run::AddModules,
            Mode::RemoveModules => Run::RemoveModules,
            Mode::AddKernel(_) => Run::AddKernel,
            Mode::RemoveKernel(_) => Run::RemoveKernel,
            Mode::Check(_) => Run::Check,
            Mode::Sync => Run::Sync,
            Mode::Explain => Run::Explain,
        }
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
