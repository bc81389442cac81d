//! Planning: every kernel of the snapshot decided with the pure core, and the work each kernel
//! is owed. Nothing here reads or writes the tree.

use super::*;
use crate::core::compat::Prepared;
use crate::core::kernel::KernelAbi;
use crate::core::needs::{Needs, Resolved, Symbols, Wants};
use crate::core::offer::{Offered, offered_builds};
use crate::core::plan::{Build, KernelPlan, plan_prepared, prepare_build};
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
        let offers: Vec<KernelOffer> = snapshot
            .kernels
            .iter()
            .map(|(release, kernel)| KernelOffer::new(run, snapshot, release, kernel))
            .collect();
        // What each module needs is worked out once, and each kernel looks up each symbol
        // some module needs once at most.
        let wants = on_all_cores(&snapshot.modules, |module| Wants::of(&module.file.facts));
        let mut symbols = Symbols::default();
        let needs: Vec<Needs> = wants
            .into_iter()
            .map(|wants| Needs::number(wants, &mut symbols))
            .collect();
        let resolved: Vec<Resolved> = offers
            .iter()
            .map(|offer| Resolved::new(&offer.abi, &symbols))
            .collect();
        // Checking each build against its kernel is most of the work. It is spread over the
        // cores build by build: three kernels do not share two cores evenly.
        let pairs: Vec<(usize, usize)> = offers
            .iter()
            .enumerate()
            .flat_map(|(kernel, offer)| (0..offer.builds.len()).map(move |build| (kernel, build)))
            .collect();
        let mut prepared = on_all_cores(&pairs, |&(kernel, build)| {
            let offer = &offers[kernel];
            let module = offer.offered.members[build];
            prepare_build(
                &offer.abi,
                &resolved[kernel],
                &needs[module],
                &offer.builds[build],
            )
        })
        .into_iter();
        let prepared: Vec<Vec<Option<Prepared>>> = offers
            .iter()
            .map(|offer| prepared.by_ref().take(offer.builds.len()).collect())
            .collect();
        // Then each kernel is decided on its own.
        let offers: Vec<(KernelOffer, Vec<Option<Prepared>>)> =
            offers.into_iter().zip(prepared).collect();
        let plans: Vec<KernelPlan> = on_all_cores(&offers, |(offer, prepared)| {
            offer.plan(prepared, live_system)
        });
        let kernels: Vec<KernelStep> = offers
            .into_iter()
            .zip(plans)
            .map(|((offer, _), plan)| KernelStep {
                release: offer.release.to_owned(),
                offered: offer.offered,
                plan,
            })
            .collect();
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

/// One kernel, with the builds the run's policy offers it.
struct KernelOffer<'s> {
    release: &'s str,
    kernel: &'s KernelRead,
    offered: Offered,
    builds: Vec<Build<'s>>,
    abi: KernelAbi<'s>,
}

impl<'s> KernelOffer<'s> {
    fn new(run: Run, snapshot: &'s Snapshot, release: &'s str, kernel: &'s KernelRead) -> Self {
        let offered = offered_builds(
            run,
            &snapshot.given,
            &snapshot.installed_builds_except(release),
            &kernel.links,
            snapshot.lost_own.contains(release),
        );
        let builds = offered
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
        KernelOffer {
            release,
            kernel,
            offered,
            builds,
            abi: kernel.tree.abi(),
        }
    }

    /// Decided, its builds prepared with [`prepare_build`].
    fn plan(&self, prepared: &[Option<Prepared>], live_system: bool) -> KernelPlan {
        plan_prepared(
            &self.abi,
            &self.builds,
            prepared,
            &self.offered.existing,
            &self.kernel.occupied,
            live_system,
        )
    }
}
