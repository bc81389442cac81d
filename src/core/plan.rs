//! What to do to one kernel's `weak-updates/`: given the module builds that could be linked
//! there and the links already present, the links to create, replace and remove, each with its
//! reason. Every mode comes down to this; modes differ only in which builds they offer.
//!
//! Rules (docs/architecture.md, "Decisions"): per module name the newest fitting build wins, by rpm
//! order of the release it was built for, and an incompatible newer build lets an older one
//! through; a module is linked only if the candidates it takes symbols from are linked too;
//! links whose target is gone, does not fit, or lost to a newer build are removed; a link whose
//! target cannot be read is left alone.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use hashbrown::HashSet;

use crate::core::compat::{Candidate, Prepared, Reason, Verdict, decide_prepared};
use crate::core::elf::ModuleFacts;
use crate::core::kernel::{KernelAbi, normalize_module_name};
use crate::core::needs::{Needs, Resolved};
use crate::core::paths::{link_subpath, link_target, weak_updates_dir};
use crate::core::rpmver;

/// A module build the plan may link, as the shell read it.
#[derive(Debug, Clone, Copy)]
pub struct Build<'a> {
    /// Relative to the base directory, as given (`lib/modules/K0/extra/d/m.ko`).
    pub path: &'a str,
    pub name: &'a str,
    pub built_for: &'a str,
    pub facts: &'a ModuleFacts,
}

/// A symlink found in the kernel's `weak-updates/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingLink {
    /// Relative to the base directory.
    pub link: String,
    pub target_text: String,
    pub leads_to: LinkedModule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkedModule {
    /// The target is this build (an index into the builds).
    Build(usize),
    /// Nothing is there any more.
    Gone,
    /// Something is there that cannot be read as a module; it is kept as it is.
    Unreadable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create, or atomically replace, the link at `link`.
    Link {
        link: String,
        target: String,
        build: usize,
        replacing: Option<String>,
    },
    Unlink {
        link: String,
        target_text: String,
        why: UnlinkReason,
    },
}

