//! cpio archives in the "newc" (`070701`) and "crc" (`070702`) formats, the ones the kernel
//! unpacks as an initramfs, and the part of an image that decides whether it must be rebuilt.
//!
//! An initramfs image is a sequence the kernel unpacks in order into one root file system:
//! uncompressed cpio archives (the "early cpio", e.g. CPU microcode), zero padding, then the
//! main archive, compressed or not. [`leading_archives_end`] finds where the uncompressed run
//! stops; decompressing the rest is the caller's job, so this module stays free of I/O.
//!
//! Every length read from an archive is checked against the bytes actually there, so a
//! truncated or hostile archive gives a [`CpioError`], never a panic.

use std::collections::{BTreeMap, HashMap};

const HEADER_LEN: usize = 110;
const NEWC_MAGIC: &[u8; 6] = b"070701";
const CRC_MAGIC: &[u8; 6] = b"070702";
const TRAILER_NAME: &[u8] = b"TRAILER!!!";

const FILE_TYPE_MASK: u32 = 0o170_000;
const REGULAR_FILE: u32 = 0o100_000;
const SYMLINK: u32 = 0o120_000;

/// Module file suffixes that count for the comparison, matched case-insensitively like the
/// bash tool's `find -iname`.
const MODULE_SUFFIXES: &[&[u8]] = &[b".ko", b".ko.xz", b".ko.gz", b".ko.zst"];

/// Directories whose `*.conf` files configure modprobe inside the initramfs. kmod also reads
/// `lib/modprobe.d`, which the bash tool does not compare.
const MODPROBE_DIRS: &[&[u8]] = &[
    b"etc/modprobe.d/",
    b"usr/lib/modprobe.d/",
    b"lib/modprobe.d/",
];

/// Where in the buffer handed to the parser, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("offset {offset}: {kind}")]
pub struct CpioError {
    /// Of the entry header (or of the unexpected bytes) the problem belongs to.
    pub offset: usize,
    pub kind: CpioErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpioErrorKind {
    #[error("not a newc or crc cpio header")]
    BadMagic,
    #[error("cpio header field `{0}` is not 8 hex digits")]
    BadField(&'static str),
    #[error("cpio {0} runs past the end of the data")]
    Truncated(&'static str),
    #[error("cpio entry name is empty or not NUL-terminated")]
    BadName,
    #[error("checksum of `{0}` does not match its crc cpio header")]
    Checksum(String),
    #[error("cpio archive ends without a TRAILER!!! record")]
    MissingTrailer,
    #[error("expected a cpio archive or zero padding")]
    NotAnArchive,
}

impl CpioError {
    fn at(offset: usize, kind: CpioErrorKind) -> Self {
        CpioError { offset, kind }
    }
}

/// One member of an archive, borrowing from the archive bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// As stored, without the terminating NUL; often starts with `./`.
    pub name: &'a [u8],
    pub mode: u32,
    pub ino: u32,
    pub nlink: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// File contents, or the target of a symlink.
    pub data: &'a [u8],
}

impl Entry<'_> {
    pub fn is_regular_file(&self) -> bool {
        self.mode & FILE_TYPE_MASK == REGULAR_FILE
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & FILE_TYPE_MASK == SYMLINK
    }
}

/// The entries of one archive starting at the beginning of the given bytes, up to (not
/// including) its `TRAILER!!!` record. Stops after the first error.
pub fn entries(archive: &[u8]) -> Entries<'_> {
    Entries {
        archive,
        offset: 0,
        end: None,
        failed: false,
    }
}

pub struct Entries<'a> {
    archive: &'a [u8],
    offset: usize,
    end: Option<usize>,
    failed: bool,
}

impl<'a> Entries<'a> {
    /// Where the archive ends (after its trailer, 4-byte aligned), once the trailer was read.
    pub fn end(&self) -> Option<usize> {
        self.end
    }

