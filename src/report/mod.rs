//! What a run tells, as typed events: verdicts with their reasons, link changes with why,
//! depmod and initramfs, audit findings, problems and warnings. A reporter renders them: the
//! bash tool's `--verbose` sentences (`text`), or JSON Lines (`json`, `--json`).

pub mod explain;
pub mod json;
pub mod text;

use serde::Serialize;

use crate::core::compat::Reason;

/// A reason a build does not fit, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonView {
    /// Stable name of the loader rule (`crc`, `missing-symbol`, `gpl-only`, ...).
    pub rule: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
}

impl From<&Reason> for ReasonView {
    fn from(reason: &Reason) -> Self {
        ReasonView {
            rule: reason.rule(),
            message: reason.to_string(),
            symbol: reason.symbol().map(str::to_owned),
        }
    }
}

pub fn reason_views(reasons: &[Reason]) -> Vec<ReasonView> {
    reasons.iter().map(ReasonView::from).collect()
}

/// A module build: its path (from the root, with a leading `/`) and the release it was built
/// for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildRef {
    pub path: String,
    pub built_for: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    Fits,
    DoesNotFit,
    /// Fits, but a newer build of the same module is linked.
    NewerBuildChosen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnlinkWhy {
    TargetGone,
    DoesNotFit,
    Superseded,
    OwnKernel,
    Duplicate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageOutcome {
    Unchanged,
    Replaced,
    ReplacedUndecodable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Something about a kernel said before its verdicts (a rule that could not be checked).
    KernelNote {
        kernel: String,
        note: String,
    },
    /// How one offered build fares on one kernel.
    Verdict {
        kernel: String,
        build: BuildRef,
        fit: Fit,
        /// The kernel ships its own module of that name, which depmod's search order loads
        /// first.
        shadowed: bool,
        reasons: Vec<ReasonView>,
        #[serde(skip_serializing_if = "Option::is_none")]
        chosen: Option<BuildRef>,
    },
    /// A link created, or replaced when `replacing` is set (its old target).
    Link {
        kernel: String,
        link: String,
        target: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        replacing: Option<String>,
    },
    Unlink {
        kernel: String,
        link: String,
        target: String,
        why: UnlinkWhy,
        reasons: Vec<ReasonView>,
        #[serde(skip_serializing_if = "Option::is_none")]
        superseded_by: Option<BuildRef>,
    },
    /// `--remove-modules`: a link of the same file name that leads elsewhere is kept.
    SkippedSymlink {
        path: String,
    },
    /// `--remove-kernel`: an entry of the kernel's `weak-updates/` removed.
    Removed {
        link: String,
    },
    /// Work an interrupted or failed run left for this kernel.
    Owed {
        kernel: String,
        work: String,
    },
    /// A temporary file of an interrupted run, removed.
    Cleared {
        path: String,
    },
    IndexMismatch {
        kernel: String,
        mismatch: String,
    },
    Depmod {
        kernel: String,
        command: Vec<String>,
    },
    DepmodSkipped {
        kernel: String,
    },
    /// Dry run: the initramfs would be checked.
    InitramfsPending {
        kernel: String,
    },
    Initramfs {
        kernel: String,
        image: String,
        outcome: ImageOutcome,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// `--check`: something out of order on a kernel.
    Finding {
        kernel: String,
        finding: String,
    },
    /// `--check`: worth knowing, not out of order.
    Note {
        kernel: String,
        note: String,
    },
    /// `--check`: a kernel with no finding.
    InOrder {
        kernel: String,
    },
    CheckSummary {
        kernels: usize,
        findings: usize,
        kernels_out_of_order: usize,
    },
    /// A file or step that failed; the exit status will be 1.
    Problem {
        message: String,
    },
    Warning {
        message: String,
    },
    /// The last event of a run.
    Summary {
        problems: usize,
        findings: usize,
    },
    /// `--explain` without `--json`: one module's table, already laid out. With `--json` the
    /// same facts go out as `verdict` and `link` events instead, so this one is never
    /// serialized.
    #[serde(skip)]
    Explanation {
        table: String,
    },
}

pub trait Reporter {
    fn report(&mut self, event: &Event);
    /// Whether verdicts are printed at all: when not, a run does not build them (with a
    /// thousand candidates, formatting every reason is a twentieth of a dry run).
    fn shows_verdicts(&self) -> bool {
        true
    }
    /// Writes out what is buffered: before depmod and dracut write to the same stdout.
    fn flush(&mut self);
}
