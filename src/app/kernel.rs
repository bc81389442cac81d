//! One kernel: read its tree and links, plan it with the pure core, report the plan as
//! events, and apply it with the work it owes recorded first.

use super::*;

impl Session<'_> {
    /// The plan for one kernel, offered the builds the run's policy (`core::offer`) gives it:
    /// `given` (the modules on stdin), every installed build, and those its links lead to.
    /// `None` when the kernel cannot be read (reported once; its links are left as they are).
    pub(super) fn plan_for(
        &mut self,
        release: &str,
        given: &[usize],
        lost_own_module: bool,
    ) -> Option<Planned> {
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
        let run = self.run_kind();
        let by_mode = offer(run, KernelCase::default());
        let mut members: Vec<usize> = if by_mode.given {
            given.to_vec()
        } else {
            Vec::new()
        };
        if by_mode.every_installed_build {
            for build in self.extra_builds_except(release) {
                member_index(&mut members, build);
            }
        }
        let offered = members.len();
        let existing: Vec<ExistingLink> = weak_updates
            .links
            .iter()
            .map(|link| self.existing_link(link, &mut members))
            .collect();
        let index = self.index_mismatch(&tree, &existing);
        let case = KernelCase {
            lost_own_module,
            has_gone_link: existing
                .iter()
                .any(|link| link.leads_to == LinkedModule::Gone),
        };
        if offer(run, case).every_installed_build && !by_mode.every_installed_build {
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
            offered,
            existing,
            index,
            leftovers: weak_updates.leftovers,
        })
    }

    /// Temporary names a killed run left are never links; a run that changes things clears
    /// them.
    pub(super) fn clear_leftovers(&mut self, weak_updates: &WeakUpdates) {
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
    pub(super) fn index_mismatch(
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
    pub(super) fn commit(&mut self, release: &str, planned: Planned) {
        if let Some(mismatch) = &planned.index {
            self.tell(Event::IndexMismatch {
                kernel: release.to_owned(),
                mismatch: mismatch.to_string(),
            });
            let work = self.work_for_a_change();
            self.owe(release, work);
        }
        self.report(&planned.plan, &planned.members, planned.offered);
        for blocked in &planned.plan.blocked {
            let module = &self.modules[planned.members[blocked.build]].path;
            let what = blocked.by.describe();
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

    pub(super) fn existing_link(
        &mut self,
        found: &FoundLink,
        members: &mut Vec<usize>,
    ) -> ExistingLink {
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

    pub(super) fn report(&mut self, plan: &KernelPlan, members: &[usize], offered: usize) {
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
}