    fn read_next(&mut self) -> Result<Option<Entry<'a>>, CpioError> {
        if self.offset == self.archive.len() {
            return Err(CpioError::at(self.offset, CpioErrorKind::MissingTrailer));
        }
        let (entry, next) = read_entry(self.archive, self.offset)?;
        self.offset = next;
        if entry.name == TRAILER_NAME {
            // The padding after a trailer that carries data may be cut off at the buffer end.
            self.end = Some(next.min(self.archive.len()));
            return Ok(None);
        }
        Ok(Some(entry))
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, CpioError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.end.is_some() {
            return None;
        }
        let result = self.read_next();
        self.failed = result.is_err();
        result.transpose()
    }
}

/// The header fields after the magic, in their on-disk order; for error messages.
const FIELD_NAMES: [&str; 13] = [
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
];

/// The header fields this parser uses.
struct Header {
    has_checksum: bool,
    ino: u32,
    mode: u32,
    nlink: u32,
    file_size: u32,
    dev_major: u32,
    dev_minor: u32,
    name_size: u32,
    check: u32,
}

/// Reads the entry at `offset`; returns it and the offset of the next header.
fn read_entry(archive: &[u8], offset: usize) -> Result<(Entry<'_>, usize), CpioError> {
    let header = read_header(archive, offset)?;
    let name_start = offset + HEADER_LEN;
    let name_len = as_len(header.name_size);
    let name = take(archive, name_start, name_len, "entry name", offset)?;
    // Writers that align file data pad the name with extra NULs (dracut-cpio does); the kernel
    // takes the name up to the first NUL.
    let Some(end) = name.iter().position(|&byte| byte == 0) else {
        return Err(CpioError::at(offset, CpioErrorKind::BadName));
    };
    let name = &name[..end];
    let data_start = align4(name_start, name_len, offset, "entry name")?;
    let data_len = as_len(header.file_size);
    let data = take(archive, data_start, data_len, "file data", offset)?;
    let next = align4(data_start, data_len, offset, "file data")?;
    let entry = Entry {
        name,
        mode: header.mode,
        ino: header.ino,
        nlink: header.nlink,
        dev_major: header.dev_major,
        dev_minor: header.dev_minor,
        data,
    };
    // Like the kernel and GNU cpio, only regular files carry a checksum; symlinks have 0.
    if header.has_checksum && entry.is_regular_file() && header.check != byte_sum(data) {
        let name = String::from_utf8_lossy(name).into_owned();
        return Err(CpioError::at(offset, CpioErrorKind::Checksum(name)));
    }
    Ok((entry, next))
}

fn read_header(archive: &[u8], offset: usize) -> Result<Header, CpioError> {
    let bytes = take(archive, offset, HEADER_LEN, "header", offset)?;
    let has_checksum = match &bytes[..6] {
        magic if magic == NEWC_MAGIC => false,
        magic if magic == CRC_MAGIC => true,
        _ => return Err(CpioError::at(offset, CpioErrorKind::BadMagic)),
    };
    let mut fields = [0; 13];
    for ((value, hex), field) in fields
        .iter_mut()
        .zip(bytes[6..].chunks_exact(8))
        .zip(FIELD_NAMES)
    {
        *value = parse_hex(hex).ok_or(CpioError::at(offset, CpioErrorKind::BadField(field)))?;
    }
    let [
        ino,
        mode,
        _uid,
        _gid,
        nlink,
        _mtime,
        file_size,
        dev_major,
        dev_minor,
        ..,
    ] = fields;
    let [.., name_size, check] = fields;
    Ok(Header {
        has_checksum,
        ino,
        mode,
        nlink,
        file_size,
        dev_major,
        dev_minor,
        name_size,
        check,
    })
}

fn parse_hex(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |value, &digit| {
        let nibble = char::from(digit).to_digit(16)?;
        Some(value << 4 | nibble)
    })
}

