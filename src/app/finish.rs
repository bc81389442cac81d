//! After the links: depmod, then the initramfs, for every kernel owed them, each piece
//! recorded before it starts and cleared once it succeeded.

use super::*;
use crate::report::ImageOutcome;
use crate::shell::children::Output as ChildrenOutput;
use crate::shell::depmod::{depmod_command, run_depmods};
use crate::shell::initramfs::{Outcome as InitramfsOutcome, Regenerator, image_path, refresh_all};

impl Session<'_> {
    /// depmod, then initramfs, for every installed kernel that is owed them. Each piece of
    /// work is recorded before it starts and cleared from the record once it succeeded, so a
    /// kill or a failure leaves it to the next run.
    pub(super) fn finish(&mut self, installed: &BTreeSet<String>) {
        let owed: Vec<(String, Owed)> = std::mem::take(&mut self.owed).into_iter().collect();
        let mut pending = BTreeMap::new();
        for (release, work) in owed {
            if installed.contains(&release) {
                pending.insert(release, work);
            } else if work.depmod {
                self.tell(Event::DepmodSkipped { kernel: release });
            }
        }
        self.owed = pending;
        let releases: Vec<String> = self.owed.keys().cloned().collect();
        if !self.config.dry_run {
            for release in &releases {
                self.record(release);
            }
        }
        // depmod (and below, the initramfs) of different kernels run side by side; each
        // kernel's record is cleared only after its own run succeeded.
        let depmods: Vec<(String, Vec<String>)> = releases
            .iter()
            .filter(|release| self.owed[*release].depmod)
            .map(|release| (release.clone(), depmod_command(self.base(), release)))
            .collect();
        for (release, command) in &depmods {
            self.tell(Event::Depmod {
                kernel: release.clone(),
                command: command.clone(),
            });
        }
        if !self.config.dry_run {
            let commands: Vec<Vec<String>> = depmods.iter().map(|(_, c)| c.clone()).collect();
            self.reporter.flush();
            run_depmods(
                &commands,
                ChildrenOutput::ours(),
                |index, result| match result {
                    Ok(()) => self.done(&depmods[index].0, |owed| owed.depmod = false),
                    Err(err) => self.problem(&err),
                },
            );
        }
        if self.config.no_initramfs {
            return;
        }
        let how = match &self.config.check_initramfs_prog {
            Some(words) => Regenerator::CheckProgram(words.join(" ")),
            None => Regenerator::Dracut(self.config.dracut.clone()),
        };
        // An image built from indexes whose depmod just failed would hold the wrong modules:
        // such a kernel keeps the initramfs owed, for the run that gets its depmod through.
        let depmod_failed = |owed: &Owed| owed.depmod && !self.config.dry_run;
        let images: Vec<String> = releases
            .iter()
            .filter(|release| self.owed[*release].initramfs && !depmod_failed(&self.owed[*release]))
            .cloned()
            .collect();
        if self.config.dry_run {
            for release in images {
                self.tell(Event::InitramfsPending { kernel: release });
            }
            return;
        }
        self.reporter.flush();
        let base = self.base().to_owned();
        refresh_all(
            &base,
            &images,
            &how,
            ChildrenOutput::ours(),
            |index, result| {
                let release = &images[index];
                match result {
                    Ok(outcome) => {
                        let image = image_path(&base, release).display().to_string();
                        let (outcome, detail) = match outcome {
                            InitramfsOutcome::NoImage | InitramfsOutcome::CheckProgramRan => {
                                (None, None)
                            }
                            InitramfsOutcome::Unchanged => (Some(ImageOutcome::Unchanged), None),
                            InitramfsOutcome::Replaced => (Some(ImageOutcome::Replaced), None),
                            InitramfsOutcome::ReplacedUndecodable(why) => (
                                Some(ImageOutcome::ReplacedUndecodable),
                                Some(why.to_string()),
                            ),
                        };
                        if let Some(outcome) = outcome {
                            self.tell(Event::Initramfs {
                                kernel: release.clone(),
                                image,
                                outcome,
                                detail,
                            });
                        }
                        self.done(release, |owed| owed.initramfs = false);
                    }
                    Err(err) => self.problem(&err),
                }
            },
        );
    }

    /// Marks a piece of a kernel's owed work done, in memory and in its record.
    pub(super) fn done(&mut self, release: &str, piece: impl FnOnce(&mut Owed)) {
        if let Some(owed) = self.owed.get_mut(release) {
            piece(owed);
        }
        self.record(release);
    }
}
