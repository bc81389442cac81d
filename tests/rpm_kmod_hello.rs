//! packaging/kmod-hello/kmod-hello.spec built by the real rpmbuild and installed, upgraded and
//! erased by the real rpm in a throwaway root holding the fixture kernels, with this build of
//! weak-modules as the root's /usr/sbin/weak-modules: the spec's own scriptlets do the work.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::rpm::{self, Build, tarball};
use common::*;

const HELLO_50: &str = "lib/modules/6.1.0-50-amd64/extra/hello/hello.ko";
const HELLO_55: &str = "lib/modules/6.1.0-55-amd64/extra/hello/hello.ko";

fn spec() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/kmod-hello/kmod-hello.spec")
}

/// A build directory holding the spec's Source0, made from packaging/kmod-hello.
fn build_with_sources() -> Build {
    let build = Build::new();
    let tree = tempfile::tempdir().unwrap();
    let src = tree.path().join("hello-1.0");
    fs::create_dir_all(&src).unwrap();
    for file in ["hello.c", "Makefile"] {
        fs::copy(spec().with_file_name(file), src.join(file)).unwrap();
    }
    tarball(
        &build.sources().join("hello-1.0.tar.xz"),
        tree.path(),
        "hello-1.0",
    );
    build
}

/// kmod-hello 1.0-`release` for kernel `krel`, its payload the fixture module built for it.
fn package(build: &Build, krel: &str, release: &str) -> PathBuf {
    let prebuilt = fixtures().join("built/kmod-hello").join(krel);
    let built = build.rpmbuild(
        &spec(),
        &[
            ("kmod_kernel_version", krel),
            ("kmod_kernel_release", krel),
            ("kmod_prebuilt_dir", prebuilt.to_str().unwrap()),
            ("pkg_release", release),
        ],
        &[],
    );
    assert_eq!(built.len(), 1, "{built:?}");
    built[0].clone()
}

