//! The bash tool's command line, exactly: long options (any unambiguous prefix), `-h`, and an
//! optional kernel release as the first positional word for the kernel modes.

use std::path::PathBuf;

use clap::Parser;

use crate::config::{Config, Mode};

#[derive(Debug, Parser)]
#[command(
    name = "weak-modules",
    about = "link kernel modules into the other installed kernels whose ABI they fit",
    long_about = "A kernel module built for one kernel release (its own kernel, named by the \
                  first word of its vermagic) can often be loaded by other kernels whose ABI it \
                  still fits. weak-modules decides which, from the module's ELF (its \
                  modversions table, imports, licence, namespace imports and vermagic) and each \
                  kernel's symvers file, and links the module into \
                  /lib/modules/KREL/weak-updates/ of every kernel it fits. The link mirrors the \
                  module's path below its own kernel's first directory: \
                  /lib/modules/K0/extra/d/m.ko is linked as \
                  /lib/modules/K1/weak-updates/d/m.ko.\n\n\
                  --add-modules and --remove-modules read module paths from standard input, one \
                  a line. If several modes are given, the first of --add-modules, \
                  --remove-modules, --add-kernel, --remove-kernel wins. Any unambiguous prefix \
                  of a long option is accepted.",
    override_usage = "weak-modules [OPTIONS] --add-modules | --remove-modules\n       \
                      weak-modules [OPTIONS] --add-kernel | --remove-kernel [KREL]",
    infer_long_args = true,
    disable_version_flag = true
)]
struct Args {
    /// Read module paths from stdin and link them into every kernel they fit
    #[arg(
        long_help = "Read module paths from standard input, one a line (blank lines skipped, relative \
                     paths taken from the current directory), and link each into every installed \
                     kernel but its own that it fits. Links in those kernels that no longer fit, or \
                     whose target is gone, are removed.",
        long,
        help_heading = "Modes"
    )]
    add_modules: bool,
    /// Read module paths from stdin and remove their links (re-linking another fitting build)
    #[arg(
        long_help = "Read module paths from standard input. Links to modules that no longer exist are \
                     removed and, where another installed build of the module fits, that build is \
                     linked instead. A link to a module that still exists (an upgrade) is kept. A \
                     kernel that lost one of its own modules, or a module it linked, is checked \
                     against every installed build, as with --add-kernel.",
        long,
        help_heading = "Modes"
    )]
    remove_modules: bool,
    /// Link every fitting module of the other kernels' extra/ into KREL (default: running kernel)
    #[arg(
        long_help = "Link into KREL (default: the running kernel) the newest fitting build of every \
                     module in the extra/ directory of every other kernel. Fails if KREL has no \
                     symvers file.",
        long,
        help_heading = "Modes"
    )]
    add_kernel: bool,
    /// Empty KREL's weak-updates/ (default: running kernel)
    #[arg(
        long_help = "Remove every link in the weak-updates/ directory of KREL (default: the running \
                     kernel); the directory stays. No depmod, no initramfs.",
        long,
        help_heading = "Modes"
    )]
    remove_kernel: bool,
    /// Change nothing; print what would be done
    #[arg(
        long_help = "Change nothing: no link, no depmod, no dracut, no temporary file. With \
                     --verbose, print what would be done.",
        long
    )]
    dry_run: bool,
    /// Do not regenerate initramfs images
    #[arg(long)]
    no_initramfs: bool,
    /// Say what is done and why
    #[arg(
        long_help = "Print on standard output, per module and kernel, whether it fits and why not \
                     (symbol, the CRC the module wants, the one the kernel has, the rule), each link \
                     made or removed with its reason, and the depmod command lines.",
        long
    )]
    verbose: bool,
    /// Deprecated; has no effect
    #[arg(long_help = "Deprecated; prints a warning and has no effect.", long)]
    delete_modules: bool,
    /// Work on the system rooted at DIR instead of /
    #[arg(
        long_help = "Work on the system rooted at DIR. Input paths may be given with or without DIR \
                     in front. Links are then relative, so they resolve both from the host and inside \
                     the booted image; depmod runs with -b DIR.",
        long,
        value_name = "DIR"
    )]
    basedir: Option<PathBuf>,
    /// dracut binary for initramfs regeneration
    #[arg(
        long_help = "The dracut program. It is run as `PATH -f TMP KREL` only for kernels whose links \
                     changed and which have /boot/initramfs-KREL.img; the image is replaced only if \
                     its modules or modprobe.d files differ.",
        long,
        value_name = "PATH",
        default_value = "/usr/bin/dracut"
    )]
    dracut: PathBuf,
    /// Run PROG (with its arguments) as `PROG KREL` instead of the built-in initramfs check
    #[arg(
        long_help = "Instead of the built-in check, run PROG (split into words) with KREL appended, \
                     for every kernel whose links changed.",
        long,
        value_name = "PROG"
    )]
    check_initramfs_prog: Option<String>,
    /// Audit every installed kernel (or each KREL given): report links that dangle, no longer
    /// fit or are not the newest fitting build, fitting builds not linked, indexes and
    /// initramfs images owed work; change nothing. Exit 0 when all is well, 1 otherwise
    #[arg(long, help_heading = "Beyond the bash tool")]
    check: bool,
    /// Bring every installed kernel to the state --check expects, in one run
    #[arg(long, help_heading = "Beyond the bash tool")]
    sync: bool,
    /// Read module paths from stdin and show, for each, a table of every installed kernel:
    /// the verdict and why, or where its link is or would be; change nothing
    #[arg(long, help_heading = "Beyond the bash tool")]
    explain: bool,
    /// Print every event of the run (verdicts with reasons, link changes, depmod, initramfs,
    /// findings, problems) as one JSON object a line on stdout; see docs/json.md
    #[arg(long, help_heading = "Beyond the bash tool")]
    json: bool,
    /// Kernel release for --add-kernel / --remove-kernel (other words are ignored), or the
    /// kernels --check audits
    #[arg(value_name = "KREL")]
    words: Vec<String>,
}