impl Action {
    pub fn link_path(&self) -> &str {
        match self {
            Action::Link { link, .. } | Action::Unlink { link, .. } => link,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnlinkReason {
    TargetGone,
    DoesNotFit(Vec<Reason>),
    /// A newer fitting build of the same module is linked instead.
    Superseded {
        by: usize,
    },
    /// The link points at a module built for this very kernel.
    OwnKernel,
    /// The same build (`by`) is linked at its proper place instead.
    Duplicate {
        by: usize,
    },
}

/// How one build fared on the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Fits {
        shadowed: bool,
    },
    DoesNotFit(Vec<Reason>),
    /// Fits, but a newer build of the same module is linked.
    NewerBuildChosen {
        chosen: usize,
    },
    OwnKernel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelPlan {
    pub release: String,
    /// Links first, then removals, each group sorted by link path: a module that moves to
    /// another link path is never missing in between.
    pub actions: Vec<Action>,
    /// One entry per build, in build order.
    pub statuses: Vec<Status>,
    /// Fitting builds whose link path is taken by something that is not a symlink.
    pub blocked: Vec<BlockedLink>,
    /// The kernel ships no module to take the size of `struct module` from, so that size was
    /// not checked.
    pub struct_module_unchecked: bool,
}

impl KernelPlan {
    pub fn changes_anything(&self) -> bool {
        !self.actions.is_empty()
    }
}

/// Entries of `weak-updates/` that are not symlinks (base-relative paths). They are never
/// ours, so a link is never placed over or below them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Occupied {
    pub files: BTreeSet<String>,
    pub dirs: BTreeSet<String>,
}

impl Occupied {
    /// Whether a link at `link` would have to replace a non-symlink or go below a file.
    fn blocks(&self, link: &str) -> bool {
        if self.files.contains(link) || self.dirs.contains(link) {
            return true;
        }
        let mut ancestor = link;
        while let Some((parent, _)) = ancestor.rsplit_once('/') {
            if self.files.contains(parent) {
                return true;
            }
            ancestor = parent;
        }
        false
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedLink {
    pub link: String,
    pub build: usize,
    pub by: Obstacle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obstacle {
    /// A file or directory (or a file where a directory on the way should be).
    NotALink,
    /// A link to something that cannot be read as a module, kept as it is.
    UnreadableLink,
}

impl Obstacle {
    /// What is at the link path, in the words reports use.
    pub fn describe(self) -> &'static str {
        match self {
            Obstacle::NotALink => "not a symlink",
            Obstacle::UnreadableLink => "a link to something that is not a readable module",
        }
    }
}

pub fn plan_kernel(
    kernel: &KernelAbi,
    builds: &[Build],
    existing: &[ExistingLink],
    occupied: &Occupied,
    live_system: bool,
) -> KernelPlan {
    let (symbols, needs) = Needs::of_all(builds.iter().map(|build| build.facts));
    let resolved = Resolved::new(kernel, &symbols);
    let prepared: Vec<Option<Prepared>> = builds
        .iter()
        .zip(&needs)
        .map(|(build, needs)| prepare_build(kernel, &resolved, needs, build))
        .collect();
    plan_prepared(kernel, builds, &prepared, existing, occupied, live_system)
}

/// A build checked against the kernel alone (see [`Prepared`]), given its [`Needs`] and the
/// kernel's offer of its run's symbols; `None` for a build made for the kernel itself, never a
/// candidate there. Most of a plan's work, and independent for each build, so that callers
/// may spread it over cores.
pub fn prepare_build<'a>(
    kernel: &KernelAbi,
    resolved: &Resolved,
    needs: &Needs<'a>,
    build: &Build<'a>,
) -> Option<Prepared<'a>> {
    let candidate = Candidate {
        name: build.name,
        built_for: build.built_for,
        facts: build.facts,
    };
    (!made_for(kernel, build)).then(|| Prepared::new(kernel, resolved, needs, candidate))
}

/// A build made for the kernel itself: never a candidate there. The builds prepared, the
/// builds chosen among and the builds reported as the kernel's own are told apart by this one
/// test, so that a choice of builds always finds each of them prepared.
fn made_for(kernel: &KernelAbi, build: &Build) -> bool {
    build.built_for == kernel.release
}

/// [`plan_kernel`] with each build already prepared by [`prepare_build`], in build order.
pub fn plan_prepared(
    kernel: &KernelAbi,
    builds: &[Build],
    prepared: &[Option<Prepared>],
    existing: &[ExistingLink],
    occupied: &Occupied,
    live_system: bool,
) -> KernelPlan {
    let linked: BTreeSet<usize> = existing
        .iter()
        .filter_map(|link| match link.leads_to {
            LinkedModule::Build(build) => Some(build),
            _ => None,
        })
        .collect();
    // A build whose link cannot be placed is taken out and the kernel planned again without
    // it, so that nothing is decided as though it were there.
    let mut blocked: Vec<(BlockedLink, Status)> = Vec::new();
    let decider = Decider { prepared };
    let (mut statuses, desired) = loop {
        let unavailable: BTreeSet<usize> = blocked.iter().map(|(b, _)| b.build).collect();
        let statuses = choose_builds(kernel, builds, &decider, &linked, &unavailable);
        let desired = desired_links(&kernel.release, builds, &statuses, existing);
        let newly = blocked_links(&desired, existing, occupied);
        if newly.is_empty() {
            break (statuses, desired);
        }
        blocked.extend(newly.into_iter().map(|b| {
            let status = statuses[b.build].clone();
            (b, status)
        }));
    };
    let actions = diff(builds, &statuses, desired, existing, live_system);
    let blocked = blocked
        .into_iter()
        .map(|(blocked, status)| {
            statuses[blocked.build] = status;
            blocked
        })
        .collect();
    KernelPlan {
        release: kernel.release.clone(),
        actions,
        statuses,
        blocked,
        struct_module_unchecked: kernel.this_module_size.is_none(),
    }
}

/// The desired links that cannot be placed: their path is taken by a non-symlink, or by a
/// link to something unreadable (kept as it is).
fn blocked_links(
    desired: &BTreeMap<String, usize>,
    existing: &[ExistingLink],
    occupied: &Occupied,
) -> Vec<BlockedLink> {
    let unreadable: BTreeSet<&str> = existing
        .iter()
        .filter(|link| link.leads_to == LinkedModule::Unreadable)
        .map(|link| link.link.as_str())
        .collect();
    desired
        .iter()
        .filter_map(|(link, &build)| {
            let by = if occupied.blocks(link) {
                Obstacle::NotALink
            } else if unreadable.contains(link.as_str()) {
                Obstacle::UnreadableLink
            } else {
                return None;
            };
            Some(BlockedLink {
                link: link.clone(),
                build,
                by,
            })
        })
        .collect()
}

/// Picks one build per module name: the newest whose own checks pass, re-deciding until no
/// chosen build fails for a reason of its own. Between builds for the same release, the one
/// already linked stays, so that re-running changes nothing.
fn choose_builds(
    kernel: &KernelAbi,
    builds: &[Build],
    decider: &Decider<'_, '_>,
    linked: &BTreeSet<usize>,
    unavailable: &BTreeSet<usize>,
) -> Vec<Status> {
    let by_name = builds_by_name_newest_first(kernel, builds, linked, unavailable);
    let mut excluded: BTreeMap<usize, Vec<Reason>> = BTreeMap::new();
    // The builds chosen in each round, and the round each excluded build fell in.
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    let mut excluded_in: BTreeMap<usize, usize> = BTreeMap::new();
    // A name whose every build failed still takes part with its newest build, which falls
    // again, so that its users learn their provider does not fit.
    let choose = |excluded: &BTreeMap<usize, Vec<Reason>>| -> Vec<usize> {
        by_name
            .values()
            .map(|group| {
                let standing = group.iter().copied().find(|i| !excluded.contains_key(i));
                standing.unwrap_or(group[0])
            })
            .collect()
    };
    let mut chosen = choose(&excluded);
    loop {
        let mut verdicts = decider.decide(&chosen);
        let providers: HashSet<Cow<str>> = chosen
            .iter()
            .map(|&i| builds[i].name)
            .filter(|name| !kernel.ships_module(name))
            .map(normalize_module_name)
            .collect();
        let newly: Vec<usize> = (0..chosen.len())
            .filter(|&at| {
                fails_on_its_own(&verdicts[at], &providers) && !excluded.contains_key(&chosen[at])
            })
            .collect();
        if !newly.is_empty() {
            // From now on the reasons of the excluded are read from `excluded`, not from their
            // verdicts: they are moved, not copied.
            for at in newly {
                excluded.insert(chosen[at], std::mem::take(&mut verdicts[at].reasons));
                excluded_in.insert(chosen[at], rounds.len());
            }
            // Deciding the same builds again would give the same verdicts and exclude nothing
            // more: then this round is the last.
            let next = choose(&excluded);
            let again = next != chosen;
            rounds.push(std::mem::replace(&mut chosen, next));
            if again {
                continue;
            }
        }
        let stale = StaleReasons {
            by_name: &by_name,
            rounds: &rounds,
            excluded_in: &excluded_in,
            chosen: &chosen,
        };
        stale.rejudge(decider, &mut excluded);
        let mut statuses = statuses(kernel, builds, &by_name, &chosen, verdicts, excluded);
        judge_passed_over(decider, &chosen, &mut statuses);
        return statuses;
    }
}

/// A build excluded in an early round keeps the reasons of that round, which may name another
/// module's build that was itself excluded later. Those whose reasons name a module whose
/// chosen build has changed since are judged again against the builds finally chosen, so that
/// the report names the providers that would be there.
struct StaleReasons<'p> {
    by_name: &'p BTreeMap<String, Vec<usize>>,
    rounds: &'p [Vec<usize>],
    excluded_in: &'p BTreeMap<usize, usize>,
    chosen: &'p [usize],
}

