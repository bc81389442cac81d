//! What `--check` reports about one kernel: everything a plan would change, and what an
//! interrupted run left, as findings; links the kernel's own module shadows, as notes.

use std::fmt;

use crate::core::compat::Reason;
use crate::core::index::IndexMismatch;
use crate::core::paths::below_kernel;
use crate::core::plan::{Action, KernelPlan, Obstacle, Status, UnlinkReason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    NotLinked {
        build: String,
        link: String,
    },
    PointsElsewhere {
        link: String,
        target: String,
        build: String,
    },
    Dangling {
        link: String,
        target: String,
    },
    NoLongerFits {
        link: String,
        target: String,
        reasons: Vec<Reason>,
    },
    NotNewest {
        link: String,
        newer: String,
    },
    IntoOwnKernel {
        link: String,
        target: String,
    },
    Duplicate {
        link: String,
        target: String,
    },
    Blocked {
        link: String,
        build: String,
        by: Obstacle,
    },
    Indexes(IndexMismatch),
    Owed(String),
    Leftover(String),
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::NotLinked { build, link } => {
                write!(f, "/{build} fits and is not linked (would be {link})")
            }
            Finding::PointsElsewhere {
                link,
                target,
                build,
            } => write!(f, "{link} -> {target}: should lead to /{build}"),
            Finding::Dangling { link, target } => write!(f, "{link} -> {target}: target is gone"),
            Finding::NoLongerFits {
                link,
                target,
                reasons,
            } => {
                write!(f, "{link} -> {target}: no longer fits")?;
                if let Some(first) = reasons.first() {
                    write!(f, " ({first}")?;
                    if reasons.len() > 1 {
                        write!(f, ", and {} more", reasons.len() - 1)?;
                    }
                    write!(f, ")")?;
                }
                Ok(())
            }
            Finding::NotNewest { link, newer } => {
                write!(
                    f,
                    "{link}: the newer build /{newer} fits and should be linked instead"
                )
            }
            Finding::IntoOwnKernel { link, target } => {
                write!(
                    f,
                    "{link} -> {target}: points into the kernel's own modules"
                )
            }
            Finding::Duplicate { link, target } => {
                write!(
                    f,
                    "{link} -> {target}: the module is linked at its own path too"
                )
            }
            Finding::Blocked { link, build, by } => {
                write!(f, "{link}: {}, so /{build} cannot be linked", by.describe())
            }
            Finding::Indexes(mismatch) => write!(f, "indexes do not match: {mismatch}"),
            Finding::Owed(work) => write!(f, "owed {work} by an interrupted or failed run"),
            Finding::Leftover(path) => write!(f, "{path}: left by an interrupted run"),
        }
    }
}

/// What the audit needs besides the plan, all of it read by the shell.
pub struct KernelState<'a> {
    /// Base-relative path of each build the plan's indices refer to.
    pub builds: &'a [&'a str],
    /// Base-relative link path of each linked build, by build index.
    pub linked: &'a [(String, usize)],
    pub index: Option<&'a IndexMismatch>,
    /// The work a record says the kernel is owed ("depmod and the initramfs"), if any.
    pub owed: Option<String>,
    pub leftovers: &'a [String],
}