/// The command line's definition, which the manual page and completions are generated from.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Args::command()
}

/// How parsing ended when it did not produce a config.
#[derive(Debug)]
pub enum CliExit {
    /// Help text, exit 0.
    Help(String),
    /// Usage error or no mode: message for stderr, usage for stdout, exit 1.
    Usage { message: String, usage: String },
}

/// Warnings the command line itself produces (printed on stdout, as the bash tool does).
pub struct Parsed {
    pub config: Config,
    pub warnings: Vec<String>,
}

pub fn parse<I, T>(args: I, running_release: impl FnOnce() -> String) -> Result<Parsed, CliExit>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = Args::try_parse_from(args).map_err(|err| match err.kind() {
        clap::error::ErrorKind::DisplayHelp => CliExit::Help(err.to_string()),
        _ => CliExit::Usage {
            message: err
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            usage: usage(),
        },
    })?;
    let mut warnings = Vec::new();
    if args.delete_modules {
        warnings.push("WARNING: --delete-modules is deprecated, no effect".to_owned());
    }
    let mode = mode_of(&args, running_release).ok_or_else(|| CliExit::Usage {
        message: "weak-modules: no mode given (--add-modules, --remove-modules, --add-kernel or --remove-kernel)".to_owned(),
        usage: usage(),
    })?;
    let releases: &[String] = match &mode {
        Mode::AddKernel(release) | Mode::RemoveKernel(release) => std::slice::from_ref(release),
        Mode::Check(releases) => releases,
        _ => &[],
    };
    if let Some(release) = releases
        .iter()
        .find(|release| !crate::core::paths::is_valid_release(release))
    {
        return Err(CliExit::Usage {
            message: format!(
                "weak-modules: {release:?} is not a kernel release (one name under lib/modules, without '/' or '..')"
            ),
            usage: usage(),
        });
    }
    let config = Config {
        // An audit changes nothing, whatever else was asked.
        dry_run: args.dry_run || matches!(mode, Mode::Check(_) | Mode::Explain),
        mode,
        no_initramfs: args.no_initramfs,
        verbose: args.verbose,
        json: args.json,
        colour: false,
        base: args
            .basedir
            .map(|dir| absolute_base(&dir))
            .unwrap_or_else(|| PathBuf::from("/")),
        dracut: args.dracut,
        check_initramfs_prog: args
            .check_initramfs_prog
            .map(|prog| prog.split_whitespace().map(str::to_owned).collect())
            .filter(|words: &Vec<String>| !words.is_empty()),
    };
    Ok(Parsed { config, warnings })
}

