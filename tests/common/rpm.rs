//! The real rpm and rpmbuild on a throwaway root: a copy of fixtures/root made able to run
//! package scriptlets inside it (rpm chroots into `--root` to run them), and packages built
//! from the specs under packaging/.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Root;

/// Where the throwaway roots keep their rpm database, for rpm outside and inside the root.
pub const DBPATH: &str = "/var/lib/rpm";

/// The output of one command, whose failure fails the test with everything it printed.
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
}

pub fn run(program: &str, args: &[&str]) -> Ran {
    let output = super::output_guarded(Command::new(program).args(args).stdin(Stdio::null()))
        .unwrap_or_else(|err| panic!("{program}: {err} (Debian's 'rpm' package installs it)"));
    let ran = Ran {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        output.status.success(),
        "{program} {args:?}: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        ran.stdout,
        ran.stderr
    );
    ran
}

impl Root {
    /// Gives the root what scriptlets run inside it need: `/bin/sh` and the programs named
    /// (host paths, put at the same place, with the shared libraries `ldd` lists), rpm's
    /// configuration with the database at [`DBPATH`], and an `/etc/passwd` for file owners.
    pub fn prepare_for_rpm(&self, programs: &[&str]) {
        for dir in ["usr/bin", "usr/sbin", "etc/rpm", "var/tmp", "tmp"] {
            fs::create_dir_all(self.join(dir)).unwrap();
        }
        for (link, target) in [("bin", "usr/bin"), ("sbin", "usr/sbin")] {
            if !self.join(link).exists() {
                symlink(target, self.join(link)).unwrap();
            }
        }
        let shell = fs::canonicalize("/bin/sh").unwrap();
        self.copy_program(&shell, "usr/bin/sh");
        for program in programs {
            let host = which(program);
            let inside = host
                .strip_prefix("/")
                .unwrap()
                .to_string_lossy()
                .into_owned();
            self.copy_program(&host, &inside);
        }
        copy_tree_into(Path::new("/usr/lib/rpm"), &self.join("usr/lib/rpm"));
        fs::write(self.join("etc/rpm/macros"), format!("%_dbpath {DBPATH}\n")).unwrap();
        fs::create_dir_all(self.join("dev")).unwrap();
        let null = self.join("dev/null");
        run(
            "mknod",
            &["-m", "666", null.to_str().unwrap(), "c", "1", "3"],
        );
        fs::write(self.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(self.join("etc/group"), "root:x:0:\n").unwrap();
    }

    /// Copies a host executable to `inside` (base-relative) with its shared libraries.
    pub fn copy_program(&self, host: &Path, inside: &str) {
        let target = self.join(inside);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        super::copy_executable(host, &target);
        self.copy_libraries_of(host);
    }

    /// Copies the host's shared libraries that `program` needs (as `ldd` lists them) to the
    /// same places in the root, where they are not there yet.
    pub fn copy_libraries_of(&self, program: &Path) {
        let ldd = run("ldd", &[program.to_str().unwrap()]);
        for line in ldd.stdout.lines() {
            // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "/lib64/ld-... (0x...)"
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            let Some(path) = path.filter(|path| path.starts_with('/')) else {
                continue;
            };
            let library = self.join(path.trim_start_matches('/'));
            if !library.exists() {
                fs::create_dir_all(library.parent().unwrap()).unwrap();
                fs::copy(path, &library).unwrap();
            }
        }
    }

    /// The real rpm on this root: `rpm --root <root> --dbpath /var/lib/rpm ARGS`.
    pub fn rpm(&self, args: &[&str]) -> Ran {
        let root = self.path().to_str().unwrap();
        // --force-debian: Debian's rpm otherwise warns on every install that it is not dpkg.
        let mut all = vec!["--root", root, "--dbpath", DBPATH, "--force-debian"];
        all.extend_from_slice(args);
        run("rpm", &all)
    }
}

/// The host path of a program, as the shell would find it, with links resolved.
pub fn which(program: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} is not installed"));
    fs::canonicalize(found).unwrap()
}

fn copy_tree_into(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else if entry.path_is_symlink() {
            symlink(fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            // rpm's helpers: some are scripts rpm runs.
            super::copy_executable(entry.path(), &target);
        }
    }
}

/// An rpmbuild top directory with the given sources, and `rpmbuild -bb` run on it.
pub struct Build {
    pub topdir: tempfile::TempDir,
}

impl Build {
    pub fn new() -> Build {
        let topdir = tempfile::tempdir().unwrap();
        for dir in ["SOURCES", "SPECS", "BUILD", "RPMS", "SRPMS"] {
            fs::create_dir_all(topdir.path().join(dir)).unwrap();
        }
        Build { topdir }
    }

    pub fn sources(&self) -> PathBuf {
        self.topdir.path().join("SOURCES")
    }

    /// `rpmbuild -bb SPEC` with `--define NAME VALUE` for each pair (and `--with`/`--without`
    /// words as given in `extra`), build dependencies not checked: the build host is Debian,
    /// whose rpm database holds no package. Returns the binary packages it wrote.
    pub fn rpmbuild(&self, spec: &Path, defines: &[(&str, &str)], extra: &[&str]) -> Vec<PathBuf> {
        let topdir = self.topdir.path().to_str().unwrap().to_owned();
        let rpmdir = self.topdir.path().join("RPMS");
        let before = packages_in(&rpmdir);
        let mut args: Vec<String> = vec!["-bb".into(), "--nodeps".into()];
        let mut define = |name: &str, value: &str| {
            args.push("--define".into());
            args.push(format!("{name} {value}"));
        };
        define("_topdir", &topdir);
        for (name, value) in defines {
            define(name, value);
        }
        args.extend(extra.iter().map(|word| word.to_string()));
        args.push(spec.to_str().unwrap().to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run("rpmbuild", &args);
        packages_in(&rpmdir)
            .into_iter()
            .filter(|package| !before.contains(package))
            .collect()
    }
}

fn packages_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "rpm"))
        .map(|entry| entry.path().to_owned())
        .collect();
    found.sort();
    found
}

/// `tar -cJf DEST -C PARENT NAME`: a source tarball as rpmbuild's %autosetup expects it.
pub fn tarball(dest: &Path, parent: &Path, name: &str) {
    run(
        "tar",
        &[
            "-cJf",
            dest.to_str().unwrap(),
            "-C",
            parent.to_str().unwrap(),
            name,
        ],
    );
}
