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
    let status = match weak_modules::app::run(&parsed.config, stdin.lock(), stdout.lock()) {
        Ok(outcome) if outcome.problems == 0 && outcome.findings == 0 => 0,
        Ok(_) => 1,
        Err(err) => {
            tracing::error!("{err}");
            1
        }
    };
    // Everything is on disk and every child waited for; what is left in memory (tens of
    // megabytes after a large run) goes with the process. Exiting without the exit handlers
    // spares the allocator's walk over all of it (~8 ms after 1,121 modules × 3 kernels).
    let _ = stdout.lock().flush();
    // SAFETY: _exit(2) ends the process at once; no Rust code runs after it.
    unsafe { libc::_exit(status) }
}

/// `uname -r`: the default release of the kernel modes.
fn running_release() -> String {
    nix::sys::utsname::uname()
        .map(|uts| uts.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}
