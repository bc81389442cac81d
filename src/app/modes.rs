//! The modes: which builds each kernel is offered, and in which order kernels are planned.

use super::*;

impl Session<'_> {
    pub(super) fn add_modules(&mut self, paths: Vec<String>) -> Result<(), Error> {
        if paths.is_empty() {
            return Ok(());
        }
        let _lock = self.lock()?;
        let installed = self.installed()?;
        self.read_modules_ahead(&paths);
        let offered: Vec<usize> = paths.iter().filter_map(|p| self.load(p, true)).collect();
        self.read_kernels_ahead(&installed);
        self.warn_misplaced(&offered);
        let work = self.work_for_a_change();
        for release in self.stale_own_kernels(&installed, &paths, &offered) {
            self.owe(&release, work);
        }
        for release in &installed {
            self.reconcile(release, &offered, false);
        }
        self.finish(&installed);
        Ok(())
    }

    /// A module whose directory is not its own kernel's is linked under its whole mirrored
    /// path: worth a word, since it usually means a spec installed it in the wrong place.
    fn warn_misplaced(&mut self, offered: &[usize]) {
        for &module in offered {
            let Loaded { path, file } = &self.modules[module];
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

    pub(super) fn remove_modules(&mut self, paths: Vec<String>) -> Result<(), Error> {
        if paths.is_empty() {
            return Ok(());
        }
        let _lock = self.lock()?;
        let installed = self.installed()?;
        self.read_kernels_ahead(&installed);
        let work = self.work_for_a_change();
        for release in self.stale_own_kernels(&installed, &paths, &[]) {
            self.owe(&release, work);
        }
        // A kernel that lost one of its own modules is offered every installed build
        // (core::offer says why).
        let lost_own: BTreeSet<String> = paths
            .iter()
            .filter(|path| !self.base().join(path).exists())
            .map(|path| release_from_path(path).to_owned())
            .collect();
        for release in &installed {
            self.say_skipped_symlinks(release, &paths);
            self.reconcile(release, &[], lost_own.contains(release));
        }
        self.finish(&installed);
        Ok(())
    }

    pub(super) fn add_kernel(&mut self, release: &str) -> Result<(), Error> {
        if symvers_file(self.base(), release).is_none() {
            return Err(Error::NoSymvers {
                release: release.to_owned(),
                looked_in: symvers_candidates(self.base(), release),
            });
        }
        let _lock = self.lock()?;
        let installed = self.installed()?;
        self.reconcile(release, &[], false);
        self.finish(&installed);
        Ok(())
    }

    pub(super) fn remove_kernel(&mut self, release: &str) -> Result<(), Error> {
        let _lock = self.lock()?;
        let installed = self.installed()?;
        // The bash tool runs no depmod for a kernel on its way out.
        self.owed.remove(release);
        if self.config.dry_run {
            match read_links(self.base(), release) {
                Ok(links) => {
                    for found in links {
                        self.tell(Event::Removed { link: found.link });
                    }
                }
                Err(err) => self.problem(&err),
            }
        } else {
            match empty_weak_updates(self.base(), release) {
                Ok(removed) => {
                    for link in removed {
                        self.tell(Event::Removed { link });
                    }
                    if let Err(err) = record_owed(self.base(), release, Owed::default()) {
                        self.problem(&err);
                    }
                }
                Err(err) => self.problem(&err),
            }
        }
        self.finish(&installed);
        Ok(())
    }

    /// Every installed kernel planned as `--add-kernel` would plan it, in one run sharing every
    /// module read: afterwards `--check` finds nothing.
    pub(super) fn sync(&mut self) -> Result<(), Error> {
        let _lock = self.lock()?;
        let installed = self.installed()?;
        self.read_kernels_ahead(&installed);
        for release in &installed {
            self.reconcile(release, &[], false);
        }
        self.finish(&installed);
        Ok(())
    }

    /// Plans, reports and (unless dry run) applies one kernel.
    pub(super) fn reconcile(&mut self, release: &str, given: &[usize], lost_own_module: bool) {
        if let Some(planned) = self.plan_for(release, given, lost_own_module) {
            self.commit(release, planned);
        }
    }

    /// The bash tool's note for a removed module whose link in this kernel points elsewhere.
    pub(super) fn say_skipped_symlinks(&mut self, release: &str, paths: &[String]) {
        if !self.config.verbose && !self.config.json {
            return;
        }
        let Ok(links) = read_links(self.base(), release) else {
            return;
        };
        let base = self.base().to_string_lossy().into_owned();
        for found in links {
            let file_name = found.link.rsplit('/').next().unwrap_or_default();
            let resolved = resolve_link(&found.link, &found.target_text, &base);
            let same_file = paths.iter().any(|p| p.ends_with(&format!("/{file_name}")));
            if same_file && !paths.iter().any(|p| Some(p) == resolved.as_ref()) {
                let path = self.base().join(&found.link).display().to_string();
                self.tell(Event::SkippedSymlink { path });
            }
        }
    }

    /// Every readable module in `extra/` of every kernel directory but one.
    pub(super) fn extra_builds_except(&mut self, release: &str) -> Vec<usize> {
        let mut builds = Vec::new();
        let paths = self.extra_modules_except(release);
        self.read_modules_ahead(&paths);
        for path in paths {
            builds.extend(self.load(&path, true));
        }
        builds
    }

    /// Base-relative paths of every module in `extra/` of every kernel directory but one.
    pub(super) fn extra_modules_except(&self, release: &str) -> Vec<String> {
        let modules_dir = self.base().join("lib/modules");
        let Ok(entries) = std::fs::read_dir(&modules_dir) else {
            return Vec::new();
        };
        let mut releases: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name != release)
            .collect();
        releases.sort();
        releases
            .iter()
            .flat_map(|name| module_files(&modules_dir.join(name).join("extra")))
            .filter_map(|path| {
                path.strip_prefix(self.base())
                    .ok()
                    .map(|p| p.to_string_lossy().into_owned())
            })
            .collect()
    }

    /// The modules' own kernels whose indexes do not match them yet (the bash tool always runs
    /// depmod there; we do when it has something to do).
    pub(super) fn stale_own_kernels(
        &self,
        installed: &BTreeSet<String>,
        paths: &[String],
        offered: &[usize],
    ) -> BTreeSet<String> {
        let mut owners: Vec<(String, String)> = offered
            .iter()
            .map(|&m| {
                (
                    self.modules[m].path.clone(),
                    self.modules[m].file.built_for.clone(),
                )
            })
            .collect();
        owners.extend(
            paths
                .iter()
                .map(|p| (p.clone(), release_from_path(p).to_owned())),
        );
        let mut listings: HashMap<String, DepListing> = HashMap::new();
        owners
            .into_iter()
            .filter(|(_, release)| installed.contains(release))
            .filter(|(path, release)| {
                let below = path
                    .strip_prefix(&format!("lib/modules/{release}/"))
                    .or_else(|| path.strip_prefix(&format!("usr/lib/modules/{release}/")));
                let listing = listings
                    .entry(release.clone())
                    .or_insert_with(|| DepListing::read(self.base(), release));
                below.is_some_and(|below| listing.stale_for(below))
            })
            .map(|(_, release)| release)
            .collect()
    }
}
