//! The tool's own RPM, built from packaging/weak-modules.spec by scripts/build-rpm.sh as
//! Kylin and openEuler build (sources and vendored crates as tarballs, rpmbuild offline),
//! installed with the real rpm into a root holding the fixture kernels, and run there.

mod common;

use std::path::Path;

use common::rpm::run;
use common::*;

const FILES: &str = "\
/usr/lib/kernel/install.d/40-weak-modules.install
/usr/sbin/weak-modules
/usr/share/bash-completion/completions/weak-modules
/usr/share/doc/weak-modules-0.1.0
/usr/share/doc/weak-modules-0.1.0/README.md
/usr/share/doc/weak-modules-0.1.0/README.packagers.md
/usr/share/doc/weak-modules-0.1.0/kmod-hello
/usr/share/doc/weak-modules-0.1.0/kmod-hello/Makefile
/usr/share/doc/weak-modules-0.1.0/kmod-hello/README.md
/usr/share/doc/weak-modules-0.1.0/kmod-hello/README.zh_CN.md
/usr/share/doc/weak-modules-0.1.0/kmod-hello/hello.c
/usr/share/doc/weak-modules-0.1.0/kmod-hello/kmod-hello.spec
/usr/share/fish/vendor_completions.d/weak-modules.fish
/usr/share/licenses/weak-modules-0.1.0
/usr/share/licenses/weak-modules-0.1.0/LICENSE
/usr/share/man/man8/weak-modules.8
/usr/share/zsh/site-functions/_weak-modules
";

#[test]
fn the_package_builds_offline_installs_into_a_root_and_links_there() {
    let topdir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-rpm.sh");
    let built = run(script.to_str().unwrap(), &[topdir.path().to_str().unwrap()]);
    let package = built
        .stdout
        .lines()
        .last()
        .expect("the script names the package")
        .to_owned();
    assert!(
        package.ends_with("/weak-modules-0.1.0-1.x86_64.rpm"),
        "{package}"
    );
    let listed = run("rpm", &["-qlp", &package]).stdout;
    let files: Vec<&str> = listed
        .lines()
        .filter(|f| !f.starts_with("/usr/lib/.build-id"))
        .collect();
    assert_eq!(files.join("\n") + "\n", FILES);

    let root = Root::new();
    root.prepare_for_rpm(&["kmod"]);
    std::os::unix::fs::symlink("../bin/kmod", root.join("usr/sbin/depmod")).unwrap();
    // The root's rpm database holds no kmod package to satisfy Requires: kmod.
    let install = root.rpm(&["-i", "--nodeps", &package]);
    assert_eq!((install.stdout.as_str(), install.stderr.as_str()), ("", ""));
    let installed = root.join("usr/sbin/weak-modules");
    root.copy_libraries_of(&installed);

    // Run there, as a kernel package's %posttrans would: the root is /, links are absolute.
    let chroot = run(
        "chroot",
        &[
            root.path().to_str().unwrap(),
            "/usr/sbin/weak-modules",
            "--add-kernel",
            K56,
            "--no-initramfs",
        ],
    );
    assert_eq!((chroot.stdout.as_str(), chroot.stderr.as_str()), ("", ""));
    assert_eq!(root.links(K56), K56_ADDED_IN_CHROOT);
    assert_eq!(root.reindexed(), [K56]);
    assert!(root.modules_dep(K56).contains("weak-updates/fx/fxmisc.ko:"));

    // Every installed file as packaged (dependencies unchecked: see the install).
    assert_eq!(root.rpm(&["-V", "--nodeps", "weak-modules"]).stdout, "");
    let erase = root.rpm(&["-e", "weak-modules"]);
    assert_eq!((erase.stdout.as_str(), erase.stderr.as_str()), ("", ""));
    assert!(!installed.exists());
}
