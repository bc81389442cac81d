//! `--explain` on a copy of fixtures/root: one table a module, every installed kernel, pinned
//! whole; it changes nothing.

mod common;

use common::*;

#[test]
fn each_module_gets_a_table_of_every_kernel_with_the_reason_or_the_link() {
    let root = Root::new();
    // One kernel already has its link, so the table says "linked" there.
    let linked = root.run(
        &["--add-modules", "--no-initramfs"],
        &format!("{}\n", root.fxstable_55()),
    );
    assert_eq!(linked.status, 0, "{}", linked.stderr);
    let before = root.snapshot();
    let input = format!(
        "/lib/modules/{K50}/extra/fx/fxmisc.ko\n/lib/modules/{K55}/extra/fx/fxstable.ko.zst\n\
         /lib/modules/{K55}/extra/fxdep/fxexport.ko.xz\n"
    );
    let run = root.run(&["--explain"], &input);
    assert_eq!((run.status, run.stderr.as_str()), (0, ""));
    assert_eq!(run.stdout, include_str!("golden/explain.txt"));
    assert!(run.stdout.lines().all(|line| line.chars().count() <= 80));
    assert!(changes(&before, &root.snapshot()).is_empty());
}