/// A u32 length as usize; saturates where usize is narrower, which then fails the bounds check.
fn as_len(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// `len` bytes at `start`, or `Truncated` naming the entry at `entry_offset`.
fn take<'a>(
    bytes: &'a [u8],
    start: usize,
    len: usize,
    part: &'static str,
    entry_offset: usize,
) -> Result<&'a [u8], CpioError> {
    start
        .checked_add(len)
        .and_then(|end| bytes.get(start..end))
        .ok_or(CpioError::at(entry_offset, CpioErrorKind::Truncated(part)))
}

/// `start + len` rounded up to a multiple of 4 (counted from the archive start).
fn align4(
    start: usize,
    len: usize,
    entry_offset: usize,
    part: &'static str,
) -> Result<usize, CpioError> {
    start
        .checked_add(len)
        .and_then(|end| end.checked_add(3))
        .map(|end| end & !3)
        .ok_or(CpioError::at(entry_offset, CpioErrorKind::Truncated(part)))
}

/// The "crc" format's checksum: the 32-bit wrapping sum of the data bytes.
fn byte_sum(data: &[u8]) -> u32 {
    data.iter()
        .fold(0u32, |sum, &byte| sum.wrapping_add(u32::from(byte)))
}

fn starts_archive(bytes: &[u8]) -> bool {
    bytes.starts_with(NEWC_MAGIC) || bytes.starts_with(CRC_MAGIC)
}

fn skip_zero_padding(bytes: &[u8], offset: usize) -> usize {
    let zeros = bytes[offset..]
        .iter()
        .take_while(|&&byte| byte == 0)
        .count();
    offset + zeros
}

/// Walks the run of uncompressed archives (and zero padding) at the start of `bytes`, calling
/// `on_entry` with each entry and the index of its archive. Returns where the run stops: the
/// first byte that is neither padding nor a cpio header, or the end of `bytes`.
fn walk_archives<'a>(
    bytes: &'a [u8],
    mut on_entry: impl FnMut(usize, Entry<'a>),
) -> Result<WalkEnd, CpioError> {
    let mut offset = 0;
    let mut archives = 0;
    loop {
        offset = skip_zero_padding(bytes, offset);
        if !starts_archive(&bytes[offset..]) {
            return Ok(WalkEnd { offset, archives });
        }
        let mut archive = entries(&bytes[offset..]);
        for entry in archive.by_ref() {
            let entry = entry.map_err(|err| CpioError {
                // Entry offsets count from the archive start.
                offset: err.offset.saturating_add(offset),
                ..err
            })?;
            on_entry(archives, entry);
        }
        // The iterator only stops without error after the trailer.
        offset += archive.end().unwrap_or(bytes.len() - offset);
        archives += 1;
    }
}

struct WalkEnd {
    offset: usize,
    archives: usize,
}

/// Where the leading uncompressed cpio archives of an initramfs image, and the zero padding
/// after them, end: the offset of the (usually compressed) main archive, or `image.len()` if
/// the whole image is uncompressed cpio. Validates the archives it walks.
pub fn leading_archives_end(image: &[u8]) -> Result<usize, CpioError> {
    Ok(walk_archives(image, |_, _| {})?.offset)
}

/// What an entry that matters holds: compared byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content<'a> {
    File(&'a [u8]),
    SymlinkTo(&'a [u8]),
}

/// The kernel modules and modprobe configuration files of an image, by path (without a leading
/// `./` or `/`), as the unpacked root would hold them: a later entry for the same path replaces
/// an earlier one. Two images whose contents are equal need no replacement, however many
/// archives each is made of.
#[derive(Debug, Clone, Default)]
pub struct ImageContents<'a> {
    entries: BTreeMap<&'a [u8], Content<'a>>,
    archives: usize,
}

impl PartialEq for ImageContents<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for ImageContents<'_> {}

