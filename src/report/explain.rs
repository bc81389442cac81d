//! `--explain`: for each module given, one table of every installed kernel with the verdict
//! and, in a line, why it does not fit or where its link is. Fits 80 columns.

use super::{Fit, ReasonView};

/// One kernel's line for one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub kernel: String,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The kernel the module was built for.
    Own,
    Fits {
        /// The link's path below the kernel's directory, and whether it is there already.
        link: Option<(String, bool)>,
        shadowed: bool,
    },
    NewerBuild {
        chosen: String,
    },
    DoesNotFit(Vec<ReasonView>),
}

impl Verdict {
    pub fn from_fit(fit: Fit, reasons: Vec<ReasonView>, chosen: Option<String>) -> Self {
        match (fit, chosen) {
            (Fit::NewerBuildChosen, Some(chosen)) => Verdict::NewerBuild { chosen },
            (Fit::DoesNotFit, _) | (Fit::NewerBuildChosen, None) => Verdict::DoesNotFit(reasons),
            (Fit::Fits, _) => Verdict::Fits {
                link: None,
                shadowed: false,
            },
        }
    }
}

const WIDTH: usize = 80;
const KERNEL_WIDTH: usize = 22;
const VERDICT_WIDTH: usize = 9;

/// The table for one module (its path and the release it was built for), ANSI colours when
/// `colour`.
pub fn table(path: &str, built_for: &str, rows: &[Row], colour: bool) -> String {
    let title = format!("{path} (built for {built_for})");
    let mut text = if title.chars().count() <= WIDTH {
        format!("{title}\n")
    } else {
        format!("{}\n  built for {built_for}\n", clip(path, WIDTH))
    };
    text.push_str(&format!(
        "  {:<KERNEL_WIDTH$} {:<VERDICT_WIDTH$} {}\n",
        "KERNEL", "VERDICT", "WHY, OR THE LINK"
    ));
    let detail_width = WIDTH - 2 - KERNEL_WIDTH - 1 - VERDICT_WIDTH - 1;
    for row in rows {
        let (word, paint, detail) = describe(&row.verdict);
        let word_cell = format!("{word:<VERDICT_WIDTH$}");
        let word_cell = if colour {
            format!("\x1b[{paint}m{word_cell}\x1b[0m")
        } else {
            word_cell
        };
        let mut pieces = wrap(&detail, detail_width).into_iter();
        text.push_str(&format!(
            "  {:<KERNEL_WIDTH$} {word_cell} {}\n",
            clip(&row.kernel, KERNEL_WIDTH),
            pieces.next().unwrap_or_default()
        ));
        for piece in pieces {
            let indent = 2 + KERNEL_WIDTH + 1 + VERDICT_WIDTH + 1;
            text.push_str(&format!("{:indent$}{piece}\n", ""));
        }
    }
    text
}

/// Words into lines of at most `width` characters; a longer word is clipped.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let word = clip(word, width);
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if needed > width && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    lines.push(line);
    lines
}

/// The verdict word, its colour (SGR code) and the detail.
fn describe(verdict: &Verdict) -> (&'static str, &'static str, String) {
    match verdict {
        Verdict::Own => ("own", "2", "the kernel it was built for".to_owned()),
        Verdict::Fits { link, shadowed } => {
            let mut detail = match link {
                Some((link, true)) => format!("linked: {link}"),
                Some((link, false)) => format!("would link {link}"),
                None => String::new(),
            };
            if *shadowed {
                detail.push_str(" (its own module loads first)");
            }
            ("fits", "32", detail)
        }
        Verdict::NewerBuild { chosen } => ("fits", "33", format!("newer build linked: {chosen}")),
        Verdict::DoesNotFit(reasons) => {
            let first = reasons
                .first()
                .map(|reason| format!("{} ({})", reason.message, reason.rule))
                .unwrap_or_default();
            let detail = match reasons.len() {
                0 | 1 => first,
                n => format!("{first} +{} more", n - 1),
            };
            ("no", "31", detail)
        }
    }
}

/// At most `width` characters, the cut marked with `…`.
fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(width - 1).collect();
    clipped.push('…');
    clipped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_fits_80_columns_and_colour_is_only_asked_for() {
        let long_reason = ReasonView {
            rule: "crc",
            message: "a_very_long_symbol_name_for_testing: module wants CRC 0x1e1dfe5f, vmlinux has 0xf3f9e5eb".into(),
            symbol: Some("a_very_long_symbol_name_for_testing".into()),
        };
        let rows = [
            Row {
                kernel: "6.1.0-50-amd64".into(),
                verdict: Verdict::Own,
            },
            Row {
                kernel: "6.12.117+deb12-amd64".into(),
                verdict: Verdict::DoesNotFit(vec![long_reason.clone(), long_reason]),
            },
            Row {
                kernel: "6.1.0-53-amd64".into(),
                verdict: Verdict::Fits {
                    link: Some(("weak-updates/fx/fxmisc.ko".into(), false)),
                    shadowed: false,
                },
            },
        ];
        let plain = table("/lib/modules/K/extra/m.ko", "K", &rows, false);
        assert!(
            plain.lines().all(|line| line.chars().count() <= 80),
            "{plain}"
        );
        assert!(!plain.contains('\x1b'));
        let lines: Vec<&str> = plain.lines().collect();
        assert_eq!(
            lines[3..6],
            [
                "  6.12.117+deb12-amd64   no        a_very_long_symbol_name_for_testing: module",
                "                                   wants CRC 0x1e1dfe5f, vmlinux has 0xf3f9e5eb",
                "                                   (crc) +1 more",
            ]
        );
        assert!(table("/m.ko", "K", &rows, true).contains("\x1b[31mno       \x1b[0m"));
    }
}
