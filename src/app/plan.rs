//! Planning: every kernel of the snapshot decided with the pure core, and the work each kernel
//! is owed. Nothing here reads or writes the tree.

use super::*;
use crate::core::offer::{Offered, offered_builds};
use crate::core::plan::{Build, KernelPlan, plan_kernel};

/// What a run will do.
pub(super) struct RunPlan {
    /// One step per kernel of the snapshot, in release order.
    pub kernels: Vec<KernelStep>,
    /// The work each kernel is owed once the links are in place: what an earlier run left,
    /// and what this one adds.
    pub owed: BTreeMap<String, Owed>,
}

pub(super) struct KernelStep {
    pub release: String,
    pub offered: Offered,
    pub plan: KernelPlan,
}

impl RunPlan {
    pub fn kernel(&self, release: &str) -> Option<&KernelStep> {
        self.kernels.iter().find(|step| step.release == release)
    }
}

impl Session<'_> {
    pub(super) fn plan(&self, snapshot: &Snapshot) -> RunPlan {
        let run = self.run_kind();
        let work = self.work_for_a_change();
        let mut owed = snapshot.records.clone();
        let mut owe = |release: &str| {
            let entry = owed.entry(release.to_owned()).or_default();
            *entry = entry.and(work);
        };
        for release in &snapshot.stale_own {
            owe(release);
        }
        let kernels: Vec<KernelStep> = snapshot
            .kernels
            .iter()
            .map(|(release, kernel)| {
                let offered = offered_builds(
                    run,
                    &snapshot.given,
                    &snapshot.installed_builds_except(release),
                    &kernel.links,
                    snapshot.lost_own.contains(release),
                );
                let builds: Vec<Build> = offered
                    .members
                    .iter()
                    .map(|&module| {
                        let module = &snapshot.modules[module];
                        Build {
                            path: &module.path,
                            name: &module.file.name,
                            built_for: &module.file.built_for,
                            facts: &module.file.facts,
                        }
                    })
                    .collect();
                let plan = plan_kernel(
                    &kernel.tree.abi(),
                    &builds,
                    &offered.existing,
                    &kernel.occupied,
                    self.config.live_system(),
                );
                if kernel.index.is_some() || plan.changes_anything() {
                    owe(release);
                }
                KernelStep {
                    release: release.clone(),
                    offered,
                    plan,
                }
            })
            .collect();
        if let Mode::RemoveKernel(release) = &self.config.mode {
            // The bash tool runs no depmod for a kernel on its way out.
            owed.remove(release);
        }
        RunPlan { kernels, owed }
    }
}
