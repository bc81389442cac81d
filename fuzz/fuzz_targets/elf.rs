//! `parse_module` on arbitrary bytes: a module file from disk (after decompression) must give
//! facts or an `ElfError`, never a panic, whatever its headers, sections or trailer claim.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weak_modules::core::elf::parse_module;

fuzz_target!(|module_bytes: &[u8]| {
    if let Ok(facts) = parse_module(module_bytes) {
        // Touch what the decision reads, so nothing the parser returns is left unchecked.
        let version_count = facts
            .versions
            .as_ref()
            .map_or(0, |table| table.entries.len());
        std::hint::black_box((version_count, facts.imports.len(), facts.exports.len()));
    }
});
