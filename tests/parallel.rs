//! Runs started at the same time on one root take turns on the lock: each sees the tree the
//! previous one left, and the end result is the one they give one after another.

mod common;

use common::*;

fn commands(root: &Root) -> Vec<(Vec<String>, String)> {
    vec![
        (vec!["--add-modules".into()], root.fxstable_55()),
        (vec!["--add-modules".into()], root.fxmisc_50()),
        (vec!["--add-kernel".into(), K56_1.into()], String::new()),
        (
            vec!["--add-modules".into()],
            root.module(K55, "extra/fxdep/fxexport.ko.xz"),
        ),
        (vec!["--add-kernel".into(), K54.into()], String::new()),
    ]
}

fn every_link(root: &Root) -> Vec<String> {
    weak_modules::shell::load::installed_kernels(root.path())
        .unwrap()
        .into_iter()
        .flat_map(|release| {
            root.links(&release)
                .into_iter()
                .map(move |link| format!("{release}: {link}"))
        })
        .collect()
}

#[test]
fn parallel_runs_end_where_sequential_runs_end() {
    let sequential = Root::new();
    sequential.add_kernel_like(K56, K56_1);
    for (args, stdin) in commands(&sequential) {
        let mut all = vec!["--no-initramfs"];
        all.extend(args.iter().map(String::as_str));
        let run = sequential.run(&all, &stdin);
        assert_eq!(run.status, 0, "{}", run.stderr);
    }

    let parallel = Root::new();
    parallel.add_kernel_like(K56, K56_1);
    let children: Vec<_> = commands(&parallel)
        .into_iter()
        .map(|(args, stdin)| {
            let mut all = vec!["--no-initramfs"];
            all.extend(args.iter().map(String::as_str));
            parallel.spawn(parallel.path(), &all, &stdin)
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let expected = every_link(&sequential);
    assert!(expected.len() >= 8, "{expected:?}");
    assert_eq!(every_link(&parallel), expected);
    for release in [K56_1, K56, K54] {
        assert_eq!(
            parallel.modules_dep(release),
            sequential.modules_dep(release),
            "{release}"
        );
    }
    // No temporary link name is left anywhere.
    let leftovers: Vec<String> = every_link(&parallel)
        .into_iter()
        .filter(|link| link.contains(".weak-modules."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_run_waits_while_another_holds_the_lock() {
    let root = Root::new();
    let modules = std::fs::File::open(root.join("lib/modules")).unwrap();
    let held = nix::fcntl::Flock::lock(modules, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let module = root.fxstable_55();
    let mut child = root.spawn(root.path(), &["--no-initramfs", "--add-modules"], &module);
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "it did not wait for the lock"
    );
    assert!(root.links(K56).is_empty());
    drop(held);
    assert!(child.wait().unwrap().success());
    assert!(root.link(K56, "fx/fxstable.ko.zst").is_some());
}
