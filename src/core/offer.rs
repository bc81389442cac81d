//! Which builds each kernel is offered in a run, by mode. Every mode comes down to planning
//! kernels with some builds offered; this is the one place that says which.
//!
//! Besides what a mode offers, a kernel always takes part with the builds its links lead to,
//! and a kernel that lost a module (a link whose target is gone, or one of its own modules on
//! `--remove-modules`) is offered every installed build: the module that went may have
//! refused others (a GPL-only or namespaced export, a same-name module), and another build of
//! it may take its place.

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
}
