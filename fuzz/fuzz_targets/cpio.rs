//! The initramfs cpio reader on arbitrary bytes: walking entries, finding where the leading
//! uncompressed archives end, and collecting an image's module and modprobe contents must give
//! a result or a `CpioError`, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weak_modules::core::cpio::{ImageContents, entries, leading_archives_end};

fuzz_target!(|image: &[u8]| {
    for entry in entries(image) {
        let Ok(entry) = entry else { break };
        std::hint::black_box((
            entry.is_regular_file(),
            entry.is_symlink(),
            entry.data.len(),
        ));
    }
    if let Ok(end) = leading_archives_end(image) {
        assert!(
            end <= image.len(),
            "archives end at {end}, past {} bytes",
            image.len()
        );
    }
    let mut contents = ImageContents::new();
    if contents.add_archives(image).is_ok() {
        for path in contents.paths() {
            assert!(contents.get(path).is_some(), "listed path has no content");
        }
        assert!(contents.changed_paths(&contents.clone()).is_empty());
        assert_eq!(
            contents.changed_paths(&ImageContents::new()).len(),
            contents.len()
        );
    }
});