/// The fixture kernels with their symvers and in-tree modules, no other kmod package's
/// modules, indexed by the real depmod; the programs the spec's scriptlets run; and this build
/// of weak-modules as /usr/sbin/weak-modules. No initramfs image: nothing for dracut to do.
fn root_with_weak_modules() -> Root {
    let root = Root::new();
    for release in KERNELS {
        let extra = root.join(&format!("lib/modules/{release}/extra"));
        if extra.exists() {
            fs::remove_dir_all(extra).unwrap();
        }
        // By its own name: kmod behaves as depmod only when called so.
        let depmod = ["/sbin/depmod", "/usr/sbin/depmod"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("Debian's kmod installs depmod");
        rpm::run(
            depmod,
            &["-b", root.path().to_str().unwrap(), "-a", release],
        );
    }
    root.prepare_for_rpm(&["find", "grep", "mkdir", "rm", "rpm", "kmod"]);
    root.copy_program(
        Path::new(env!("CARGO_BIN_EXE_weak-modules")),
        "usr/sbin/weak-modules",
    );
    std::os::unix::fs::symlink("../bin/kmod", root.join("usr/sbin/depmod")).unwrap();
    root
}

/// Every link of every kernel, `<krel>: <below weak-updates> -> <target>`.
fn all_links(root: &Root) -> Vec<String> {
    KERNELS
        .iter()
        .flat_map(|release| {
            root.links(release)
                .into_iter()
                .map(move |link| format!("{release}: {link}"))
        })
        .collect()
}

/// The lines of every kernel's modules.dep that name a hello module.
fn hello_dep_lines(root: &Root) -> Vec<String> {
    KERNELS
        .iter()
        .flat_map(|release| {
            root.modules_dep(release)
                .lines()
                .filter(|line| line.contains("hello"))
                .map(|line| format!("{release}: {line}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every path under the root whose name mentions hello, apart from rpm's database.
fn hello_paths(root: &Root) -> Vec<String> {
    let mut found: Vec<String> = walkdir::WalkDir::new(root.path())
        .into_iter()
        .filter_map(Result::ok)
        .map(|entry| {
            entry
                .path()
                .strip_prefix(root.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|path| path.contains("hello") && !path.starts_with("var/lib/rpm/"))
        .collect();
    found.sort();
    found
}

#[test]
fn install_upgrade_and_erase_run_the_specs_own_scriptlets() {
    let build = build_with_sources();
    let for_50 = package(&build, K50, "1");
    let for_55 = package(&build, K55, "2");
    let root = root_with_weak_modules();

    // Install the build for 6.1.0-50: it fits 6.1.0-53 and -54 only (module_layout changes at
    // -55; the cloud and rt flavours and 6.12 are other ABIs).
    let install = root.rpm(&["-i", "--nodeps", for_50.to_str().unwrap()]);
    assert_eq!((install.stdout.as_str(), install.stderr.as_str()), ("", ""));
    assert_eq!(
        root.rpm(&["-ql", "kmod-hello"]).stdout,
        "/lib/modules/6.1.0-50-amd64/extra/hello\n/lib/modules/6.1.0-50-amd64/extra/hello/hello.ko\n"
    );
    assert_eq!(
        fs::read(root.join(HELLO_50)).unwrap(),
        fs::read(fixtures().join("built/kmod-hello/6.1.0-50-amd64/hello.ko")).unwrap(),
        "the signed module is installed as built, signature included"
    );
    assert_eq!(
        all_links(&root),
        [
            "6.1.0-53-amd64: hello/hello.ko -> /lib/modules/6.1.0-50-amd64/extra/hello/hello.ko",
            "6.1.0-54-amd64: hello/hello.ko -> /lib/modules/6.1.0-50-amd64/extra/hello/hello.ko",
        ]
    );
    assert_eq!(
        hello_dep_lines(&root),
        [
            "6.1.0-50-amd64: extra/hello/hello.ko:",
            "6.1.0-53-amd64: weak-updates/hello/hello.ko:",
            "6.1.0-54-amd64: weak-updates/hello/hello.ko:",
        ]
    );

    // Upgrade to the build for 6.1.0-55: it fits 6.1.0-56. The old build is erased, so -53
    // and -54 lose their links (the new build does not fit them) and -50 keeps nothing.
    let upgrade = root.rpm(&["-U", "--nodeps", for_55.to_str().unwrap()]);
    assert_eq!((upgrade.stdout.as_str(), upgrade.stderr.as_str()), ("", ""));
    assert_eq!(
        all_links(&root),
        ["6.1.0-56-amd64: hello/hello.ko -> /lib/modules/6.1.0-55-amd64/extra/hello/hello.ko"]
    );
    assert_eq!(
        hello_dep_lines(&root),
        [
            "6.1.0-55-amd64: extra/hello/hello.ko:",
            "6.1.0-56-amd64: weak-updates/hello/hello.ko:",
        ]
    );
    assert!(!root.join(HELLO_50).exists());
    assert!(root.join(HELLO_55).exists());

    // Erase: no module, link, index line or saved list is left.
    let erase = root.rpm(&["-e", "--nodeps", "kmod-hello"]);
    assert_eq!((erase.stdout.as_str(), erase.stderr.as_str()), ("", ""));
    assert_eq!(all_links(&root), Vec::<String>::new());
    assert_eq!(hello_dep_lines(&root), Vec::<String>::new());
    assert_eq!(hello_paths(&root), Vec::<String>::new());
    assert_eq!(root.rpm(&["-qa"]).stdout, "");
}

/// The spec's text without its `__spec_install_post` override: rpm's defaults, brp-strip
/// included.
fn spec_without_override(dir: &Path) -> PathBuf {
    let text = fs::read_to_string(spec()).unwrap();
    let start = text.find("%define __spec_install_post").unwrap();
    let end = start + text[start..].find("%{nil}\n").unwrap() + "%{nil}\n".len();
    let copy = dir.join("kmod-hello.spec");
    fs::write(&copy, format!("{}{}", &text[..start], &text[end..])).unwrap();
    copy
}

/// Size and name of every file a package holds.
fn payload_sizes(package: &Path) -> String {
    rpm::run(
        "rpm",
        &[
            "-qp",
            "--queryformat",
            "[%{FILESIZES} %{FILENAMES}\\n]",
            package.to_str().unwrap(),
        ],
    )
    .stdout
}

#[test]
fn the_install_post_override_is_what_keeps_the_signature() {
    let signed = fixtures().join("built/kmod-hello/6.1.0-50-amd64/hello.ko");
    let bytes = fs::read(&signed).unwrap();
    assert!(bytes.ends_with(b"~Module signature appended~\n"));
    let build = build_with_sources();
    let kept = package(&build, K50, "1");
    assert_eq!(
        payload_sizes(&kept),
        format!(
            "0 /lib/modules/6.1.0-50-amd64/extra/hello\n{} /{HELLO_50}\n",
            bytes.len()
        )
    );

    let dir = tempfile::tempdir().unwrap();
    let prebuilt = signed.parent().unwrap().to_str().unwrap().to_owned();
    let stripped = build.rpmbuild(
        &spec_without_override(dir.path()),
        &[
            ("kmod_kernel_version", K50),
            ("kmod_kernel_release", K50),
            ("kmod_prebuilt_dir", &prebuilt),
            ("pkg_release", "0"),
        ],
        &[],
    );
    let sizes = payload_sizes(&stripped[0]);
    let module_size: usize = sizes
        .lines()
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        module_size < bytes.len() - 400,
        "brp-strip should have dropped the signature: {sizes}"
    );
}

/// An image builder installs the package with `rpm --noscripts`, then runs `--add-kernel` for
/// every kernel. That links the module into the other kernels, and since each run checks the
/// kernel's indexes against its modules, the kernel the module was built for is re-indexed
/// too: the image ends as the scriptlets would have left it. `--sync` does the same in one run.
#[test]
fn an_image_installed_without_scriptlets_is_completed_by_add_kernel_or_sync() {
    let build = build_with_sources();
    let package = package(&build, K50, "1");
    for finish in ["--add-kernel", "--sync"] {
        let root = Root::new();
        let image = root.path().to_str().unwrap();
        rpm::run(
            "rpm",
            &[
                "--root",
                image,
                "--dbpath",
                rpm::DBPATH,
                "--force-debian",
                "--nodeps",
                "--noscripts",
                "-i",
            ]
            .into_iter()
            .chain([package.to_str().unwrap()])
            .collect::<Vec<_>>(),
        );
        if finish == "--add-kernel" {
            for release in KERNELS {
                let run = root.run(&["--add-kernel", release, "--no-initramfs"], "");
                assert_eq!((run.status, run.stderr.as_str()), (0, ""), "{release}");
            }
        } else {
            let run = root.run(&["--sync", "--no-initramfs"], "");
            assert_eq!((run.status, run.stderr.as_str()), (0, ""));
        }
        assert_eq!(
            hello_dep_lines(&root),
            [
                "6.1.0-50-amd64: extra/hello/hello.ko:",
                "6.1.0-53-amd64: weak-updates/hello/hello.ko:",
                "6.1.0-54-amd64: weak-updates/hello/hello.ko:",
            ],
            "{finish}"
        );
        let check = root.run(&["--check"], "");
        assert_eq!(check.status, 0, "{finish}: {}", check.stdout);
    }
}

/// A release with two '-' in it, which rpm refuses as a version, gives versioned dependencies
/// rpm accepts: the release up to its second '-'.
#[test]
fn dependencies_carry_a_version_rpm_accepts() {
    let build = build_with_sources();
    let package = package(&build, K50, "1");
    let path = package.to_str().unwrap();
    let requires = rpm::run("rpm", &["-qp", "--requires", path]).stdout;
    // rpm adds rpmlib() and other requirements of its own, which vary with its version.
    let versioned: Vec<&str> = requires
        .lines()
        .filter(|l| l.contains(" = ") || l.contains(" >= "))
        .filter(|l| !l.starts_with("rpmlib("))
        .collect();
    assert_eq!(versioned, ["kernel >= 6.1.0-50"]);
    assert_eq!(
        rpm::run("rpm", &["-qp", "--provides", path]).stdout,
        "kernel-modules >= 6.1.0-50.x86_64\nkmod-hello = 1.0-1\nkmod-hello(x86-64) = 1.0-1\n"
    );
    let build_requires = rpm::run(
        "rpmspec",
        &[
            "-q",
            "--buildrequires",
            "--define",
            "kmod_kernel_version 6.1.0-50-amd64",
            spec().to_str().unwrap(),
        ],
    )
    .stdout;
    assert_eq!(
        build_requires,
        "elfutils-libelf-devel\nkernel-devel = 6.1.0-50\nkernel-rpm-macros\n"
    );
}

/// An upgrade that keeps the module's path (a new package release for the same kernel): the
/// old package's %postun hands its list to --remove-modules, whose files still exist, so every
/// link stays.
#[test]
fn an_upgrade_for_the_same_kernel_keeps_every_link() {
    let build = build_with_sources();
    let first = package(&build, K50, "1");
    let second = package(&build, K50, "2");
    let root = root_with_weak_modules();
    root.rpm(&["-i", "--nodeps", first.to_str().unwrap()]);
    let links = all_links(&root);
    assert_eq!(links.len(), 2, "{links:?}");
    let upgrade = root.rpm(&["-U", "--nodeps", second.to_str().unwrap()]);
    assert_eq!((upgrade.stdout.as_str(), upgrade.stderr.as_str()), ("", ""));
    assert_eq!(all_links(&root), links);
    assert_eq!(
        root.rpm(&["-q", "kmod-hello"]).stdout,
        "kmod-hello-1.0-2.x86_64\n"
    );
    assert_eq!(
        hello_dep_lines(&root),
        [
            "6.1.0-50-amd64: extra/hello/hello.ko:",
            "6.1.0-53-amd64: weak-updates/hello/hello.ko:",
            "6.1.0-54-amd64: weak-updates/hello/hello.ko:",
        ]
    );
    assert_eq!(
        hello_paths(&root),
        [
            "lib/modules/6.1.0-50-amd64/extra/hello",
            "lib/modules/6.1.0-50-amd64/extra/hello/hello.ko",
            "lib/modules/6.1.0-53-amd64/weak-updates/hello",
            "lib/modules/6.1.0-53-amd64/weak-updates/hello/hello.ko",
            "lib/modules/6.1.0-54-amd64/weak-updates/hello",
            "lib/modules/6.1.0-54-amd64/weak-updates/hello/hello.ko",
        ],
        "and no module list left behind in /var/lib/rpm-state"
    );
}