impl<'a> ImageContents<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the entries of the cpio archives that make up `bytes` (zero padding between and
    /// after them is allowed). Anything else in `bytes` is an error.
    pub fn add_archives(&mut self, bytes: &'a [u8]) -> Result<(), CpioError> {
        let mut hard_links = HardLinks::default();
        let walked = walk_archives(bytes, |archive, entry| {
            hard_links.note(archive, &entry);
            self.add_entry(archive, entry, &mut hard_links);
        })?;
        if walked.offset != bytes.len() {
            return Err(CpioError::at(walked.offset, CpioErrorKind::NotAnArchive));
        }
        self.archives += walked.archives;
        hard_links.fill_in(&mut self.entries);
        Ok(())
    }

    /// How many cpio archives were added; zero means no archive was found at all.
    pub fn archive_count(&self) -> usize {
        self.archives
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, path: &[u8]) -> Option<Content<'a>> {
        self.entries.get(path).copied()
    }

    pub fn paths(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.entries.keys().copied()
    }

    /// Paths that are added, removed or different in `other`, sorted; for reporting.
    pub fn changed_paths(&self, other: &ImageContents<'_>) -> Vec<String> {
        let mut changed: Vec<&[u8]> = self
            .entries
            .iter()
            .filter(|(path, content)| other.entries.get(**path) != Some(*content))
            .map(|(path, _)| *path)
            .chain(
                other
                    .paths()
                    .filter(|path| !self.entries.contains_key(path)),
            )
            .collect();
        changed.sort_unstable();
        changed
            .into_iter()
            .map(|path| String::from_utf8_lossy(path).into_owned())
            .collect()
    }

    fn add_entry(&mut self, archive: usize, entry: Entry<'a>, hard_links: &mut HardLinks<'a>) {
        let path = normalized_path(entry.name);
        if !matters(path) {
            return;
        }
        let content = if entry.is_regular_file() {
            Content::File(entry.data)
        } else if entry.is_symlink() {
            Content::SymlinkTo(entry.data)
        } else {
            // A directory or device now sits where a module was.
            self.entries.remove(path);
            return;
        };
        self.entries.insert(path, content);
        hard_links.maybe_pending(archive, path, &entry);
    }
}

/// Hard-linked files in newc carry their data only once (GNU cpio: with the last name); the
/// other names have size 0 and share the inode number within their archive.
#[derive(Default)]
struct HardLinks<'a> {
    data: HashMap<InodeKey, &'a [u8]>,
    pending: Vec<(&'a [u8], InodeKey)>,
}

type InodeKey = (usize, u32, u32, u32);

impl<'a> HardLinks<'a> {
    fn key(archive: usize, entry: &Entry<'_>) -> Option<InodeKey> {
        let shared = entry.is_regular_file() && entry.nlink > 1;
        shared.then_some((archive, entry.dev_major, entry.dev_minor, entry.ino))
    }

    fn note(&mut self, archive: usize, entry: &Entry<'a>) {
        if let Some(key) = Self::key(archive, entry)
            && !entry.data.is_empty()
        {
            self.data.insert(key, entry.data);
        }
    }

    fn maybe_pending(&mut self, archive: usize, path: &'a [u8], entry: &Entry<'a>) {
        if let Some(key) = Self::key(archive, entry)
            && entry.data.is_empty()
        {
            self.pending.push((path, key));
        }
    }

    fn fill_in(self, entries: &mut BTreeMap<&'a [u8], Content<'a>>) {
        for (path, key) in self.pending {
            if let (Some(data), Some(content @ Content::File(b""))) =
                (self.data.get(&key), entries.get_mut(path))
            {
                *content = Content::File(data);
            }
        }
    }
}

/// `./usr/lib/x` and `/usr/lib/x` -> `usr/lib/x`.
fn normalized_path(mut name: &[u8]) -> &[u8] {
    loop {
        if let Some(rest) = name.strip_prefix(b"./") {
            name = rest;
        } else if let Some(rest) = name.strip_prefix(b"/") {
            name = rest;
        } else {
            return name;
        }
    }
}

