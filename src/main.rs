use std::io::Write;
use std::process::ExitCode;

use weak_modules::cli::{self, CliExit};

// The decision allocates many small, short-lived strings on every core; glibc's per-thread
// arenas grow by page faults and consolidate on free, mimalloc's thread-local pages do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut parsed = match cli::parse(std::env::args_os(), running_release) {
        Ok(parsed) => parsed,
        Err(CliExit::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(CliExit::Usage { message, usage }) => {
            eprintln!("{message}");
            println!("{usage}");
            return ExitCode::FAILURE;
        }
    };
    weak_modules::diagnostics::install();
    let stdout = std::io::stdout();
    parsed.config.colour = std::io::IsTerminal::is_terminal(&stdout);
    for warning in &parsed.warnings {
        // The bash tool says these on stdout; JSON Lines must stay JSON.
        if parsed.config.json {
            tracing::warn!("{warning}");
        } else {
            let _ = writeln!(stdout.lock(), "{warning}");
        }
    }
    let stdin = std::io::stdin();
    match weak_modules::app::run(&parsed.config, stdin.lock(), stdout.lock()) {
        Ok(outcome) if outcome.problems == 0 && outcome.findings == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// `uname -r`: the default release of the kernel modes.
fn running_release() -> String {
    nix::sys::utsname::uname()
        .map(|uts| uts.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}
