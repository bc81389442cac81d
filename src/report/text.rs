//! The words a run prints: with `--verbose`, the bash tool's sentences word for word where it
//! has one (scripts grep for them), our reasons on indented lines after them; `--check`'s
//! findings always. Problems and warnings go to stderr through `tracing`, not here.

use std::io::Write;

use super::{BuildRef, Event, Fit, ImageOutcome, ReasonView, Reporter, UnlinkWhy};

pub struct Text<W: Write> {
    out: W,
    verbose: bool,
}

impl<W: Write> Text<W> {
    pub fn new(out: W, verbose: bool) -> Self {
        Text { out, verbose }
    }
}

impl<W: Write> Reporter for Text<W> {
    fn flush(&mut self) {
        let _ = self.out.flush();
    }

    fn shows_verdicts(&self) -> bool {
        self.verbose
    }

    fn report(&mut self, event: &Event) {
        if let Event::Explanation { table } = event {
            let _ = write!(self.out, "{table}");
            return;
        }
        let always = matches!(
            event,
            Event::Finding { .. }
                | Event::Note { .. }
                | Event::InOrder { .. }
                | Event::CheckSummary { .. }
        );
        if always || self.verbose {
            for line in lines(event) {
                let _ = writeln!(self.out, "{line}");
            }
        }
    }
}

