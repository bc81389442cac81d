//! Nothing is written outside `lib/modules/<krel>/weak-updates/` of a kernel under the base,
//! except by depmod (its indexes) and dracut (the image it replaces).

mod common;

use std::fs;
use std::os::unix::fs::symlink;

use common::*;

/// Whether a changed path is one a run may change: ours below weak-updates/, depmod's
/// indexes, the initramfs image.
fn allowed(root: &Root, path: &std::path::Path) -> bool {
    let below = path.strip_prefix(root.path()).unwrap().to_string_lossy();
    let parts: Vec<&str> = below.split('/').collect();
    match parts.as_slice() {
        ["lib", "modules", _, "weak-updates", ..] => true,
        ["lib", "modules", _, index] => index.starts_with("modules."),
        ["boot", image] => image.starts_with("initramfs-") && image.ends_with(".img"),
        // Directories whose entries changed.
        ["lib", "modules", _] | ["boot"] | ["lib", "modules"] | [""] => true,
        _ => false,
    }
}

#[test]
fn every_mode_writes_only_below_weak_updates_and_through_depmod_and_dracut() {
    let root = Root::new();
    let dracut = with_images(&root, &[K53]);
    let dracut = dracut.to_str().unwrap();
    let before = root.snapshot();
    let steps: [(&[&str], String); 4] = [
        (&["--add-kernel", K53], String::new()),
        (&["--add-modules"], format!("{}\n", root.fxstable_55())),
        (&["--remove-modules"], format!("{}\n", root.fxmisc_50())),
        (&["--remove-kernel", K53], String::new()),
    ];
    for (args, input) in steps {
        let mut args = args.to_vec();
        args.extend(["--dracut", dracut]);
        let run = root.run(&args, &input);
        assert_eq!((run.status, run.stderr.as_str()), (0, ""), "{args:?}");
    }
    fs::remove_file(root.join("dracut.log")).unwrap();
    let changed = changes(&before, &root.snapshot());
    assert!(!changed.is_empty());
    let outside: Vec<&String> = changed
        .iter()
        .filter(|path| !allowed(&root, std::path::Path::new(path)))
        .collect();
    assert!(outside.is_empty(), "written outside: {outside:?}");
}

#[test]
fn a_weak_updates_that_leads_out_of_the_root_gets_nothing() {
    let root = Root::new();
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), root.weak_updates(K53)).unwrap();
    let run = root.run(&["--add-kernel", K53, "--no-initramfs"], "");
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr,
        format!(
            "weak-modules: {}: refusing to write outside {}; kernel {K53} left as it is\n",
            root.weak_updates(K53).display(),
            root.join(&format!("lib/modules/{K53}")).display()
        )
    );
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
}
