//! The manual page and the shell completions, generated from the command line's definition in
//! `cli`, so that an option cannot be documented and not exist, or the reverse. What clap cannot
//! know (how a module is judged, exit status, files, examples) is written once, in
//! `man/sections.roff`, and appended.

use clap_complete::Shell;

/// The manual's hand-written sections, in roff.
const SECTIONS: &str = include_str!("../man/sections.roff");

/// The date on the manual's title line: fixed, so that regenerating gives the same bytes.
const MAN_DATE: &str = "2026-11";

/// Every generated file: its path in the repository and its text. `cargo run --example
/// generate-docs` writes them; a test checks the committed ones are these.
pub fn generated_files() -> Vec<(&'static str, String)> {
    vec![
        ("man/weak-modules.8", man_page()),
        (
            "packaging/completions/weak-modules.bash",
            completion(Shell::Bash),
        ),
        (
            "packaging/completions/_weak-modules",
            completion(Shell::Zsh),
        ),
        (
            "packaging/completions/weak-modules.fish",
            completion(Shell::Fish),
        ),
    ]
}

/// `man/weak-modules.8`: title, name, synopsis, description and options from clap, then the
/// hand-written sections.
pub fn man_page() -> String {
    let man = clap_mangen::Man::new(crate::cli::command())
        .section("8")
        .date(MAN_DATE)
        .source(format!("weak-modules {}", env!("CARGO_PKG_VERSION")))
        .manual("System Administration");
    let mut out = Vec::new();
    let rendered = man
        .render_title(&mut out)
        .and_then(|()| man.render_name_section(&mut out))
        .and_then(|()| man.render_synopsis_section(&mut out))
        .and_then(|()| man.render_description_section(&mut out))
        .and_then(|()| man.render_options_section(&mut out));
    rendered.expect("writing to memory does not fail");
    let mut page = String::from_utf8(out).expect("roff is text");
    page.push_str(SECTIONS);
    page
}

fn completion(shell: Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut crate::cli::command(), "weak-modules", &mut out);
    String::from_utf8(out).expect("completion scripts are text")
}
