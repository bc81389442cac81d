//! A module is decided against what the target really has: an export symvers gives to a module
//! counts only when that module is installed for the target, and the module's `struct module`
//! must be the size of the target's. Scenarios on copies of fixtures/root with the real depmod.

mod common;

use std::fs;
use std::process::Command;

use common::{K55, K56, K56_1, Root, assert_golden, fixtures};

const FXLLC: &str = "lib/modules/6.1.0-55-amd64/extra/fxllc/fxllc.ko";
const LLC_56: &str = "lib/modules/6.1.0-56-amd64/kernel/net/llc/llc.ko";

/// Puts a file of fixtures/ at `relative` in the root, as a package would install it.
fn install(root: &Root, from: &str, relative: &str) {
    let target = root.join(relative);
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::copy(fixtures().join(from), target).unwrap();
}

/// The run's stdout with the temporary root written as `ROOT`.
fn stdout_of(root: &Root, args: &[&str], stdin: &str) -> String {
    let run = root.run(args, stdin);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    run.stdout
        .replace(root.path().to_string_lossy().as_ref(), "ROOT")
}

/// What the real depmod says about fxllc once it is linked into 6.1.0-56: its warnings
/// (`depmod -e` against the kernel's own symvers) and its modules.dep line.
fn depmod_on_fxllc(root: &Root) -> (Vec<String>, String) {
    let symvers = root.join("6.1.0-56.symvers");
    let plain = Command::new("zstd")
        .args(["-qdc"])
        .arg(root.join("lib/modules/6.1.0-56-amd64/symvers.zst"))
        .output()
        .unwrap();
    fs::write(&symvers, plain.stdout).unwrap();
    let output = Command::new("depmod")
        .arg("-b")
        .arg(root.path())
        .args(["-n", "-e", "-E"])
        .arg(&symvers)
        .arg(K56)
        .output()
        .expect("run depmod");
    let prefix = format!("{}/", root.path().display());
    // The installed depmod's own output, worded by its version: only its lines on fxllc count.
    let warnings = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| line.contains("fxllc"))
        .map(|line| line.replace(&prefix, ""))
        .collect();
    let dep = String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|line| line.starts_with("weak-updates/fxllc/"))
        .unwrap_or_default()
        .to_owned();
    (warnings, dep)
}