/// Kernel modules anywhere, and `*.conf` directly in a modprobe.d directory. Names starting
/// with a dot are skipped there, as kmod and the bash tool's glob skip them.
fn matters(path: &[u8]) -> bool {
    is_module(path) || is_modprobe_conf(path)
}

fn is_module(path: &[u8]) -> bool {
    let lower = path.to_ascii_lowercase();
    MODULE_SUFFIXES.iter().any(|suffix| lower.ends_with(suffix))
}

fn is_modprobe_conf(path: &[u8]) -> bool {
    MODPROBE_DIRS.iter().any(|dir| {
        path.strip_prefix(*dir).is_some_and(|file| {
            !file.contains(&b'/') && !file.starts_with(b".") && file.ends_with(b".conf")
        })
    })
}

#[cfg(test)]
#[path = "../../tests/common/cpio_writer.rs"]
mod cpio_writer;

#[cfg(test)]
mod tests {
    use super::cpio_writer::ArchiveWriter;
    use super::*;
    use proptest::prelude::*;

    fn sample_archive() -> Vec<u8> {
        ArchiveWriter::newc()
            .directory(".")
            .file("./usr/lib/modules/6.1.0/extra/a.ko", b"module a")
            .file("etc/modprobe.d/a.conf", b"options a x=1")
            .symlink("./lib", "usr/lib")
            .file("usr/bin/sh", b"#!")
            .finish()
    }

