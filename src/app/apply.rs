//! Applying: the links of every kernel whose plan changes anything, each kernel's owed work
//! recorded before its first link changes; leftovers of killed runs cleared. A failed step is
//! reported and costs only that step.

use super::*;
use crate::shell::initramfs::clear_leftover_images;
use crate::shell::links::{apply, clear_leftovers, empty_weak_updates};

impl Session<'_> {
    pub(super) fn apply(&mut self, snapshot: &Snapshot, plan: &RunPlan) {
        if self.config.dry_run {
            return;
        }
        for release in &snapshot.installed {
            for cleared in clear_leftover_images(self.base(), release) {
                self.tell(Event::Cleared {
                    path: cleared.display().to_string(),
                });
            }
        }
        for step in &plan.kernels {
            self.clear_leftovers(&snapshot.kernels[&step.release].leftovers);
            if !step.plan.changes_anything() || !self.record(&step.release) {
                continue;
            }
            let failed = apply(self.base(), &step.release, &step.plan.actions);
            for failure in failed {
                self.problem(&failure);
            }
        }
        if let (Mode::RemoveKernel(release), Some(links)) =
            (&self.config.mode, &snapshot.leaving_links)
        {
            self.empty(release, links);
        }
    }

    /// Temporary names a killed run left in `weak-updates/` are never links; a run that
    /// changes things clears them, under the exclusive lock.
    fn clear_leftovers(&mut self, leftovers: &[String]) {
        if leftovers.is_empty() {
            return;
        }
        match clear_leftovers(self.base(), leftovers) {
            Ok(()) => {
                for leftover in leftovers {
                    let path = self.base().join(leftover).display().to_string();
                    self.tell(Event::Cleared { path });
                }
            }
            Err(err) => self.problem(&err),
        }
    }

    /// `--remove-kernel`: every link of the kernel goes, and so does its record.
    fn empty(&mut self, release: &str, links: &[String]) {
        match empty_weak_updates(self.base(), release, links) {
            Ok(()) => {
                for link in links {
                    self.tell(Event::Removed { link: link.clone() });
                }
                if let Err(err) = record_owed(self.base(), release, Owed::default()) {
                    self.problem(&err);
                }
            }
            Err(err) => self.problem(&err),
        }
    }
}
