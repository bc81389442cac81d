//! The real `depmod`, run once per kernel whose modules changed, to rebuild its indexes;
//! different kernels' depmods run side by side.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::SystemTime;

use crate::cores::parallelism;
use crate::shell::children::{Output, run_side_by_side};

#[derive(Debug, thiserror::Error)]
pub enum DepmodError {
    #[error("{program}: cannot run: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{command}: exited with {status}")]
    Failed { command: String, status: String },
}

/// Where the bash tool runs depmod from, then the usr-merged spelling, then `$PATH`.
fn depmod_program() -> PathBuf {
    ["/sbin/depmod", "/usr/sbin/depmod"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("depmod"))
}

/// The kernel's System.map, where one with symbols exists. Distributions ship one-line stubs
/// (Debian's says the real map is in the -dbg package): given to `depmod -e -F`, a stub makes
/// every symbol a module imports from the kernel "unknown", one stderr line each.
fn system_map(base: &Path, release: &str) -> Option<PathBuf> {
    [
        base.join("boot").join(format!("System.map-{release}")),
        base.join("lib/modules").join(release).join("System.map"),
    ]
    .into_iter()
    .find(|path| path.is_file() && is_real_system_map(path))
}

/// How much of a System.map is read to tell a real one from a stub.
const MAP_PROBE_BYTES: u64 = 4096;
/// A real kernel map has tens of thousands of symbols; its first KiBs alone hold far more
/// lines than this.
const MAP_MIN_SYMBOLS: usize = 32;

/// Whether the first few KiB of `path` read as a kernel symbol map: every complete line
/// `<hex address> <type letter> <name>`, and at least [`MAP_MIN_SYMBOLS`] of them.
fn is_real_system_map(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::new();
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    if file.take(MAP_PROBE_BYTES).read_to_end(&mut head).is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&head);
    // The last line may be cut by the probe; only complete lines count.
    let complete = text.rsplit_once('\n').map_or("", |(lines, _)| lines);
    let mut symbols = 0;
    for line in complete.lines() {
        let mut words = line.split_whitespace();
        let (Some(address), Some(kind), Some(_name), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return false;
        };
        let kind_ok = kind.len() == 1 && kind.chars().all(|c| c.is_ascii_alphabetic());
        if !kind_ok || address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
        symbols += 1;
    }
    symbols >= MAP_MIN_SYMBOLS
}

/// The command line: `depmod [-b BASE] -ae -F <System.map> RELEASE`, as the bash tool runs it,
/// or `-a` alone where no real System.map exists (`-e` needs a symbol source).
pub fn depmod_command(base: &Path, release: &str) -> Vec<String> {
    let mut args = vec![depmod_program().to_string_lossy().into_owned()];
    if base != Path::new("/") {
        args.push("-b".into());
        args.push(base.to_string_lossy().into_owned());
    }
    match system_map(base, release) {
        Some(map) => {
            args.push("-ae".into());
            args.push("-F".into());
            args.push(map.to_string_lossy().into_owned());
        }
        None => args.push("-a".into()),
    }
    args.push(release.to_owned());
    args
}

/// The kernel's `modules.dep`, if it is a readable regular file of sane size.
pub fn read_modules_dep(base: &Path, release: &str) -> Option<Vec<u8>> {
    let path = base.join("lib/modules").join(release).join("modules.dep");
    crate::shell::bounded::read_regular(&path, crate::shell::bounded::INDEX_LIMIT).ok()
}

/// Runs one depmod command per kernel, side by side up to the number of cores (each writes only
/// its own kernel's indexes). `finished(i, result)` is called in the order of `commands`,
/// right after depmod `i` ended and its output was written; one failing stops no other.
pub fn run_depmods(
    commands: &[Vec<String>],
    output: Output<'_>,
    mut finished: impl FnMut(usize, Result<(), DepmodError>),
) {
    let processes = commands
        .iter()
        .map(|command| {
            let (program, args) = command
                .split_first()
                .expect("a depmod command has a program");
            let mut process = Command::new(program);
            process.args(args);
            process
        })
        .collect();
    run_side_by_side(processes, parallelism(), output, |index, status| {
        let command = &commands[index];
        finished(index, depmod_result(command, status));
    });
}

