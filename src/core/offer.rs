//! Which builds each kernel is offered in a run, by mode. Every mode comes down to planning
//! kernels with some builds offered; this is the one place that says which.
//!
//! Besides what a mode offers, a kernel always takes part with the builds its links lead to,
//! and a kernel that lost a module (a link whose target is gone, or one of its own modules on
//! `--remove-modules`) is offered every installed build: the module that went may have
//! refused others (a GPL-only or namespaced export, a same-name module), and another build of
//! it may take its place.

use crate::core::plan::{ExistingLink, LinkedModule};

/// What a run does, as far as offering goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    AddModules,
    RemoveModules,
    AddKernel,
    RemoveKernel,
    Sync,
    Check,
    Explain,
}

/// What the shell found about one kernel that the policy depends on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCase {
    /// `--remove-modules` was given a module of this kernel whose file is gone.
    pub lost_own_module: bool,
    /// One of its links leads to nothing.
    pub has_gone_link: bool,
}

/// The builds a kernel is offered, besides those its links lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// The module paths given on stdin.
    pub given: bool,
    /// Every module in the `extra/` of the other kernels.
    pub every_installed_build: bool,
}

impl Offer {
    const NOTHING: Offer = Offer {
        given: false,
        every_installed_build: false,
    };
}

/// What `run` offers a kernel in `case`. `offer(run, KernelCase::default())` is what the mode
/// itself offers: the builds whose verdicts a run reports.
pub fn offer(run: Run, case: KernelCase) -> Offer {
    let lost_a_module = case.has_gone_link || (run == Run::RemoveModules && case.lost_own_module);
    let base = match run {
        Run::AddModules | Run::Explain => Offer {
            given: true,
            every_installed_build: false,
        },
        Run::RemoveModules | Run::RemoveKernel => Offer::NOTHING,
        Run::AddKernel | Run::Sync | Run::Check => Offer {
            given: false,
            every_installed_build: true,
        },
    };
    Offer {
        every_installed_build: base.every_installed_build || lost_a_module,
        ..base
    }
}

/// A link in a kernel's `weak-updates/` as the run found it, its target named by module id:
/// an index into the run's table of every module it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundLink {
    /// Relative to the base directory.
    pub link: String,
    pub target_text: String,
    pub leads_to: LinkTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkTarget {
    Module(usize),
    Gone,
    /// Something is there that cannot be read as a module; it is kept as it is.
    Unreadable,
}

/// The builds one kernel is planned with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    /// Module ids in build order: the build indices of the kernel's plan index into this.
    pub members: Vec<usize>,
    /// How many of `members`, from the first, the mode itself offered; their verdicts are
    /// what a run reports.
    pub by_mode: usize,
    /// The kernel's links, their targets as build indices.
    pub existing: Vec<ExistingLink>,
}

/// What `run` offers one kernel: `given` (the modules on stdin), `installed` (every build in
/// the `extra/` of the other kernels) when the policy says so, and the builds its `links` lead
/// to. `lost_own_module`: `--remove-modules` was given a module of this kernel that is gone.
pub fn offered_builds(
    run: Run,
    given: &[usize],
    installed: &[usize],
    links: &[FoundLink],
    lost_own_module: bool,
) -> Offered {
    let by_mode = offer(run, KernelCase::default());
    let mut members = Vec::new();
    if by_mode.given {
        members.extend_from_slice(given);
    }
    if by_mode.every_installed_build {
        for &build in installed {
            member_index(&mut members, build);
        }
    }
    let offered = members.len();
    let existing: Vec<ExistingLink> = links
        .iter()
        .map(|found| ExistingLink {
            link: found.link.clone(),
            target_text: found.target_text.clone(),
            leads_to: match found.leads_to {
                LinkTarget::Module(module) => {
                    LinkedModule::Build(member_index(&mut members, module))
                }
                LinkTarget::Gone => LinkedModule::Gone,
                LinkTarget::Unreadable => LinkedModule::Unreadable,
            },
        })
        .collect();
    let case = KernelCase {
        lost_own_module,
        has_gone_link: links.iter().any(|link| link.leads_to == LinkTarget::Gone),
    };
    if offer(run, case).every_installed_build && !by_mode.every_installed_build {
        for &build in installed {
            member_index(&mut members, build);
        }
    }
    Offered {
        members,
        by_mode: offered,
        existing,
    }
}

/// Whether `run` may offer a kernel a build made for another kernel, known before its links
/// are resolved: `has_links` (they lead to builds it takes part with, and a gone one makes it
/// take every installed build), `given_for_others` (a module on stdin was built for another
/// kernel). Errs towards yes: no only when every build [`offered_builds`] can give it is its own.
pub fn may_offer_others_builds(
    run: Run,
    lost_own_module: bool,
    has_links: bool,
    given_for_others: bool,
) -> bool {
    let case = KernelCase {
        lost_own_module,
        has_gone_link: false,
    };
    let offer = offer(run, case);
    offer.every_installed_build || has_links || (offer.given && given_for_others)
}

