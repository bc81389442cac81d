//! `decompress_with_limit` on arbitrary bytes: xz, zstd and gzip decoders (picked by magic
//! bytes) must return data or a `DecompressError`, never panic, and never hand back more than
//! the cap. The cap is small so that a decompression bomb fails fast instead of exhausting the
//! fuzzer's memory.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weak_modules::shell::decompress::decompress_with_limit;

/// Larger than every compressed fixture's output (a module is tens of KiB; a symvers is a few
/// MiB, so those seeds exercise the `TooLarge` path).
const OUTPUT_CAP_BYTES: usize = 1 << 20;

fuzz_target!(|compressed: &[u8]| {
    if let Ok(output) = decompress_with_limit(compressed, OUTPUT_CAP_BYTES) {
        assert!(
            output.len() <= OUTPUT_CAP_BYTES,
            "{} bytes returned under a {OUTPUT_CAP_BYTES}-byte cap",
            output.len()
        );
    }
});