impl StaleReasons<'_> {
    fn rejudge(&self, decider: &Decider, excluded: &mut BTreeMap<usize, Vec<Reason>>) {
        // Builds excluded in a round that chose what was finally chosen have nothing stale.
        let changed: Vec<bool> = self.rounds.iter().map(|then| then != self.chosen).collect();
        if !changed.contains(&true) {
            return;
        }
        let group_of: BTreeMap<&str, usize> = self
            .by_name
            .keys()
            .enumerate()
            .map(|(group, name)| (name.as_str(), group))
            .collect();
        for (&build, reasons) in excluded.iter_mut() {
            let Some((then, true)) = self
                .excluded_in
                .get(&build)
                .and_then(|&r| Some((self.rounds.get(r)?, *changed.get(r)?)))
            else {
                continue;
            };
            let changed_since = reasons.iter().flat_map(named_modules).any(|name| {
                group_of
                    .get(normalize_module_name(name).as_ref())
                    .is_some_and(|&group| then[group] != self.chosen[group])
            });
            if !changed_since {
                continue;
            }
            let Some(slot) = self
                .by_name
                .values()
                .position(|group| group.contains(&build))
            else {
                continue;
            };
            let mut swapped = self.chosen.to_vec();
            swapped[slot] = build;
            let verdict = &decider.decide(&swapped)[slot];
            if !verdict.fits() {
                *reasons = verdict.reasons.clone();
            }
        }
    }
}