fn depmod_result(
    command: &[String],
    status: std::io::Result<ExitStatus>,
) -> Result<(), DepmodError> {
    let status = status.map_err(|source| DepmodError::Spawn {
        program: command[0].clone(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(DepmodError::Failed {
            command: command.join(" "),
            status: status.to_string(),
        })
    }
}

/// A kernel's `modules.dep` read once, to check any number of its modules against it.
pub struct DepListing {
    kernel_dir: PathBuf,
    /// The module of each line as written: below the kernel directory, or absolute.
    listed: HashSet<String>,
    listed_absolute: HashSet<PathBuf>,
    modified: Option<SystemTime>,
    /// `false` when there is no readable `modules.dep`: then every module is stale.
    readable: bool,
}

impl DepListing {
    /// From the kernel's `modules.dep` as read (`None`: there is no readable one).
    pub fn new(base: &Path, release: &str, modules_dep: Option<&[u8]>) -> Self {
        let kernel_dir = base.join("lib/modules").join(release);
        let dep_file = kernel_dir.join("modules.dep");
        let mut listing = DepListing {
            modified: modified(&dep_file),
            kernel_dir,
            listed: HashSet::new(),
            listed_absolute: HashSet::new(),
            readable: false,
        };
        let Some(bytes) = modules_dep else {
            return listing;
        };
        listing.readable = true;
        for line in String::from_utf8_lossy(bytes).lines() {
            if let Some((path, _)) = line.split_once(':') {
                if path.starts_with('/') {
                    listing.listed_absolute.insert(PathBuf::from(path));
                }
                listing.listed.insert(path.to_owned());
            }
        }
        listing
    }

    /// Whether `modules.dep` is out of step with one of the kernel's own modules: it does not
    /// list a module that exists, still lists one that is gone, or is older than the file.
    /// `known` is what the caller already found at that path; otherwise it is looked at now.
    pub fn stale_for(&self, module_below_kernel: &str, known: Option<OnDisk>) -> bool {
        if !self.readable {
            return true;
        }
        let module = self.kernel_dir.join(module_below_kernel);
        let listed =
            self.listed.contains(module_below_kernel) || self.listed_absolute.contains(&module);
        let on_disk = known.unwrap_or_else(|| match std::fs::metadata(&module) {
            Ok(meta) if meta.is_file() => OnDisk::File {
                modified: meta.modified().ok(),
            },
            _ => OnDisk::NoFile,
        });
        match on_disk {
            OnDisk::NoFile => listed,
            OnDisk::File { modified } => !listed || self.modified < modified,
        }
    }
}

/// What is at a module's path (symlinks followed).
#[derive(Debug, Clone, Copy)]
pub enum OnDisk {
    NoFile,
    File { modified: Option<SystemTime> },
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_map_is_passed_with_errsyms_where_there_is_one() {
        let base = tempfile::tempdir().unwrap();
        let without = depmod_command(base.path(), "K1");
        assert_eq!(
            without[1..],
            ["-b", base.path().to_str().unwrap(), "-a", "K1"]
        );
        std::fs::create_dir_all(base.path().join("boot")).unwrap();
        let map = base.path().join("boot/System.map-K1");
        std::fs::write(&map, real_map_head()).unwrap();
        let with = depmod_command(base.path(), "K1");
        assert_eq!(
            with[1..],
            [
                "-b",
                base.path().to_str().unwrap(),
                "-ae",
                "-F",
                map.to_str().unwrap(),
                "K1"
            ]
        );
    }

    /// The shape of a real map's first lines, long enough to fill the probe.
    fn real_map_head() -> String {
        let mut map = String::from("0000000000000000 D __per_cpu_start\n");
        for n in 0..400u64 {
            let kind = if n % 3 == 0 { 'T' } else { 't' };
            map.push_str(&format!(
                "{:016x} {kind} sym_{n}\n",
                0xffffffff81000000 + n * 16
            ));
        }
        map
    }

    #[test]
    fn a_stub_or_empty_system_map_is_not_a_symbol_source() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(base.path().join("boot")).unwrap();
        let map = base.path().join("boot/System.map-K1");
        let plain = ["-b", base.path().to_str().unwrap(), "-a", "K1"];
        for stub in [
            "",
            "ffffffffffffffff B The real System.map is in the linux-image-K1-dbg package\n",
            "0000000000000000 T only_one\n",
        ] {
            std::fs::write(&map, stub).unwrap();
            assert_eq!(depmod_command(base.path(), "K1")[1..], plain, "{stub:?}");
        }
        let mut garbage = real_map_head();
        garbage.insert_str(0, "not a map line\n");
        std::fs::write(&map, garbage).unwrap();
        assert_eq!(depmod_command(base.path(), "K1")[1..], plain, "not a map");
    }

    #[test]
    fn a_real_map_is_recognised_from_its_head_and_may_lie_below_lib_modules() {
        let base = tempfile::tempdir().unwrap();
        let kernel = base.path().join("lib/modules/K1");
        std::fs::create_dir_all(&kernel).unwrap();
        let map = kernel.join("System.map");
        // Far more than the probe reads: only the head is looked at.
        let mut big = real_map_head();
        while big.len() < 64 * 1024 {
            big.push_str("ffffffff82000000 T more\n");
        }
        std::fs::write(&map, big).unwrap();
        assert_eq!(
            depmod_command(base.path(), "K1")[3..],
            ["-ae", "-F", map.to_str().unwrap(), "K1"]
        );
    }

    #[test]
    fn the_live_system_gets_no_base_option() {
        assert!(!depmod_command(Path::new("/"), "no-such-release").contains(&"-b".to_owned()));
    }

    #[test]
    fn indexes_are_stale_when_they_miss_a_module_or_list_a_gone_one() {
        let base = tempfile::tempdir().unwrap();
        let kernel = base.path().join("lib/modules/K0");
        std::fs::create_dir_all(kernel.join("extra")).unwrap();
        std::fs::write(kernel.join("extra/m.ko"), "module").unwrap();
        let listing = || {
            DepListing::new(
                base.path(),
                "K0",
                read_modules_dep(base.path(), "K0").as_deref(),
            )
        };
        assert!(
            listing().stale_for("extra/m.ko", None),
            "no modules.dep at all"
        );
        std::fs::write(kernel.join("modules.dep"), "extra/m.ko:\n").unwrap();
        assert!(!listing().stale_for("extra/m.ko", None));
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        let changed_since = OnDisk::File {
            modified: Some(later),
        };
        assert!(
            listing().stale_for("extra/m.ko", Some(changed_since)),
            "older than the module, as the caller found it"
        );
        assert!(
            listing().stale_for("extra/m.ko", Some(OnDisk::NoFile)),
            "lists a module the caller found gone"
        );
        std::fs::remove_file(kernel.join("extra/m.ko")).unwrap();
        assert!(
            listing().stale_for("extra/m.ko", None),
            "lists a gone module"
        );
    }
}
