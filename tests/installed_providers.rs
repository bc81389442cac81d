//! A module is decided against what the target really has: the module's `struct module` must be
//! the size of the target's. Scenarios on copies of fixtures/root with the real depmod.

mod common;

use std::fs;

use common::{K56, Root, fixtures};

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
    let bare = "6.1.0-56.1-amd64";
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
