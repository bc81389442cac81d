//! Planning: every kernel of the snapshot decided with the pure core, and the work each kernel
//! is owed. Nothing here reads or writes the tree.

use super::*;
use crate::core::offer::{Offered, offered_builds};
use crate::core::plan::{Build, KernelPlan, plan_kernel};
use crate::cores::on_all_cores;
use crate::shell::snapshot::KernelRead;

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
        let live_system = self.config.live_system();
        let kernels: Vec<(&String, &KernelRead)> = snapshot.kernels.iter().collect();
        // Kernels are decided independently of each other, so on all cores.
        let kernels: Vec<KernelStep> = on_all_cores(&kernels, |(release, kernel)| {
            plan_one(run, snapshot, release, kernel, live_system)
        });
        let work = self.work_for_a_change();
        let mut owed = snapshot.records.clone();
        let changed = kernels
            .iter()
            .filter(|step| {
                step.plan.changes_anything() || snapshot.kernels[&step.release].index.is_some()
            })
            .map(|step| &step.release);
        for release in snapshot.stale_own.iter().chain(changed) {
            let entry = owed.entry(release.clone()).or_default();
            *entry = entry.and(work);
        }
        if let Mode::RemoveKernel(release) = &self.config.mode {
            // The bash tool runs no depmod for a kernel on its way out.
            owed.remove(release);
        }
        RunPlan { kernels, owed }
    }
}

/// One kernel, offered the builds the run's policy gives it, decided.
fn plan_one(
    run: Run,
    snapshot: &Snapshot,
    release: &str,
    kernel: &KernelRead,
    live_system: bool,
) -> KernelStep {
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
        live_system,
    );
    KernelStep {
        release: release.to_owned(),
        offered,
        plan,
    }
}