/// The modules a reason names as providers or cycle members.
fn named_modules(reason: &Reason) -> Vec<&str> {
    match reason {
        Reason::DependencyCycle { members } => members.iter().map(String::as_str).collect(),
        // Names a module that is not installed for the kernel: never a candidate.
        Reason::ProviderNotInstalled { .. } => Vec::new(),
        _ => reason.provider().into_iter().collect(),
    }
}

/// Every build the kernel may take, checked against the kernel once (see [`Prepared`]), so
/// that each choice of builds costs only what the builds take from each other.
struct Decider<'p, 'a> {
    /// By build; `None` for builds made for the kernel itself, which are never candidates.
    prepared: &'p [Option<Prepared<'a>>],
}

impl Decider<'_, '_> {
    /// The verdicts of these builds (indices of builds for other kernels), taken together.
    fn decide(&self, chosen: &[usize]) -> Vec<Verdict> {
        let candidates: Vec<&Prepared> = chosen
            .iter()
            .filter_map(|&build| self.prepared[build].as_ref())
            .collect();
        decide_prepared(&candidates)
    }
}

/// A build passed over for a newer one is still judged, in the newer one's place, so that the
/// report can say whether it would have fitted.
fn judge_passed_over(decider: &Decider, chosen: &[usize], statuses: &mut [Status]) {
    let passed_over: Vec<(usize, usize)> = statuses
        .iter()
        .enumerate()
        .filter_map(|(build, status)| match status {
            Status::NewerBuildChosen { chosen } => Some((build, *chosen)),
            _ => None,
        })
        .collect();
    for (build, winner) in passed_over {
        let swapped: Vec<usize> = chosen
            .iter()
            .map(|&i| if i == winner { build } else { i })
            .collect();
        let position = swapped.iter().position(|&i| i == build).unwrap_or(0);
        let verdict = &decider.decide(&swapped)[position];
        if !verdict.fits() {
            statuses[build] = Status::DoesNotFit(verdict.reasons.clone());
        }
    }
}

/// Whether a build fails for a reason that no choice of other builds can change. One that
/// falls only because of what another candidate offers (that provider fell, or its export is
/// GPL-only, namespaced or of another CRC) may fit once another build of that provider is
/// chosen, so it stays in the running.
///
/// A provider symvers names but the kernel does not have installed counts the same way: when a
/// build of that module is a candidate, another build of it may export the symbol. A `struct
/// module` of another size, like every other reason, is the build's own.
fn fails_on_its_own(verdict: &Verdict, candidate_providers: &HashSet<Cow<str>>) -> bool {
    verdict
        .reasons
        .iter()
        .any(|reason| match (reason, reason.provider()) {
            (Reason::ProviderDoesNotFit { .. }, _) => false,
            (_, Some(provider)) => !candidate_providers.contains(&normalize_module_name(provider)),
            (_, None) => true,
        })
}

fn builds_by_name_newest_first(
    kernel: &KernelAbi,
    builds: &[Build],
    linked: &BTreeSet<usize>,
    unavailable: &BTreeSet<usize>,
) -> BTreeMap<String, Vec<usize>> {
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, build) in builds.iter().enumerate() {
        if !made_for(kernel, build) && !unavailable.contains(&index) {
            by_name
                .entry(normalize_module_name(build.name).into_owned())
                .or_default()
                .push(index);
        }
    }
    for group in by_name.values_mut() {
        group.sort_by(|&a, &b| {
            rpmver::compare(builds[b].built_for, builds[a].built_for)
                .then(linked.contains(&b).cmp(&linked.contains(&a)))
                .then(a.cmp(&b))
        });
    }
    by_name
}

