//! Reporting: the snapshot's diagnostics and the plan, as events, before anything changes.

use super::*;
use crate::core::paths::{misplaced_release, resolve_link};
use crate::core::plan::{Action, KernelPlan, Status, UnlinkReason};
use crate::report::{BuildRef, Fit, UnlinkWhy, reason_views};
use crate::shell::snapshot::Diagnostic;

use plan::KernelStep;

impl Session<'_> {
    pub(super) fn report(&mut self, snapshot: &Snapshot, plan: &RunPlan, given: &[String]) {
        for (release, owed) in &snapshot.records {
            self.tell(Event::Owed {
                kernel: release.clone(),
                work: owed.describe(),
            });
        }
        for diagnostic in &snapshot.diagnostics {
            match diagnostic {
                Diagnostic::Problem(message) => self.problem(message),
                Diagnostic::Warning(message) => self.warn(message),
            }
        }
        match &self.config.mode {
            Mode::Check(named) => return self.check(snapshot, plan, named),
            Mode::Explain => return self.explain(snapshot, plan),
            Mode::AddModules => self.warn_misplaced(snapshot),
            Mode::RemoveKernel(_) if self.config.dry_run => {
                for link in snapshot.leaving_links.iter().flatten() {
                    self.tell(Event::Removed { link: link.clone() });
                }
            }
            _ => {}
        }
        for step in &plan.kernels {
            if self.config.mode == Mode::RemoveModules {
                self.say_skipped_symlinks(snapshot, &step.release, given);
            }
            self.report_kernel(snapshot, step);
        }
    }

    /// A module whose directory is not its own kernel's is linked under its whole mirrored
    /// path: worth a word, since it usually means a spec installed it in the wrong place.
    fn warn_misplaced(&mut self, snapshot: &Snapshot) {
        for &module in &snapshot.given {
            let Loaded { path, file } = &snapshot.modules[module];
            if let Some(directory) = misplaced_release(path, &file.built_for) {
                let named = match directory {
                    "" => "no kernel".to_owned(),
                    release => format!("kernel {release}"),
                };
                let message = format!(
                    "{}: its vermagic says kernel {}, but its directory names {named}; \
                     it is linked as weak-updates/{path}",
                    self.base().join(path).display(),
                    file.built_for,
                );
                self.warn(&message);
            }
        }
    }

    /// The bash tool's note for a removed module whose link in this kernel points elsewhere.
    fn say_skipped_symlinks(&mut self, snapshot: &Snapshot, release: &str, given: &[String]) {
        if !self.config.verbose && !self.config.json {
            return;
        }
        let base = self.base().to_string_lossy().into_owned();
        for found in &snapshot.kernels[release].links {
            let file_name = found.link.rsplit('/').next().unwrap_or_default();
            let resolved = resolve_link(&found.link, &found.target_text, &base);
            let same_file = given.iter().any(|p| p.ends_with(&format!("/{file_name}")));
            if same_file && !given.iter().any(|p| Some(p) == resolved.as_ref()) {
                let path = self.base().join(&found.link).display().to_string();
                self.tell(Event::SkippedSymlink { path });
            }
        }
    }

    /// One kernel: how its indexes differ from its tree, the verdicts of the builds the mode
    /// offered, every action, and the links a non-symlink blocks.
    fn report_kernel(&mut self, snapshot: &Snapshot, step: &KernelStep) {
        let release = &step.release;
        if let Some(mismatch) = &snapshot.kernels[release].index {
            self.tell(Event::IndexMismatch {
                kernel: release.clone(),
                mismatch: mismatch.to_string(),
            });
        }
        self.report_plan(snapshot, step);
        for blocked in &step.plan.blocked {
            let module = &snapshot.modules[step.offered.members[blocked.build]].path;
            let what = blocked.by.describe();
            let line = format!(
                "{}: {what}, left alone; /{module} is not linked into kernel {release}",
                self.base().join(&blocked.link).display()
            );
            self.problem(&line);
        }
    }

    /// The verdicts of the builds the mode offered, then every action.
    pub(super) fn report_plan(&mut self, snapshot: &Snapshot, step: &KernelStep) {
        let plan: &KernelPlan = &step.plan;
        let build = |member: usize| {
            let module = &snapshot.modules[step.offered.members[member]];
            BuildRef {
                path: format!("/{}", module.path),
                built_for: module.file.built_for.clone(),
            }
        };
        let offered = step.offered.by_mode;
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
        let verdicts = if self.reporter.shows_verdicts() {
            offered
        } else {
            0
        };
        for (index, status) in plan.statuses.iter().enumerate().take(verdicts) {
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
}