#[test]
fn a_kernel_without_the_provider_module_does_not_get_its_user_until_the_provider_is_installed() {
    let root = Root::new();
    install(&root, "built/6.1.0-55-amd64/fxllc.ko", FXLLC);
    // 6.1.0-56's image without llc, as a stripped tree or a split kernel-modules package
    // leaves it: symvers still lists llc's exports, nothing on the kernel provides them.
    root.remove(LLC_56);
    let path = root.join(FXLLC).to_string_lossy().into_owned();
    let stdout = stdout_of(
        &root,
        &["--no-initramfs", "--verbose", "--add-modules"],
        &path,
    );
    let expected = "\
Module fxllc.ko from kernel 6.1.0-55-amd64 is not compatible with kernel 6.1.0-50-amd64 in symbols:  module_layout llc_sap_close llc_sap_open kfree_skb_reason
    module_layout: module wants CRC 0x9060323f, vmlinux has 0xbce1a965 (crc)
    llc_sap_close: module wants CRC 0xde235981, llc has 0x0b1aea81 (crc)
    llc_sap_open: module wants CRC 0x08b86460, llc has 0x4e1b37fe (crc)
    kfree_skb_reason: module wants CRC 0x0ed89811, vmlinux has 0x6a98b931 (crc)
Module fxllc.ko from kernel 6.1.0-55-amd64 is not compatible with kernel 6.1.0-50-cloud-amd64 in symbols:  module_layout llc_sap_close llc_sap_open kfree_skb_reason
    module_layout: module wants CRC 0x9060323f, vmlinux has 0x82164fbb (crc)
    llc_sap_close: module wants CRC 0xde235981, llc has 0x1ff8607e (crc)
    llc_sap_open: module wants CRC 0x08b86460, llc has 0x48ce9a81 (crc)
    kfree_skb_reason: module wants CRC 0x0ed89811, vmlinux has 0x7efbaf43 (crc)
Module fxllc.ko from kernel 6.1.0-55-amd64 is not compatible with kernel 6.1.0-53-amd64 in symbols:  module_layout llc_sap_close llc_sap_open kfree_skb_reason
    module_layout: module wants CRC 0x9060323f, vmlinux has 0xbce1a965 (crc)
    llc_sap_close: module wants CRC 0xde235981, llc has 0x0b1aea81 (crc)
    llc_sap_open: module wants CRC 0x08b86460, llc has 0x4e1b37fe (crc)
    kfree_skb_reason: module wants CRC 0x0ed89811, vmlinux has 0x84f2000d (crc)
Module fxllc.ko from kernel 6.1.0-55-amd64 is not compatible with kernel 6.1.0-54-amd64 in symbols:  module_layout llc_sap_close llc_sap_open kfree_skb_reason
    module_layout: module wants CRC 0x9060323f, vmlinux has 0xbce1a965 (crc)
    llc_sap_close: module wants CRC 0xde235981, llc has 0x81cc2a2f (crc)
    llc_sap_open: module wants CRC 0x08b86460, llc has 0x6273cfb5 (crc)
    kfree_skb_reason: module wants CRC 0x0ed89811, vmlinux has 0x6db827e0 (crc)
Indexes of kernel 6.1.0-55-amd64 do not match its modules: modules.dep does not list extra/fxllc/fxllc.ko
Module fxllc.ko from kernel 6.1.0-55-amd64 is not compatible with kernel 6.1.0-56-amd64 in symbols:  llc_sap_close llc_sap_open
    llc_sap_close: exported by llc, which is not installed for the kernel (provider-not-installed)
    llc_sap_open: exported by llc, which is not installed for the kernel (provider-not-installed)
Module fxllc.ko from kernel 6.1.0-55-amd64 is not compatible with kernel 6.1.0-56-rt-amd64 in symbols:  module_layout llc_sap_close llc_sap_open kfree_skb_reason
    module_layout: module wants CRC 0x9060323f, vmlinux has 0x9487079a (crc)
    vermagic 'SMP preempt mod_unload modversions' differs from the kernel's 'SMP preempt_rt mod_unload modversions' (vermagic)
    llc_sap_close: module wants CRC 0xde235981, llc has 0xc3d1a631 (crc)
    llc_sap_open: module wants CRC 0x08b86460, llc has 0xfb40a919 (crc)
    kfree_skb_reason: module wants CRC 0x0ed89811, vmlinux has 0x77e49b17 (crc)
Module fxllc.ko from kernel 6.1.0-55-amd64 is not compatible with kernel 6.12.117+deb12-amd64 in symbols:  module_layout llc_sap_close llc_sap_open kfree_skb_reason
    .gnu.linkonce.this_module: struct module of 896 bytes, the kernel's is 1280 (this-module-size)
    module_layout: module wants CRC 0x9060323f, vmlinux has 0x2f9b2b9a (crc)
    llc_sap_close: module wants CRC 0xde235981, llc has 0x7fb3113c (crc)
    llc_sap_open: module wants CRC 0x08b86460, llc has 0x9c95ee7c (crc)
    kfree_skb_reason: not exported by the kernel (missing-symbol)
/sbin/depmod -b ROOT -a 6.1.0-55-amd64
";
    assert_eq!(stdout, expected);
    assert_eq!(root.links(K56), Vec::<String>::new());
    assert_eq!(root.reindexed(), [K55]);

    // The link the CRCs alone would have made: the real depmod finds nothing that provides
    // llc's symbols on 6.1.0-56, so modprobe would fail.
    let planted = "fxllc/fxllc.ko";
    root.plant_link(K56, planted, "../../../6.1.0-55-amd64/extra/fxllc/fxllc.ko");
    let (warnings, dep) = depmod_on_fxllc(&root);
    assert_eq!(
        warnings,
        [
            "depmod: WARNING: lib/modules/6.1.0-56-amd64/weak-updates/fxllc/fxllc.ko needs unknown symbol llc_sap_close",
            "depmod: WARNING: lib/modules/6.1.0-56-amd64/weak-updates/fxllc/fxllc.ko needs unknown symbol llc_sap_open",
        ]
    );
    assert_eq!(dep, "weak-updates/fxllc/fxllc.ko:");
    fs::remove_file(root.weak_updates(K56).join(planted)).unwrap();

    // llc installed again (its package reinstalled): adding the kernel links fxllc, and the
    // real depmod resolves it to the kernel's own llc.
    install(
        &root,
        "root/lib/modules/6.1.0-56-amd64/kernel/net/llc/llc.ko",
        LLC_56,
    );
    let run = root.run(&["--no-initramfs", "--verbose", "--add-kernel", K56], "");
    assert_eq!(run.status, 0, "{}", run.stderr);
    // "Module fxllc.ko from kernel 6.1.0-55-amd64 is compatible with kernel 6.1.0-56-amd64"
    assert_golden("installed_providers/llc-back.txt", &root, &run.stdout);
    assert_eq!(
        root.links(K56),
        [
            "fx/fxalloc.ko -> ../../../6.1.0-55-amd64/extra/fx/fxalloc.ko",
            "fx/fxmisc.ko -> ../../../6.1.0-55-amd64/extra/fx/fxmisc.ko",
            "fx/fxstable.ko.zst -> ../../../6.1.0-55-amd64/extra/fx/fxstable.ko.zst",
            "fxdep/fxconsume.ko -> ../../../6.1.0-55-amd64/extra/fxdep/fxconsume.ko",
            "fxdep/fxexport.ko.xz -> ../../../6.1.0-55-amd64/extra/fxdep/fxexport.ko.xz",
            "fxllc/fxllc.ko -> ../../../6.1.0-55-amd64/extra/fxllc/fxllc.ko",
        ]
    );
    assert!(
        root.modules_dep(K56)
            .lines()
            .any(|line| line == "weak-updates/fxllc/fxllc.ko: kernel/net/llc/llc.ko"),
        "{}",
        root.modules_dep(K56)
    );
    let (warnings, dep) = depmod_on_fxllc(&root);
    assert_eq!(warnings, Vec::<String>::new());
    assert_eq!(dep, "weak-updates/fxllc/fxllc.ko: kernel/net/llc/llc.ko");
}

