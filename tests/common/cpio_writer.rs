//! A newc/crc cpio writer for tests: images for the initramfs comparison and the parser's
//! unit tests. It is not part of the library; `src/core/cpio.rs` includes it in its unit tests
//! and `tests/initramfs.rs` in the integration tests.

const NEWC_MAGIC: &[u8; 6] = b"070701";
const CRC_MAGIC: &[u8; 6] = b"070702";
const FILE_TYPE_MASK: u32 = 0o170_000;
const REGULAR_FILE: u32 = 0o100_000;
const SYMLINK: u32 = 0o120_000;
const DIRECTORY: u32 = 0o040_000;

fn byte_sum(data: &[u8]) -> u32 {
    data.iter()
        .fold(0u32, |sum, &byte| sum.wrapping_add(u32::from(byte)))
}

/// Writes newc or crc archives: enough to build test images and fixtures.
pub struct ArchiveWriter {
    bytes: Vec<u8>,
    magic: &'static [u8; 6],
    next_ino: u32,
    data_alignment: usize,
}

impl ArchiveWriter {
    pub fn newc() -> Self {
        Self::with_magic(NEWC_MAGIC)
    }

    pub fn crc() -> Self {
        Self::with_magic(CRC_MAGIC)
    }

    fn with_magic(magic: &'static [u8; 6]) -> Self {
        ArchiveWriter {
            bytes: Vec::new(),
            magic,
            next_ino: 1,
            data_alignment: 4,
        }
    }

    /// Pads every name with NULs so that file data starts at a multiple of `alignment`, as
    /// dracut-cpio does for reflink-friendly images; the padding counts in the name size.
    pub fn data_aligned_to(mut self, alignment: usize) -> Self {
        self.data_alignment = alignment.max(4);
        self
    }

    pub fn directory(self, name: &str) -> Self {
        self.entry(name, DIRECTORY | 0o755, 2, b"")
    }

    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name, REGULAR_FILE | 0o644, 1, data)
    }

    pub fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(name, SYMLINK | 0o777, 1, target.as_bytes())
    }

    /// One file under several names, its data stored with the last name as GNU cpio does.
    pub fn hard_links(mut self, names: &[&str], data: &[u8]) -> Self {
        let ino = self.next_ino;
        let nlink = u32::try_from(names.len()).unwrap_or(u32::MAX);
        for (index, name) in names.iter().enumerate() {
            let is_last = index + 1 == names.len();
            let body = if is_last { data } else { b"" };
            self.write_entry(name, ino, REGULAR_FILE | 0o644, nlink, body);
        }
        self.next_ino += 1;
        self
    }

    /// Appends the trailer; the result is 4-byte aligned.
    pub fn finish(mut self) -> Vec<u8> {
        self.write_entry("TRAILER!!!", 0, 0, 1, b"");
        self.bytes
    }

    fn entry(mut self, name: &str, mode: u32, nlink: u32, data: &[u8]) -> Self {
        let ino = self.next_ino;
        self.write_entry(name, ino, mode, nlink, data);
        self.next_ino += 1;
        self
    }

    fn write_entry(&mut self, name: &str, ino: u32, mode: u32, nlink: u32, data: &[u8]) {
        let check = if self.magic == CRC_MAGIC && mode & FILE_TYPE_MASK == REGULAR_FILE {
            byte_sum(data)
        } else {
            0
        };
        let unpadded_end = self.bytes.len() + self.magic.len() + 13 * 8 + name.len() + 1;
        let name_size =
            name.len() + 1 + (unpadded_end.next_multiple_of(self.data_alignment) - unpadded_end);
        let fields = [
            ino,
            mode,
            0,
            0,
            nlink,
            0,
            len_u32(data.len()),
            0,
            0,
            0,
            0,
            len_u32(name_size),
            check,
        ];
        self.bytes.extend_from_slice(self.magic);
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes
            .resize(self.bytes.len() + name_size - name.len(), 0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
