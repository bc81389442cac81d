//! The manual page and completions are generated from the clap definitions (src/cli.rs) plus
//! the hand-written man/sections.roff: the committed files are exactly what generation gives,
//! every option exists on both sides, `man -l` renders the page without a warning, and its
//! example scriptlet is the one of the example package's spec.

use std::path::{Path, PathBuf};
use std::process::Command;

fn top() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(top().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

#[test]
fn the_committed_man_page_and_completions_are_what_generation_gives() {
    for (path, generated) in weak_modules::docgen::generated_files() {
        assert!(
            read(path) == generated,
            "{path} is not what the clap definitions and man/sections.roff give: run \
             `cargo run --example generate-docs` and commit the result"
        );
    }
}

/// The long options clap knows, visible ones only.
fn clap_options() -> Vec<String> {
    let command = {
        let mut command = weak_modules::cli::command();
        command.build();
        command
    };
    let mut options: Vec<String> = command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set())
        .filter_map(|arg| arg.get_long())
        .map(|long| format!("--{long}"))
        .collect();
    options.sort();
    options
}

/// Every `--option` word in `text` (roff's `\-` read as `-`, its font changes dropped).
fn options_in(text: &str) -> Vec<String> {
    let mut text = text.replace("\\-", "-");
    for font in ["\\fB", "\\fI", "\\fR", "\\fP"] {
        text = text.replace(font, "");
    }
    let mut found = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("--") {
        let word: String = rest[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
            .collect();
        let before = rest[..at].chars().last();
        if !word.is_empty() && !before.is_some_and(|c| c.is_alphanumeric() || c == '-') {
            found.push(format!("--{}", word.trim_end_matches('-')));
        }
        rest = &rest[at + 2..];
    }
    found.sort();
    found.dedup();
    found
}

/// The parts of `text` that are a weak-modules command line: from each `weak-modules` to the
/// end of its line or the next `|`. Other programs' options (rpm, depmod) stay out.
fn weak_modules_command_lines(text: &str) -> String {
    let text = text.replace("weak\\-modules", "weak-modules");
    let mut out = String::new();
    for line in text.lines() {
        for (at, _) in line.match_indices("weak-modules") {
            let tail = &line[at..];
            out.push_str(tail.split('|').next().unwrap());
            out.push('\n');
        }
    }
    out
}

#[test]
fn every_option_is_in_the_man_page_and_completions_and_every_documented_one_exists() {
    let options = clap_options();
    assert_eq!(
        options,
        [
            "--add-kernel",
            "--add-modules",
            "--basedir",
            "--check",
            "--check-initramfs-prog",
            "--delete-modules",
            "--dracut",
            "--dry-run",
            "--explain",
            "--help",
            "--json",
            "--no-initramfs",
            "--remove-kernel",
            "--remove-modules",
            "--sync",
            "--verbose",
        ]
    );
    let man = read("man/weak-modules.8");
    let roff_options: Vec<String> = man
        .lines()
        .filter(|line| line.starts_with("\\fB\\-"))
        .flat_map(options_in)
        .collect();
    for option in &options {
        assert!(
            roff_options.contains(option),
            "{option} has no entry in the man page"
        );
        for completion in [
            "packaging/completions/weak-modules.bash",
            "packaging/completions/_weak-modules",
            "packaging/completions/weak-modules.fish",
        ] {
            let text = read(completion);
            let name = option.trim_start_matches('-');
            assert!(
                text.contains(option.as_str()) || text.contains(&format!("-l {name}")),
                "{option} is missing from {completion}"
            );
        }
    }

    // What people read besides clap's own words: the hand-written sections, the READMEs, the
    // specs. An option they name must exist.
    let mut documented: Vec<(String, String)> = Vec::new();
    let mut readme_options = read("README.md");
    let list_start = readme_options
        .find("Options: ")
        .expect("README lists the options");
    let list_end = list_start + readme_options[list_start..].find("\n\n").unwrap();
    readme_options = readme_options[list_start..list_end].to_owned();
    documented.extend(
        options_in(&readme_options)
            .into_iter()
            .map(|o| ("README.md option list".to_owned(), o)),
    );
    for file in [
        "man/sections.roff",
        "README.md",
        "packaging/README.md",
        "packaging/kmod-hello/README.md",
        "packaging/kmod-hello/README.zh_CN.md",
        "packaging/kmod-hello/kmod-hello.spec",
        "packaging/weak-modules.spec",
    ] {
        let text = read(file);
        for option in options_in(&weak_modules_command_lines(&text)) {
            documented.push((file.to_owned(), option));
        }
    }
    let unknown: Vec<&(String, String)> = documented
        .iter()
        .filter(|(_, option)| !options.contains(option))
        .collect();
    assert!(
        unknown.is_empty(),
        "documented but not an option: {unknown:?}"
    );
    let readme_list: Vec<&String> = documented
        .iter()
        .filter(|(file, _)| file == "README.md option list")
        .map(|(_, option)| option)
        .collect();
    let missing: Vec<&String> = options
        .iter()
        .filter(|option| *option != "--help" && !readme_list.contains(option))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the README's option list: {missing:?}"
    );
}

/// `man -l` on the committed page: rendered in ASCII at a fixed width, warnings on.
fn rendered() -> String {
    let output = Command::new("man")
        .args(["--warnings", "-E", "ascii", "-l"])
        .arg(top().join("man/weak-modules.8"))
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .output()
        .expect("man (Debian's man-db) runs");
    assert!(output.status.success(), "man -l: {:?}", output.status);
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "groff warnings"
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn man_renders_the_page_with_every_section_and_no_warning() {
    let page = rendered();
    let headings: Vec<&str> = page
        .lines()
        .filter(|line| line.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .filter(|line| !line.starts_with("weak-modules "))
        .collect();
    assert_eq!(
        headings,
        [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "MODES",
            "BEYOND THE BASH TOOL",
            "HOW A MODULE IS JUDGED",
            "EXIT STATUS",
            "FILES",
            "EXAMPLES",
            "SEE ALSO",
        ]
    );
}

fn spec() -> PathBuf {
    top().join("packaging/kmod-hello/kmod-hello.spec")
}

#[test]
fn the_man_pages_example_scriptlet_is_the_example_specs_post() {
    let spec = std::fs::read_to_string(spec()).unwrap();
    let post: Vec<&str> = spec
        .split("\n%post\n")
        .nth(1)
        .expect("a %post section")
        .lines()
        .take_while(|line| !line.is_empty())
        .map(str::trim)
        .collect();
    let page = rendered();
    let example: Vec<&str> = page
        .split("\nEXAMPLES\n")
        .nth(1)
        .unwrap()
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("find /lib/modules/"))
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(example, post);
}