/// The position of `module` among the kernel's builds, adding it if it is not there yet.
fn member_index(members: &mut Vec<usize>, module: usize) -> usize {
    match members.iter().position(|m| *m == module) {
        Some(index) => index,
        None => {
            members.push(module);
            members.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: KernelCase = KernelCase {
        lost_own_module: false,
        has_gone_link: false,
    };
    const GONE_LINK: KernelCase = KernelCase {
        lost_own_module: false,
        has_gone_link: true,
    };
    const LOST_OWN: KernelCase = KernelCase {
        lost_own_module: true,
        has_gone_link: false,
    };

    #[test]
    fn a_kernel_is_offered_no_build_of_another_only_when_nothing_can_bring_one() {
        // (run, lost own module, has links, a given module built for another kernel)
        let offered_none = [
            (Run::AddModules, false, false, false),
            (Run::Explain, false, false, false),
            (Run::RemoveModules, false, false, true),
            (Run::RemoveKernel, false, false, true),
        ];
        for (run, lost, links, given) in offered_none {
            assert!(!may_offer_others_builds(run, lost, links, given), "{run:?}");
        }
        let may_offer = [
            (Run::AddModules, false, false, true),
            (Run::AddModules, false, true, false),
            (Run::RemoveModules, true, false, false),
            (Run::RemoveModules, false, true, false),
            (Run::AddKernel, false, false, false),
            (Run::Sync, false, false, false),
            (Run::Check, false, false, false),
        ];
        for (run, lost, links, given) in may_offer {
            assert!(may_offer_others_builds(run, lost, links, given), "{run:?}");
        }
    }

    #[test]
    fn each_mode_offers_what_it_should_to_each_kind_of_kernel() {
        // (run, kernel's case, given, every installed build)
        let table = [
            (Run::AddModules, PLAIN, true, false),
            (Run::AddModules, GONE_LINK, true, true),
            (Run::AddModules, LOST_OWN, true, false),
            (Run::Explain, PLAIN, true, false),
            (Run::Explain, GONE_LINK, true, true),
            (Run::RemoveModules, PLAIN, false, false),
            (Run::RemoveModules, GONE_LINK, false, true),
            (Run::RemoveModules, LOST_OWN, false, true),
            (Run::AddKernel, PLAIN, false, true),
            (Run::AddKernel, GONE_LINK, false, true),
            (Run::Sync, PLAIN, false, true),
            (Run::Check, PLAIN, false, true),
        ];
        for (run, case, given, every) in table {
            assert_eq!(
                offer(run, case),
                Offer {
                    given,
                    every_installed_build: every
                },
                "{run:?} {case:?}"
            );
        }
    }

    fn link(name: &str, leads_to: LinkTarget) -> FoundLink {
        FoundLink {
            link: format!("lib/modules/K1/weak-updates/{name}.ko"),
            target_text: format!("/lib/modules/K0/extra/{name}.ko"),
            leads_to,
        }
    }

    #[test]
    fn builds_are_the_given_then_the_installed_then_those_the_links_lead_to() {
        let given = [7, 3];
        let installed = [3, 4, 5];
        let linked = [
            link("a", LinkTarget::Module(3)),
            link("b", LinkTarget::Module(9)),
        ];
        let gone = [link("c", LinkTarget::Gone)];
        let unreadable = [link("d", LinkTarget::Unreadable)];
        // (run, links, lost own module, members, offered by the mode, where each link leads)
        type Row<'a> = (
            Run,
            &'a [FoundLink],
            bool,
            &'a [usize],
            usize,
            &'a [LinkedModule],
        );
        let table: [Row; 7] = [
            (
                Run::AddModules,
                &linked,
                false,
                &[7, 3, 9],
                2,
                &[LinkedModule::Build(1), LinkedModule::Build(2)],
            ),
            (
                Run::AddModules,
                &gone,
                false,
                &[7, 3, 4, 5],
                2,
                &[LinkedModule::Gone],
            ),
            (
                Run::AddKernel,
                &linked,
                false,
                &[3, 4, 5, 9],
                3,
                &[LinkedModule::Build(0), LinkedModule::Build(3)],
            ),
            (
                Run::RemoveModules,
                &linked,
                false,
                &[3, 9],
                0,
                &[LinkedModule::Build(0), LinkedModule::Build(1)],
            ),
            (Run::RemoveModules, &[], true, &[3, 4, 5], 0, &[]),
            (
                Run::RemoveModules,
                &unreadable,
                false,
                &[],
                0,
                &[LinkedModule::Unreadable],
            ),
            (Run::Explain, &[], true, &[7, 3], 2, &[]),
        ];
        for (run, links, lost_own, members, by_mode, leads_to) in table {
            let offered = offered_builds(run, &given, &installed, links, lost_own);
            let led_to: Vec<LinkedModule> =
                offered.existing.iter().map(|link| link.leads_to).collect();
            assert_eq!(
                (
                    offered.members.as_slice(),
                    offered.by_mode,
                    led_to.as_slice()
                ),
                (members, by_mode, leads_to),
                "{run:?} {links:?} lost own: {lost_own}"
            );
        }
    }
}