/// The base directory as an absolute path, so that input paths given with it in front are
/// recognised however the base was spelled.
fn absolute_base(dir: &std::path::Path) -> PathBuf {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let text = absolute.to_string_lossy();
    PathBuf::from(format!("/{}", crate::core::paths::normalize(&text)))
}

/// The first mode in the bash tool's order wins; the rest are ignored.
fn mode_of(args: &Args, running_release: impl FnOnce() -> String) -> Option<Mode> {
    let release = || args.words.first().cloned().unwrap_or_else(running_release);
    if args.add_modules {
        Some(Mode::AddModules)
    } else if args.remove_modules {
        Some(Mode::RemoveModules)
    } else if args.add_kernel {
        Some(Mode::AddKernel(release()))
    } else if args.remove_kernel {
        Some(Mode::RemoveKernel(release()))
    } else if args.check {
        Some(Mode::Check(args.words.clone()))
    } else if args.sync {
        Some(Mode::Sync)
    } else if args.explain {
        Some(Mode::Explain)
    } else {
        None
    }
}

fn usage() -> String {
    command().render_usage().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let argv = std::iter::once("weak-modules").chain(args.iter().copied());
        match parse(argv, || "running".to_owned()) {
            Ok(parsed) => parsed.config,
            Err(exit) => panic!("{args:?}: {exit:?}"),
        }
    }

    #[test]
    fn unambiguous_prefixes_are_accepted() {
        assert_eq!(config(&["--add-m"]).mode, Mode::AddModules);
        assert_eq!(
            config(&["--remove-k", "K1"]).mode,
            Mode::RemoveKernel("K1".into())
        );
        assert!(config(&["--add-m", "--dry", "--verb"]).verbose);
    }

    #[test]
    fn ambiguous_prefix_and_unknown_option_are_usage_errors() {
        let argv = ["weak-modules", "--add"];
        assert!(matches!(
            parse(argv, String::new),
            Err(CliExit::Usage { .. })
        ));
        let argv = ["weak-modules", "--bogus", "--add-modules"];
        assert!(matches!(
            parse(argv, String::new),
            Err(CliExit::Usage { .. })
        ));
    }

    #[test]
    fn kernel_modes_default_to_the_running_release() {
        assert_eq!(
            config(&["--add-kernel"]).mode,
            Mode::AddKernel("running".into())
        );
        assert_eq!(
            config(&["K2", "--add-kernel", "K3"]).mode,
            Mode::AddKernel("K2".into())
        );
    }

    #[test]
    fn the_first_mode_in_fixed_order_wins() {
        assert_eq!(
            config(&["--remove-kernel", "--add-modules"]).mode,
            Mode::AddModules
        );
        assert_eq!(
            config(&["--add-kernel", "--remove-modules"]).mode,
            Mode::RemoveModules
        );
    }

    #[test]
    fn no_mode_is_a_usage_error() {
        assert!(matches!(
            parse(["weak-modules", "--verbose"], String::new),
            Err(CliExit::Usage { .. })
        ));
    }

    #[test]
    fn a_relative_base_directory_is_made_absolute() {
        let relative = config(&["--add-modules", "--basedir", "fixtures/./root/"]);
        let expected = std::env::current_dir().unwrap().join("fixtures/root");
        assert_eq!(relative.base, expected);
        assert_eq!(
            config(&["--add-modules", "--basedir", "/"]).base,
            PathBuf::from("/")
        );
    }

    #[test]
    fn check_program_is_word_split() {
        let config = config(&["--add-modules", "--check-initramfs-prog", "/bin/prog --x"]);
        assert_eq!(
            config.check_initramfs_prog,
            Some(vec!["/bin/prog".to_owned(), "--x".to_owned()])
        );
    }
}
