//! packaging/kernel-install/40-weak-modules.install, run as kernel-install(8) runs plugins
//! (`PLUGIN add|remove KERNEL_VERSION ENTRY_DIR KERNEL_IMAGE`), inside a root of fixture
//! kernels whose /usr/sbin/weak-modules is this build.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

const PLUGIN: &str = "usr/lib/kernel/install.d/40-weak-modules.install";

fn root_with_plugin() -> Root {
    let root = Root::new();
    root.prepare_for_rpm(&["kmod"]);
    std::os::unix::fs::symlink("../bin/kmod", root.join("usr/sbin/depmod")).unwrap();
    root.copy_program(
        Path::new(env!("CARGO_BIN_EXE_weak-modules")),
        "usr/sbin/weak-modules",
    );
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging/kernel-install/40-weak-modules.install");
    std::fs::create_dir_all(root.join(PLUGIN).parent().unwrap()).unwrap();
    copy_executable(&plugin, &root.join(PLUGIN));
    root
}

/// Exit status and output of the plugin run with `args` inside the root.
fn plugin(root: &Root, args: &[&str]) -> (i32, String, String) {
    let output = output_guarded(
        Command::new("chroot")
            .arg(root.path())
            .arg(format!("/{PLUGIN}"))
            .args(args)
            .stdin(Stdio::null()),
    )
    .expect("chroot runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn add_links_the_new_kernel_and_remove_empties_it() {
    let root = root_with_plugin();
    let entry = ["/boot/efi/x", "/boot/vmlinuz-6.1.0-56-amd64"];
    let add = plugin(&root, &[&["add", K56][..], &entry[..]].concat());
    assert_eq!(add, (0, String::new(), String::new()));
    assert_eq!(root.links(K56), K56_ADDED_IN_CHROOT);
    assert_eq!(root.reindexed(), [K56]);

    let remove = plugin(&root, &["remove", K56, "/boot/efi/x"]);
    assert_eq!(remove, (0, String::new(), String::new()));
    assert_eq!(root.links(K56), Vec::<String>::new());
}

#[test]
fn kernels_without_symvers_and_other_commands_are_left_alone_with_status_0() {
    let root = root_with_plugin();
    std::fs::create_dir_all(root.join("lib/modules/6.1.0-99-amd64")).unwrap();
    let before = root.snapshot();
    for args in [
        &[
            "add",
            K_ABSENT,
            "/boot/efi/x",
            "/boot/vmlinuz-6.1.0-99-amd64",
        ][..],
        &["inspect", K56][..],
        &[][..],
    ] {
        assert_eq!(
            plugin(&root, args),
            (0, String::new(), String::new()),
            "{args:?}"
        );
    }
    assert_eq!(changes(&before, &root.snapshot()), Vec::<String>::new());
}
