//! The words a run prints with `--verbose`. Where the bash tool has a sentence, it is kept word
//! for word, so scripts that grep for it keep working; our reasons follow on indented lines.

use crate::core::compat::Reason;
use crate::core::plan::{Action, KernelPlan, Status, UnlinkReason};

/// What the report needs to know about a build.
pub struct BuildLabel<'a> {
    pub file_name: &'a str,
    pub built_for: &'a str,
}

/// What was not checked on a kernel, said once before its builds and actions.
pub fn kernel_notes(plan: &KernelPlan) -> Vec<String> {
    if plan.struct_module_unchecked {
        vec![format!(
            "Kernel {} ships no module to read the size of struct module from; it is not checked",
            plan.release
        )]
    } else {
        Vec::new()
    }
}

/// Lines for one offered build on one kernel.
pub fn status_lines(
    build: &BuildLabel,
    kernel: &str,
    status: &Status,
    chosen: impl Fn(usize) -> String,
) -> Vec<String> {
    let module = format!("Module {} from kernel {}", build.file_name, build.built_for);
    match status {
        Status::OwnKernel => Vec::new(),
        Status::Fits { shadowed } => {
            let mut lines = vec![format!("{module} is compatible with kernel {kernel}")];
            if *shadowed {
                lines.push(format!(
                    "    note: kernel {kernel} ships its own {}; depmod's search order loads that one first",
                    build.file_name
                ));
            }
            lines
        }
        Status::DoesNotFit(reasons) => not_compatible(&module, kernel, reasons),
        Status::NewerBuildChosen { chosen: winner } => vec![format!(
            "{module} is compatible with kernel {kernel}, but the newer build {} is linked",
            chosen(*winner)
        )],
    }
}

fn not_compatible(module: &str, kernel: &str, reasons: &[Reason]) -> Vec<String> {
    let symbols: String = reasons
        .iter()
        .filter_map(Reason::symbol)
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

pub fn reason_lines(reasons: &[Reason]) -> impl Iterator<Item = String> + '_ {
    reasons
        .iter()
        .map(|reason| format!("    {reason} ({})", reason.rule()))
}

/// Lines for one action on one kernel.
pub fn action_lines(action: &Action, kernel: &str, label: impl Fn(usize) -> String) -> Vec<String> {
    match action {
        Action::Link {
            link,
            target,
            replacing: None,
            ..
        } => vec![format!("Linking {link} -> {target}")],
        Action::Link {
            link,
            target,
            replacing: Some(old),
            ..
        } => vec![format!("Replacing {link} -> {old} with -> {target}")],
        Action::Unlink {
            link,
            target_text,
            why,
        } => {
            let file_name = link.rsplit('/').next().unwrap_or(link);
            let mut lines = vec![format!(
                "Removing compatible module {file_name} from kernel {kernel}"
            )];
            lines.push(match why {
                UnlinkReason::TargetGone => format!("    {link} -> {target_text}: target is gone"),
                UnlinkReason::DoesNotFit(_) => format!("    {link} -> {target_text}: does not fit"),
                UnlinkReason::Superseded { by } => {
                    format!("    {link}: superseded by the newer build {}", label(*by))
                }
                UnlinkReason::OwnKernel => {
                    format!("    {link} -> {target_text}: points into the kernel's own modules")
                }
                UnlinkReason::Duplicate { .. } => {
                    format!("    {link} -> {target_text}: the module is linked at its own path")
                }
            });
            if let UnlinkReason::DoesNotFit(reasons) = why {
                lines.extend(reason_lines(reasons));
            }
            lines
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_sentences_are_kept_word_for_word() {
        let build = BuildLabel {
            file_name: "m.ko",
            built_for: "K0",
        };
        let fits = status_lines(&build, "K1", &Status::Fits { shadowed: false }, |_| {
            String::new()
        });
        assert_eq!(
            fits,
            ["Module m.ko from kernel K0 is compatible with kernel K1"]
        );
        let reasons = vec![Reason::CrcMismatch {
            symbol: "misc_register".into(),
            module_crc: 0x1e1dfe5f,
            kernel_crc: 0xf3f9e5eb,
            provider: "vmlinux".into(),
        }];
        let lines = status_lines(&build, "K1", &Status::DoesNotFit(reasons), |_| {
            String::new()
        });
        assert_eq!(
            lines[0],
            "Module m.ko from kernel K0 is not compatible with kernel K1 in symbols:  misc_register"
        );
        assert_eq!(
            lines[1],
            "    misc_register: module wants CRC 0x1e1dfe5f, vmlinux has 0xf3f9e5eb (crc)"
        );
    }
}
