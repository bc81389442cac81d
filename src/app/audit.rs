//! The read-only modes beyond the bash tool: `--check` and `--explain`.

use super::*;

impl Session<'_> {
    /// The audit: every kernel named (or installed) planned as `--add-kernel` would plan it,
    /// and every change that plan would make, or work an interrupted run left, is a finding.
    pub(super) fn check(&mut self, named: &[String]) -> Result<(), Error> {
        let _lock = self.lock()?;
        let installed = self.installed()?;
        let releases: Vec<String> = if named.is_empty() {
            installed.iter().cloned().collect()
        } else {
            named.to_vec()
        };
        self.read_kernels_ahead(releases.iter().filter(|r| installed.contains(*r)));
        let mut kernels_out_of_order = 0;
        for release in &releases {
            if !installed.contains(release) {
                self.problem(&format!(
                    "kernel {release} is not installed (no symvers file)"
                ));
                continue;
            }
            let Some(planned) = self.plan_for(release, &[], false) else {
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
    pub(super) fn explain(&mut self, paths: Vec<String>) -> Result<(), Error> {
        let _lock = self.lock()?;
        let installed = self.installed()?;
        self.read_modules_ahead(&paths);
        let offered: Vec<usize> = paths.iter().filter_map(|p| self.load(p, true)).collect();
        self.read_kernels_ahead(&installed);
        let mut rows: Vec<Vec<Row>> = vec![Vec::new(); offered.len()];
        for release in &installed {
            let Some(planned) = self.plan_for(release, &offered, false) else {
                continue;
            };
            if self.config.json {
                self.report(&planned.plan, &planned.members, planned.offered);
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
    pub(super) fn explained(&self, planned: &Planned, index: usize) -> ExplainedVerdict {
        let release = &planned.plan.release;
        let short = |link: &str| below_kernel(link, release);
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
}
