//! `KernelSymvers::parse` on arbitrary bytes: a symvers file must give a symbol table or a
//! `SymversError` naming the bad line, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weak_modules::core::symvers::KernelSymvers;

fuzz_target!(|symvers_bytes: &[u8]| {
    if let Ok(symvers) = KernelSymvers::parse(symvers_bytes) {
        // Every stored entry must be found again by its own name.
        for entry in symvers.iter() {
            assert!(symvers.get(&entry.export.name).is_some());
        }
        std::hint::black_box((
            symvers.vmlinux_exports().count(),
            symvers.duplicates().len(),
        ));
    }
});