    fn contents(bytes: &[u8]) -> Result<ImageContents<'_>, CpioError> {
        let mut contents = ImageContents::new();
        contents.add_archives(bytes)?;
        Ok(contents)
    }

    fn path_list(contents: &ImageContents<'_>) -> Vec<String> {
        contents
            .paths()
            .map(|path| String::from_utf8_lossy(path).into_owned())
            .collect()
    }

    #[test]
    fn iterates_entries_up_to_the_trailer() {
        let archive = sample_archive();
        let mut iter = entries(&archive);
        let names: Vec<_> = iter.by_ref().map(|entry| entry.unwrap().name).collect();
        assert_eq!(
            names,
            [
                &b"."[..],
                b"./usr/lib/modules/6.1.0/extra/a.ko",
                b"etc/modprobe.d/a.conf",
                b"./lib",
                b"usr/bin/sh"
            ]
        );
        assert_eq!(iter.end(), Some(archive.len()));
    }

    #[test]
    fn entries_carry_data_mode_and_type() {
        let archive = sample_archive();
        let all: Vec<_> = entries(&archive).map(Result::unwrap).collect();
        assert!(all[1].is_regular_file());
        assert_eq!(all[1].data, b"module a");
        assert!(all[3].is_symlink());
        assert_eq!(all[3].data, b"usr/lib");
        assert_eq!(all[0].mode, 0o040_755, "a directory");
    }

    #[test]
    fn keeps_only_modules_and_modprobe_conf() {
        let archive = ArchiveWriter::newc()
            .file("a/b/x.KO", b"1")
            .file("a/y.ko.xz", b"2")
            .file("a/z.ko.gz", b"3")
            .file("a/w.ko.zst", b"4")
            .file("a/not.kobj", b"5")
            .file("usr/lib/modprobe.d/u.conf", b"6")
            .file("lib/modprobe.d/l.conf", b"7")
            .file("etc/modprobe.d/sub/deep.conf", b"8")
            .file("etc/modprobe.d/.hidden.conf", b"9")
            .file("etc/modprobe.d/readme.txt", b"10")
            .file("etc/modules-load.d/x.conf", b"11")
            .finish();
        let found = contents(&archive).unwrap();
        assert_eq!(
            path_list(&found),
            [
                "a/b/x.KO",
                "a/w.ko.zst",
                "a/y.ko.xz",
                "a/z.ko.gz",
                "lib/modprobe.d/l.conf",
                "usr/lib/modprobe.d/u.conf"
            ]
        );
    }

    #[test]
    fn symlinked_modules_compare_by_target() {
        let one = ArchiveWriter::newc()
            .symlink("m/a.ko", "../x/a.ko")
            .finish();
        let other = ArchiveWriter::newc()
            .symlink("m/a.ko", "../y/a.ko")
            .finish();
        let (one, other) = (contents(&one).unwrap(), contents(&other).unwrap());
        assert_eq!(one.get(b"m/a.ko"), Some(Content::SymlinkTo(b"../x/a.ko")));
        assert_ne!(one, other);
        assert_eq!(one.changed_paths(&other), ["m/a.ko"]);
    }

    #[test]
    fn names_padded_with_nuls_are_cut_at_the_first() {
        let padded = ArchiveWriter::newc()
            .data_aligned_to(512)
            .file("lib/modules/K/extra/m.ko", b"module")
            .finish();
        let plain = ArchiveWriter::newc()
            .file("lib/modules/K/extra/m.ko", b"module")
            .finish();
        assert_eq!(
            path_list(&contents(&padded).unwrap()),
            ["lib/modules/K/extra/m.ko"]
        );
        assert!(contents(&padded).unwrap() == contents(&plain).unwrap());
    }

    #[test]
    fn leading_dot_slash_does_not_matter() {
        let dotted = ArchiveWriter::newc().file("./m/a.ko", b"x").finish();
        let plain = ArchiveWriter::newc().file("m/a.ko", b"x").finish();
        assert_eq!(contents(&dotted).unwrap(), contents(&plain).unwrap());
    }

    #[test]
    fn later_archives_replace_earlier_entries() {
        let mut image = ArchiveWriter::newc()
            .file("m/a.ko", b"old")
            .file("m/b.ko", b"b")
            .finish();
        image.extend_from_slice(&[0; 512]);
        image.extend(
            ArchiveWriter::newc()
                .file("m/a.ko", b"new")
                .directory("m/b.ko")
                .finish(),
        );
        let found = contents(&image).unwrap();
        assert_eq!(found.archive_count(), 2);
        let single = ArchiveWriter::newc().file("m/a.ko", b"new").finish();
        assert_eq!(found, contents(&single).unwrap());
        assert_eq!(found.get(b"m/a.ko"), Some(Content::File(b"new")));
        assert_eq!(found.get(b"m/b.ko"), None);
    }

    #[test]
    fn hard_linked_modules_share_their_data() {
        let archive = ArchiveWriter::newc()
            .hard_links(&["m/a.ko", "m/b.ko"], b"shared")
            .finish();
        let found = contents(&archive).unwrap();
        assert_eq!(found.get(b"m/a.ko"), Some(Content::File(b"shared")));
        assert_eq!(found.get(b"m/b.ko"), Some(Content::File(b"shared")));
    }

    #[test]
    fn crc_format_is_read_and_checked() {
        let archive = ArchiveWriter::crc()
            .file("m/a.ko", b"payload")
            .symlink("m/b.ko", "a.ko")
            .finish();
        assert_eq!(
            contents(&archive).unwrap().get(b"m/a.ko"),
            Some(Content::File(b"payload"))
        );
        let mut corrupt = archive.clone();
        let data_at = corrupt.windows(7).position(|w| w == b"payload").unwrap();
        corrupt[data_at] ^= 1;
        assert!(matches!(
            contents(&corrupt),
            Err(CpioError {
                offset: 0,
                kind: CpioErrorKind::Checksum(_)
            })
        ));
    }

    #[test]
    fn leading_archives_end_finds_the_compressed_part() {
        let mut image = ArchiveWriter::newc()
            .file("kernel/x86/microcode/GenuineIntel.bin", b"ucode")
            .finish();
        image.extend_from_slice(&[0; 100]);
        let main_at = image.len();
        image.extend_from_slice(&[0x1F, 0x8B, 8, 0, 0]);
        assert_eq!(leading_archives_end(&image), Ok(main_at));
        let plain = sample_archive();
        assert_eq!(leading_archives_end(&plain), Ok(plain.len()));
        assert_eq!(leading_archives_end(b"\x1f\x8b"), Ok(0));
        assert_eq!(leading_archives_end(b""), Ok(0));
    }

    #[test]
    fn trailing_garbage_is_not_an_archive() {
        let mut bytes = sample_archive();
        let garbage_at = bytes.len() + 8;
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(b"garbage");
        assert_eq!(
            contents(&bytes),
            Err(CpioError::at(garbage_at, CpioErrorKind::NotAnArchive))
        );
        assert_eq!(
            contents(b"garbage"),
            Err(CpioError::at(0, CpioErrorKind::NotAnArchive))
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let archive = sample_archive();
        for cut in 1..archive.len() {
            let result = contents(&archive[..cut]);
            assert!(result.is_err(), "cut at {cut}: {result:?}");
        }
    }

    #[test]
    fn missing_trailer_is_reported() {
        let archive = sample_archive();
        let trailer_at = archive.len() - 124;
        let err = contents(&archive[..trailer_at]).unwrap_err();
        assert_eq!(
            err,
            CpioError::at(trailer_at, CpioErrorKind::MissingTrailer)
        );
    }

    #[test]
    fn unpadded_trailer_data_at_the_end_is_accepted() {
        let mut archive = sample_archive();
        let trailer_at = archive.len() - 124;
        let filesize_at = trailer_at + 6 + 8 * 6;
        archive[filesize_at..filesize_at + 8].copy_from_slice(b"00000001");
        archive.push(b'x');
        assert_eq!(leading_archives_end(&archive), Ok(archive.len()));
        assert_eq!(contents(&archive).unwrap().len(), 2);
    }

    #[test]
    fn hostile_header_fields_are_errors() {
        let archive = sample_archive();
        let set_field = |index: usize, value: &[u8; 8]| {
            let mut bytes = archive.clone();
            bytes[6 + 8 * index..14 + 8 * index].copy_from_slice(value);
            contents(&bytes).map(|_| ())
        };
        let filesize = 6;
        let namesize = 11;
        assert!(matches!(
            set_field(filesize, b"FFFFFFFF"),
            Err(CpioError {
                offset: 0,
                kind: CpioErrorKind::Truncated(_)
            })
        ));
        assert!(matches!(
            set_field(namesize, b"FFFFFFFF"),
            Err(CpioError {
                offset: 0,
                kind: CpioErrorKind::Truncated(_)
            })
        ));
        assert_eq!(
            set_field(namesize, b"00000000"),
            Err(CpioError::at(0, CpioErrorKind::BadName))
        );
        assert_eq!(
            set_field(filesize, b"0000000G"),
            Err(CpioError::at(0, CpioErrorKind::BadField("filesize")))
        );
        assert_eq!(
            set_field(filesize, b"+0000001"),
            Err(CpioError::at(0, CpioErrorKind::BadField("filesize")))
        );
    }

    #[test]
    fn errors_in_a_later_archive_name_the_image_offset() {
        let mut image = sample_archive();
        let second_at = image.len();
        let mut second = sample_archive();
        second[1] = b'9';
        image.extend(second);
        let mut found = ImageContents::new();
        // The second archive no longer looks like one, so the walk stops before it.
        assert_eq!(
            found.add_archives(&image),
            Err(CpioError::at(second_at, CpioErrorKind::NotAnArchive))
        );
        let mut truncated = sample_archive();
        truncated.extend_from_slice(&sample_archive()[..50]);
        assert!(matches!(
            contents(&truncated),
            Err(CpioError { offset, kind: CpioErrorKind::Truncated("header") }) if offset == second_at
        ));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = leading_archives_end(&bytes);
            let _ = contents(&bytes);
        }

        #[test]
        fn mutated_archives_never_panic(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)
        ) {
            let mut bytes = sample_archive();
            for (position, value) in flips {
                let len = bytes.len();
                bytes[position % len] = value;
            }
            let _ = leading_archives_end(&bytes);
            let _ = contents(&bytes);
        }
    }
}