#[test]
fn a_provider_linked_into_weak_updates_counts_as_installed() {
    // No llc in 6.1.0-56's own tree, but a package installs 6.1.0-55's llc out of tree, and it
    // is linked into 6.1.0-56 (same ABI). fxllc, installed later, takes llc's symbols from that
    // link, which stays: the CRCs are those of that build.
    let root = Root::new();
    root.remove(LLC_56);
    let llc = "lib/modules/6.1.0-55-amd64/extra/llc/llc.ko";
    install(
        &root,
        "root/lib/modules/6.1.0-55-amd64/kernel/net/llc/llc.ko",
        llc,
    );
    let run = root.run(
        &["--no-initramfs", "--add-modules"],
        &root.join(llc).to_string_lossy(),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        root.links(K56),
        ["llc/llc.ko -> ../../../6.1.0-55-amd64/extra/llc/llc.ko"]
    );

    install(&root, "built/6.1.0-55-amd64/fxllc.ko", FXLLC);
    let run = root.run(
        &["--no-initramfs", "--verbose", "--add-modules"],
        &root.join(FXLLC).to_string_lossy(),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    // "Module fxllc.ko from kernel 6.1.0-55-amd64 is compatible with kernel 6.1.0-56-amd64"
    assert_golden("installed_providers/llc-linked.txt", &root, &run.stdout);
    assert_eq!(
        root.links(K56),
        [
            "fxllc/fxllc.ko -> ../../../6.1.0-55-amd64/extra/fxllc/fxllc.ko",
            "llc/llc.ko -> ../../../6.1.0-55-amd64/extra/llc/llc.ko",
        ]
    );
    let dep = root.modules_dep(K56);
    assert!(
        dep.lines()
            .any(|line| line == "weak-updates/fxllc/fxllc.ko: weak-updates/llc/llc.ko"),
        "{dep}"
    );

    // That link goes with its package: fxllc loses its provider and its link.
    root.remove("lib/modules/6.1.0-55-amd64/extra/llc/llc.ko");
    let stdout = stdout_of(
        &root,
        &["--no-initramfs", "--verbose", "--remove-modules"],
        &root
            .join("lib/modules/6.1.0-55-amd64/extra/llc/llc.ko")
            .to_string_lossy(),
    );
    // Removes fxllc's link: llc_sap_close and llc_sap_open are exported by llc, which is not
    // installed for the kernel any more.
    assert_golden("installed_providers/llc-removed.txt", &root, &stdout);
    assert!(
        !root
            .links(K56)
            .iter()
            .any(|link| link.starts_with("fxllc/") || link.starts_with("llc/")),
        "{:?}",
        root.links(K56)
    );
}

#[test]
fn a_struct_module_of_another_size_is_refused_and_unchecked_where_the_kernel_ships_no_module() {
    // 6.1.0-55's fxstable, rebuilt after a kABI-hidden change grew struct module by 64 bytes:
    // every CRC is 6.1.0-55's, so by depmod's rules it fits 6.1.0-56; the loader refuses it.
    // A third kernel of the same ABI ships no module at all: its size is unknown, and said so.
    let root = Root::new();
    root.remove("lib/modules/6.1.0-55-amd64/extra/fx/fxstable.ko.zst");
    let grown = "lib/modules/6.1.0-55-amd64/extra/fx/fxstable.ko";
    install(
        &root,
        "built/variants/6.1.0-55-amd64/this_module-grown/fxstable.ko",
        grown,
    );
    let bare = K56_1;
    root.add_kernel_like(K56, bare);
    let path = root.join(grown).to_string_lossy().into_owned();
    let stdout = stdout_of(
        &root,
        &["--no-initramfs", "--verbose", "--dry-run", "--add-modules"],
        &path,
    );
    let expected = "\
Module fxstable.ko from kernel 6.1.0-55-amd64 is not compatible with kernel 6.1.0-50-amd64 in symbols:  module_layout
    .gnu.linkonce.this_module: struct module of 960 bytes, the kernel's is 896 (this-module-size)
    module_layout: module wants CRC 0x9060323f, vmlinux has 0xbce1a965 (crc)
Module fxstable.ko from kernel 6.1.0-55-amd64 is not compatible with kernel 6.1.0-50-cloud-amd64 in symbols:  module_layout
    .gnu.linkonce.this_module: struct module of 960 bytes, the kernel's is 896 (this-module-size)
    module_layout: module wants CRC 0x9060323f, vmlinux has 0x82164fbb (crc)
Module fxstable.ko from kernel 6.1.0-55-amd64 is not compatible with kernel 6.1.0-53-amd64 in symbols:  module_layout
    .gnu.linkonce.this_module: struct module of 960 bytes, the kernel's is 896 (this-module-size)
    module_layout: module wants CRC 0x9060323f, vmlinux has 0xbce1a965 (crc)
Module fxstable.ko from kernel 6.1.0-55-amd64 is not compatible with kernel 6.1.0-54-amd64 in symbols:  module_layout
    .gnu.linkonce.this_module: struct module of 960 bytes, the kernel's is 896 (this-module-size)
    module_layout: module wants CRC 0x9060323f, vmlinux has 0xbce1a965 (crc)
Indexes of kernel 6.1.0-55-amd64 do not match its modules: modules.dep lists extra/fx/fxstable.ko.zst, which is gone
Module fxstable.ko from kernel 6.1.0-55-amd64 is not compatible with kernel 6.1.0-56-amd64
    .gnu.linkonce.this_module: struct module of 960 bytes, the kernel's is 896 (this-module-size)
Module fxstable.ko from kernel 6.1.0-55-amd64 is not compatible with kernel 6.1.0-56-rt-amd64 in symbols:  module_layout mutex_lock mutex_unlock
    .gnu.linkonce.this_module: struct module of 960 bytes, the kernel's is 896 (this-module-size)
    module_layout: module wants CRC 0x9060323f, vmlinux has 0x9487079a (crc)
    vermagic 'SMP preempt mod_unload modversions' differs from the kernel's 'SMP preempt_rt mod_unload modversions' (vermagic)
    mutex_lock: module wants CRC 0x4dfa8d4b, vmlinux has 0x5de130f5 (crc)
    mutex_unlock: module wants CRC 0x3213f038, vmlinux has 0xd2e426b5 (crc)
Kernel 6.1.0-56.1-amd64 ships no module to read the size of struct module from; it is not checked
Module fxstable.ko from kernel 6.1.0-55-amd64 is compatible with kernel 6.1.0-56.1-amd64
Linking lib/modules/6.1.0-56.1-amd64/weak-updates/fx/fxstable.ko -> ../../../6.1.0-55-amd64/extra/fx/fxstable.ko
Module fxstable.ko from kernel 6.1.0-55-amd64 is not compatible with kernel 6.12.117+deb12-amd64 in symbols:  module_layout _printk
    .gnu.linkonce.this_module: struct module of 960 bytes, the kernel's is 1280 (this-module-size)
    module_layout: module wants CRC 0x9060323f, vmlinux has 0x2f9b2b9a (crc)
    _printk: module wants CRC 0x92997ed8, vmlinux has 0x122c3a7e (crc)
/sbin/depmod -b ROOT -a 6.1.0-55-amd64
/sbin/depmod -b ROOT -a 6.1.0-56.1-amd64
";
    assert_eq!(stdout, expected);
}

#[test]
fn a_kernel_missing_a_module_whose_exports_nobody_uses_changes_nothing() {
    // 6.1.0-56 without its llc: no fixture module of ours needs llc, so --add-kernel links
    // exactly what it links on the complete tree.
    let complete = Root::new();
    let stripped = Root::new();
    stripped.remove(LLC_56);
    for root in [&complete, &stripped] {
        let run = root.run(&["--no-initramfs", "--add-kernel", K56], "");
        assert_eq!(run.status, 0, "{}", run.stderr);
    }
    assert_eq!(complete.links(K56), stripped.links(K56));
    assert_eq!(
        complete.links(K56),
        [
            "fx/fxalloc.ko -> ../../../6.1.0-55-amd64/extra/fx/fxalloc.ko",
            "fx/fxmisc.ko -> ../../../6.1.0-55-amd64/extra/fx/fxmisc.ko",
            "fx/fxstable.ko.zst -> ../../../6.1.0-55-amd64/extra/fx/fxstable.ko.zst",
            "fxdep/fxconsume.ko -> ../../../6.1.0-55-amd64/extra/fxdep/fxconsume.ko",
            "fxdep/fxexport.ko.xz -> ../../../6.1.0-55-amd64/extra/fxdep/fxexport.ko.xz",
        ]
    );
}

#[test]
fn the_size_of_struct_module_comes_from_the_kernels_own_modules_wherever_they_are() {
    // 6.1.0-56 ships llc, stp and dummy in kernel/ and its own fxexport in extra/, all with a
    // struct module of 896 bytes. Without kernel/, the out-of-tree module built for it tells;
    // without either, nothing does.
    let root = Root::new();
    let tree = common::load_kernel(root.path(), K56).unwrap();
    assert_eq!(tree.this_module_size, Some(896));
    fs::remove_dir_all(root.join("lib/modules/6.1.0-56-amd64/kernel")).unwrap();
    let tree = common::load_kernel(root.path(), K56).unwrap();
    assert_eq!(tree.this_module_size, Some(896));
    assert_eq!(tree.vermagic_tail, None);
    root.remove("lib/modules/6.1.0-56-amd64/extra/fxdep/fxexport.ko");
    let tree = common::load_kernel(root.path(), K56).unwrap();
    assert_eq!(tree.this_module_size, None);
}
