//! The read-only modes beyond the bash tool: `--check` and `--explain`.

use super::*;
use crate::core::audit::{KernelState, audit};
use crate::core::paths::below_kernel;
use crate::core::plan::{Action, LinkedModule, Status};
use crate::report::explain::{self, Row, Verdict as ExplainedVerdict};
use crate::report::reason_views;

use plan::KernelStep;

impl Session<'_> {
    /// The audit: every kernel named (or installed) planned as `--add-kernel` would plan it,
    /// and every change that plan would make, or work an interrupted run left, is a finding.
    pub(super) fn check(&mut self, snapshot: &Snapshot, plan: &RunPlan, named: &[String]) {
        let releases: Vec<String> = if named.is_empty() {
            snapshot.installed.iter().cloned().collect()
        } else {
            named.to_vec()
        };
        let mut kernels_out_of_order = 0;
        for release in &releases {
            if !snapshot.installed.contains(release) {
                self.problem(&format!(
                    "kernel {release} is not installed (no symvers file)"
                ));
                continue;
            }
            let (Some(step), Some(kernel)) = (plan.kernel(release), snapshot.kernels.get(release))
            else {
                continue;
            };
            let builds: Vec<&str> = step
                .offered
                .members
                .iter()
                .map(|&m| snapshot.modules[m].path.as_str())
                .collect();
            let linked: Vec<(String, usize)> = step
                .offered
                .existing
                .iter()
                .filter_map(|link| match link.leads_to {
                    LinkedModule::Build(build) => Some((link.link.clone(), build)),
                    _ => None,
                })
                .collect();
            let state = KernelState {
                builds: &builds,
                linked: &linked,
                index: kernel.index.as_ref(),
                owed: snapshot.records.get(release).map(|owed| owed.describe()),
                leftovers: &kernel.leftovers,
            };
            let (findings, notes) = audit(&step.plan, &state);
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
    }

    /// For each module given, every installed kernel's verdict, planned as `--add-modules`
    /// would plan it: a table, or with `--json` the verdicts and the links that would change.
    pub(super) fn explain(&mut self, snapshot: &Snapshot, plan: &RunPlan) {
        if self.config.json {
            for step in &plan.kernels {
                self.report_plan(snapshot, step);
            }
            return;
        }
        for (index, &module) in snapshot.given.iter().enumerate() {
            let rows: Vec<Row> = plan
                .kernels
                .iter()
                .map(|step| Row {
                    kernel: step.release.clone(),
                    verdict: self.explained(snapshot, step, index),
                })
                .collect();
            let module = &snapshot.modules[module];
            let path = format!("/{}", module.path);
            let table = explain::table(&path, &module.file.built_for, &rows, self.config.colour);
            self.tell(Event::Explanation { table });
        }
    }

    /// How build `index` of a plan fares, for the `--explain` table.
    fn explained(&self, snapshot: &Snapshot, step: &KernelStep, index: usize) -> ExplainedVerdict {
        let release = &step.release;
        let short = |link: &str| below_kernel(link, release);
        match &step.plan.statuses[index] {
            Status::OwnKernel => ExplainedVerdict::Own,
            Status::Fits { shadowed } => {
                let new = step.plan.actions.iter().find_map(|action| match action {
                    Action::Link { link, build, .. } if *build == index => {
                        Some((short(link), false))
                    }
                    _ => None,
                });
                let present = step
                    .offered
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
                chosen: format!("/{}", snapshot.modules[step.offered.members[*chosen]].path),
            },
        }
    }
}