fn statuses(
    kernel: &KernelAbi,
    builds: &[Build],
    by_name: &BTreeMap<String, Vec<usize>>,
    chosen: &[usize],
    verdicts: Vec<Verdict>,
    mut excluded: BTreeMap<usize, Vec<Reason>>,
) -> Vec<Status> {
    let mut statuses: Vec<Status> = builds
        .iter()
        .map(|build| {
            if made_for(kernel, build) {
                Status::OwnKernel
            } else {
                Status::DoesNotFit(Vec::new())
            }
        })
        .collect();
    for (&build, verdict) in chosen.iter().zip(verdicts) {
        statuses[build] = if verdict.fits() {
            Status::Fits {
                shadowed: verdict.shadowed,
            }
        } else {
            Status::DoesNotFit(verdict.reasons)
        };
    }
    let is_chosen: HashSet<usize> = chosen.iter().copied().collect();
    for group in by_name.values() {
        let winner = group.iter().copied().find(|i| is_chosen.contains(i));
        for &build in group {
            if let Some(reasons) = excluded.remove(&build) {
                statuses[build] = Status::DoesNotFit(reasons);
            } else if let Some(chosen) = winner.filter(|&winner| winner != build) {
                statuses[build] = Status::NewerBuildChosen { chosen };
            }
        }
    }
    statuses
}

/// Link path (base-relative) -> build, for every build that fits. A build already linked
/// keeps its link where it is (an admin or an older tool may have put it elsewhere); a new
/// link goes below `weak-updates/` at the module's path below its kernel's first directory.
fn desired_links(
    release: &str,
    builds: &[Build],
    statuses: &[Status],
    existing: &[ExistingLink],
) -> BTreeMap<String, usize> {
    let mut desired = BTreeMap::new();
    for (index, build) in builds.iter().enumerate() {
        if !matches!(statuses[index], Status::Fits { .. }) {
            continue;
        }
        let present = existing
            .iter()
            .find(|link| link.leads_to == LinkedModule::Build(index));
        let link = match present {
            Some(link) => link.link.clone(),
            None => format!(
                "{}/{}",
                weak_updates_dir(release),
                link_subpath(build.path, build.built_for)
            ),
        };
        desired.entry(link).or_insert(index);
    }
    desired
}

fn diff(
    builds: &[Build],
    statuses: &[Status],
    mut desired: BTreeMap<String, usize>,
    existing: &[ExistingLink],
    live_system: bool,
) -> Vec<Action> {
    let mut removals = Vec::new();
    let mut links = Vec::new();
    for link in existing {
        let wanted = desired.remove(&link.link);
        match (link.leads_to, wanted) {
            (LinkedModule::Unreadable, _) => {}
            (LinkedModule::Build(have), Some(want)) if have == want => {}
            (_, Some(want)) => links.push(Action::Link {
                link: link.link.clone(),
                target: link_target(&link.link, builds[want].path, live_system),
                build: want,
                replacing: Some(link.target_text.clone()),
            }),
            (leads_to, None) => removals.push(Action::Unlink {
                link: link.link.clone(),
                target_text: link.target_text.clone(),
                why: unlink_reason(leads_to, statuses),
            }),
        }
    }
    for (link, build) in desired {
        links.push(Action::Link {
            target: link_target(&link, builds[build].path, live_system),
            link,
            build,
            replacing: None,
        });
    }
    removals.sort_by(|a: &Action, b| a.link_path().cmp(b.link_path()));
    links.sort_by(|a, b| a.link_path().cmp(b.link_path()));
    links.extend(removals);
    links
}

fn unlink_reason(leads_to: LinkedModule, statuses: &[Status]) -> UnlinkReason {
    let LinkedModule::Build(build) = leads_to else {
        return UnlinkReason::TargetGone;
    };
    match &statuses[build] {
        Status::DoesNotFit(reasons) => UnlinkReason::DoesNotFit(reasons.clone()),
        Status::NewerBuildChosen { chosen } => UnlinkReason::Superseded { by: *chosen },
        Status::OwnKernel => UnlinkReason::OwnKernel,
        Status::Fits { .. } => UnlinkReason::Duplicate { by: build },
    }
}