/// Findings and notes for one kernel, in a fixed order: links, then indexes, records and
/// leftovers.
pub fn audit(plan: &KernelPlan, state: &KernelState) -> (Vec<Finding>, Vec<String>) {
    let short = |link: &str| below_kernel(link, &plan.release);
    let mut findings = Vec::new();
    for action in &plan.actions {
        findings.push(match action {
            Action::Link {
                link,
                build,
                replacing: None,
                ..
            } => Finding::NotLinked {
                build: state.builds[*build].to_owned(),
                link: short(link),
            },
            Action::Link {
                link,
                build,
                replacing: Some(old),
                ..
            } => Finding::PointsElsewhere {
                link: short(link),
                target: old.clone(),
                build: state.builds[*build].to_owned(),
            },
            Action::Unlink {
                link,
                target_text,
                why,
            } => {
                let (link, target) = (short(link), target_text.clone());
                match why {
                    UnlinkReason::TargetGone => Finding::Dangling { link, target },
                    UnlinkReason::DoesNotFit(reasons) => Finding::NoLongerFits {
                        link,
                        target,
                        reasons: reasons.clone(),
                    },
                    UnlinkReason::Superseded { by } => Finding::NotNewest {
                        link,
                        newer: state.builds[*by].to_owned(),
                    },
                    UnlinkReason::OwnKernel => Finding::IntoOwnKernel { link, target },
                    UnlinkReason::Duplicate { .. } => Finding::Duplicate { link, target },
                }
            }
        });
    }
    for blocked in &plan.blocked {
        findings.push(Finding::Blocked {
            link: short(&blocked.link),
            build: state.builds[blocked.build].to_owned(),
            by: blocked.by,
        });
    }
    findings.extend(state.index.cloned().map(Finding::Indexes));
    findings.extend(state.owed.clone().map(Finding::Owed));
    findings.extend(
        state
            .leftovers
            .iter()
            .map(|path| Finding::Leftover(short(path))),
    );
    let notes = state
        .linked
        .iter()
        .filter(|(_, build)| matches!(plan.statuses[*build], Status::Fits { shadowed: true }))
        .map(|(link, _)| {
            format!(
                "{}: the kernel's own module of that name is loaded first",
                short(link)
            )
        })
        .collect();
    (findings, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::plan::BlockedLink;

    fn plan(actions: Vec<Action>, blocked: Vec<BlockedLink>) -> KernelPlan {
        KernelPlan {
            release: "K1".into(),
            actions,
            statuses: vec![
                Status::Fits { shadowed: true },
                Status::Fits { shadowed: false },
            ],
            blocked,
            struct_module_unchecked: false,
        }
    }

    #[test]
    fn every_change_a_plan_would_make_is_a_finding_and_shadowing_only_a_note() {
        let plan = plan(
            vec![
                Action::Link {
                    link: "lib/modules/K1/weak-updates/d/b.ko".into(),
                    target: "../../../K0/extra/d/b.ko".into(),
                    build: 1,
                    replacing: None,
                },
                Action::Unlink {
                    link: "lib/modules/K1/weak-updates/d/gone.ko".into(),
                    target_text: "../../../K0/extra/d/gone.ko".into(),
                    why: UnlinkReason::TargetGone,
                },
            ],
            vec![BlockedLink {
                link: "lib/modules/K1/weak-updates/d/c.ko".into(),
                build: 1,
                by: Obstacle::NotALink,
            }],
        );
        let builds = ["lib/modules/K0/extra/d/a.ko", "lib/modules/K0/extra/d/b.ko"];
        let linked = [("lib/modules/K1/weak-updates/d/a.ko".to_owned(), 0)];
        let state = KernelState {
            builds: &builds,
            linked: &linked,
            index: Some(&IndexMismatch::Empty),
            owed: Some("the initramfs".into()),
            leftovers: &["lib/modules/K1/weak-updates/d/.b.ko.weak-modules.1.0".into()],
        };
        let (findings, notes) = audit(&plan, &state);
        let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "/lib/modules/K0/extra/d/b.ko fits and is not linked (would be weak-updates/d/b.ko)",
                "weak-updates/d/gone.ko -> ../../../K0/extra/d/gone.ko: target is gone",
                "weak-updates/d/c.ko: not a symlink, so /lib/modules/K0/extra/d/b.ko cannot be linked",
                "indexes do not match: modules.dep is empty",
                "owed the initramfs by an interrupted or failed run",
                "weak-updates/d/.b.ko.weak-modules.1.0: left by an interrupted run",
            ]
        );
        assert_eq!(
            notes,
            ["weak-updates/d/a.ko: the kernel's own module of that name is loaded first"]
        );
    }
}