fn label(build: &BuildRef) -> String {
    format!("{} (kernel {})", build.path, build.built_for)
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

pub fn lines(event: &Event) -> Vec<String> {
    match event {
        Event::KernelNote { note, .. } => vec![note.clone()],
        Event::Verdict {
            kernel,
            build,
            fit,
            shadowed,
            reasons,
            chosen,
        } => verdict_lines(kernel, build, *fit, *shadowed, reasons, chosen.as_ref()),
        Event::Link {
            link,
            target,
            replacing: None,
            ..
        } => vec![format!("Linking {link} -> {target}")],
        Event::Link {
            link,
            target,
            replacing: Some(old),
            ..
        } => vec![format!("Replacing {link} -> {old} with -> {target}")],
        Event::Unlink {
            kernel,
            link,
            target,
            why,
            reasons,
            superseded_by,
        } => {
            let mut lines = vec![format!(
                "Removing compatible module {} from kernel {kernel}",
                file_name(link)
            )];
            lines.push(match (why, superseded_by) {
                (UnlinkWhy::TargetGone, _) => format!("    {link} -> {target}: target is gone"),
                (UnlinkWhy::DoesNotFit, _) => format!("    {link} -> {target}: does not fit"),
                (UnlinkWhy::Superseded, Some(by)) => {
                    format!("    {link}: superseded by the newer build {}", label(by))
                }
                (UnlinkWhy::Superseded, None) => format!("    {link}: superseded"),
                (UnlinkWhy::OwnKernel, _) => {
                    format!("    {link} -> {target}: points into the kernel's own modules")
                }
                (UnlinkWhy::Duplicate, _) => {
                    format!("    {link} -> {target}: the module is linked at its own path")
                }
            });
            lines.extend(reason_lines(reasons));
            lines
        }
        Event::SkippedSymlink { path } => vec![format!("Skipping symlink {path}")],
        Event::Removed { link } => vec![format!("rm -f {link}")],
        Event::Owed { kernel, work } => vec![format!(
            "Kernel {kernel} is owed {work} by an interrupted or failed run"
        )],
        Event::Cleared { path } => vec![format!("Removed {path}, left by an interrupted run")],
        Event::IndexMismatch { kernel, mismatch } => vec![format!(
            "Indexes of kernel {kernel} do not match its modules: {mismatch}"
        )],
        Event::Depmod { command, .. } => vec![command.join(" ")],
        Event::DepmodSkipped { kernel } => {
            vec![format!("Skipping depmod for non-installed kernel {kernel}")]
        }
        Event::InitramfsPending { kernel } => {
            vec![format!("Would check the initramfs of kernel {kernel}")]
        }
        Event::Initramfs {
            image,
            outcome,
            detail,
            ..
        } => vec![match outcome {
            ImageOutcome::Unchanged => format!("{image}: modules unchanged, kept"),
            ImageOutcome::Replaced => format!("{image}: modules changed, replaced"),
            ImageOutcome::ReplacedUndecodable => format!(
                "{image}: could not be read ({}), replaced",
                detail.as_deref().unwrap_or("unknown format")
            ),
        }],
        Event::Finding { kernel, finding } => vec![format!("{kernel}: {finding}")],
        Event::Note { kernel, note } => vec![format!("{kernel}: note: {note}")],
        Event::InOrder { kernel } => vec![format!("{kernel}: in order")],
        Event::CheckSummary {
            kernels,
            findings: 0,
            ..
        } => vec![format!("{kernels} kernels checked, all in order")],
        Event::CheckSummary {
            kernels,
            findings,
            kernels_out_of_order,
        } => vec![format!(
            "{kernels} kernels checked: {findings} findings in {kernels_out_of_order} of them \
             (weak-modules --sync puts them in order)"
        )],
        Event::Problem { .. }
        | Event::Warning { .. }
        | Event::Summary { .. }
        | Event::Explanation { .. } => Vec::new(),
    }
}

fn verdict_lines(
    kernel: &str,
    build: &BuildRef,
    fit: Fit,
    shadowed: bool,
    reasons: &[ReasonView],
    chosen: Option<&BuildRef>,
) -> Vec<String> {
    let module = format!(
        "Module {} from kernel {}",
        file_name(&build.path),
        build.built_for
    );
    match (fit, chosen) {
        (Fit::Fits, _) => {
            let mut lines = vec![format!("{module} is compatible with kernel {kernel}")];
            if shadowed {
                lines.push(format!(
                    "    note: kernel {kernel} ships its own {}; depmod's search order loads that one first",
                    file_name(&build.path)
                ));
            }
            lines
        }
        (Fit::NewerBuildChosen, Some(winner)) => vec![format!(
            "{module} is compatible with kernel {kernel}, but the newer build {} is linked",
            label(winner)
        )],
        _ => {
            let symbols: String = reasons
                .iter()
                .filter_map(|reason| reason.symbol.as_deref())
                .map(|symbol| format!(" {symbol}"))
                .collect();
            let mut lines = vec![if symbols.is_empty() {
                format!("{module} is not compatible with kernel {kernel}")
            } else {
                format!("{module} is not compatible with kernel {kernel} in symbols: {symbols}")
            }];
            lines.extend(reason_lines(reasons));
            lines
        }
    }
}

fn reason_lines(reasons: &[ReasonView]) -> impl Iterator<Item = String> + '_ {
    reasons
        .iter()
        .map(|reason| format!("    {} ({})", reason.message, reason.rule))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::compat::Reason;
    use crate::report::reason_views;

    fn build() -> BuildRef {
        BuildRef {
            path: "/lib/modules/K0/extra/m.ko".into(),
            built_for: "K0".into(),
        }
    }

    fn verdict(fit: Fit, reasons: Vec<ReasonView>) -> Event {
        Event::Verdict {
            kernel: "K1".into(),
            build: build(),
            fit,
            shadowed: false,
            reasons,
            chosen: None,
        }
    }

    #[test]
    fn bash_sentences_are_kept_word_for_word() {
        assert_eq!(
            lines(&verdict(Fit::Fits, Vec::new())),
            ["Module m.ko from kernel K0 is compatible with kernel K1"]
        );
        let reasons = reason_views(&[Reason::CrcMismatch {
            symbol: "misc_register".into(),
            module_crc: 0x1e1dfe5f,
            kernel_crc: 0xf3f9e5eb,
            provider: "vmlinux".into(),
        }]);
        assert_eq!(
            lines(&verdict(Fit::DoesNotFit, reasons)),
            [
                "Module m.ko from kernel K0 is not compatible with kernel K1 in symbols:  misc_register",
                "    misc_register: module wants CRC 0x1e1dfe5f, vmlinux has 0xf3f9e5eb (crc)",
            ]
        );
    }
}
