//! depmod gets `-e -F System.map` only from a map that holds the kernel's symbols: distributions
//! ship one-line stubs (Debian's points to the -dbg package), and with a stub every symbol a
//! module imports from the kernel would be reported unknown, once per module and kernel.

mod common;

use std::fs;
use std::io::Read;

use common::*;

/// What Debian's linux-image packages ship as /boot/System.map-<krel>.
fn stub(release: &str) -> String {
    format!("ffffffffffffffff B The real System.map is in the linux-image-{release}-dbg package\n")
}

/// A map in the real format: what depmod reads from a real one is the `__ksymtab_<name>` entry
/// of every export, here one per vmlinux export of the kernel's symvers.
fn map_from_symvers(root: &Root, release: &str) -> String {
    let mut symvers = String::new();
    flate2::read::GzDecoder::new(
        fs::File::open(root.join(&format!("boot/symvers-{release}.gz"))).unwrap(),
    )
    .read_to_string(&mut symvers)
    .unwrap();
    let mut map = String::from("ffffffff81000000 T _stext\n");
    for (n, line) in symvers.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.get(2) == Some(&"vmlinux") {
            map.push_str(&format!(
                "{:016x} r __ksymtab_{}\n",
                0xffff_ffff_8100_0000u64 + n as u64 * 16,
                fields[1]
            ));
        }
    }
    map
}

#[test]
fn a_stub_map_is_not_passed_to_depmod_and_adds_no_unknown_symbol_lines() {
    let root = Root::new();
    fs::write(
        root.join("boot/System.map-6.1.0-53-amd64"),
        map_from_symvers(&root, K53),
    )
    .unwrap();
    fs::write(root.join("boot/System.map-6.1.0-54-amd64"), stub(K54)).unwrap();
    let module = root.module(K50, "extra/fx/fxstable.ko");
    let run = root.run(
        &["--add-modules", "--no-initramfs", "--verbose"],
        &format!("{module}\n"),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    // depmod gets `-e -F` with 6.1.0-53's real map, a plain `-a` for 6.1.0-54's stub:
    // "/sbin/depmod -b ROOT -ae -F ROOT/boot/System.map-6.1.0-53-amd64 6.1.0-53-amd64" and
    // "/sbin/depmod -b ROOT -a 6.1.0-54-amd64".
    assert_golden("system_map/stub.txt", &root, &run.stdout);
    for release in [K53, K54] {
        assert_eq!(
            root.link(release, "fx/fxstable.ko").as_deref(),
            Some("../../../6.1.0-50-amd64/extra/fx/fxstable.ko")
        );
        assert!(
            root.modules_dep(release)
                .contains("weak-updates/fx/fxstable.ko:")
        );
    }
}
