//! One run: read the input, then load → plan → report → apply. Loading reads the tree once
//! into a snapshot (`shell::snapshot`); planning decides every kernel from it with the pure
//! core; reporting turns the plan into events; applying changes the links under the lock, then
//! runs depmod and the initramfs for the kernels owed them: those whose links changed, those
//! whose indexes do not match their tree, and those an interrupted or failed run left a record
//! for.

mod apply;
mod audit;
mod finish;
mod plan;
mod report;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::config::{Config, Mode};
use crate::core::offer::Run;
use crate::core::paths::normalize;
use crate::error::Error;
use crate::report::json::JsonLines;
use crate::report::text::Text;
use crate::report::{Event, Reporter};
use crate::shell::input::read_lines;
use crate::shell::load::{LoadError, symvers_candidates, symvers_file};
use crate::shell::lock::{RunLock, lock_exclusive, lock_shared_if_free};
use crate::shell::owed::{Owed, record_owed};
use crate::shell::snapshot::{self, Loaded, Request, Snapshot};

use plan::RunPlan;

/// How a run ended, when it got to the end.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Problems reported on the way (unreadable modules, failed steps); each makes the exit
    /// status 1 once the rest is done.
    pub problems: usize,
    /// What `--check` found out of order.
    pub findings: usize,
}

struct Session<'c> {
    config: &'c Config,
    reporter: Box<dyn Reporter + 'c>,
    problems: usize,
    findings: usize,
    /// Every line printed on stderr, so that a problem met twice is reported once.
    said_on_stderr: HashSet<String>,
    /// Work each kernel is owed, by this run or one before it, as the run goes on.
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
        owed: BTreeMap::new(),
        recorded: BTreeMap::new(),
    };
    let given = match config.mode {
        Mode::AddModules | Mode::RemoveModules | Mode::Explain => session.read_paths(input)?,
        _ => Vec::new(),
    };
    session.run(&given)?;
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
    fn run(&mut self, given: &[String]) -> Result<(), Error> {
        let run = self.run_kind();
        if matches!(run, Run::AddModules | Run::RemoveModules | Run::Explain) && given.is_empty() {
            return Ok(());
        }
        if let Mode::AddKernel(release) = &self.config.mode
            && symvers_file(self.base(), release).is_none()
        {
            return Err(Error::NoSymvers {
                release: release.clone(),
                looked_in: symvers_candidates(self.base(), release),
            });
        }
        let _lock = self.lock()?;
        let snapshot = snapshot::read(self.base(), &self.request(run, given))?;
        let mut plan = self.plan(&snapshot);
        self.recorded = snapshot.records.clone();
        self.owed = std::mem::take(&mut plan.owed);
        self.report(&snapshot, &plan, given);
        if !matches!(run, Run::Check | Run::Explain) {
            self.apply(&snapshot, &plan);
            self.finish(&snapshot.installed);
        }
        // Tens of megabytes of small allocations: freed off the main thread, which is about
        // to print the summary and exit without waiting for it.
        crate::cores::in_background(move || drop((snapshot, plan)));
        Ok(())
    }

    /// What the mode needs read: the modules on stdin, the kernels it plans, the kernel whose
    /// links it removes.
    fn request<'r>(&'r self, run: Run, given: &'r [String]) -> Request<'r> {
        Request {
            run,
            given,
            kernels: match &self.config.mode {
                Mode::AddKernel(release) => Some(std::slice::from_ref(release)),
                Mode::Check(named) if !named.is_empty() => Some(named),
                Mode::RemoveKernel(_) => Some(&[]),
                _ => None,
            },
            leaving: match &self.config.mode {
                Mode::RemoveKernel(release) => Some(release),
                _ => None,
            },
        }
    }

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
        let mut seen = HashSet::new();
        for line in lines {
            let absolute = PathBuf::from(format!(
                "/{}",
                normalize(&cwd.join(&line.text).to_string_lossy())
            ));
            let inside = absolute
                .strip_prefix(&self.config.base)
                .unwrap_or(&absolute);
            let path = inside.to_string_lossy().trim_start_matches('/').to_owned();
            if seen.insert(path.clone()) {
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

    /// What a change to a kernel's modules owes it.
    fn work_for_a_change(&self) -> Owed {
        Owed {
            depmod: true,
            initramfs: !self.config.no_initramfs,
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
}

fn holder_text(holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!("process {pid}"),
        None => "another process".to_owned(),
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
