//! `Module.symvers` (and the decompressed `/boot/symvers-<krel>.gz`): the ABI a kernel offers
//! to modules, one exported symbol per line (docs/compat-rules.md, "Reading a kernel").
//!
//! Layouts, TAB-separated, told apart by where the `EXPORT_*` column sits:
//!
//! | kernels            | columns                                          |
//! |--------------------|--------------------------------------------------|
//! | 5.10+, all 6.x     | `CRC SYMBOL MODULE EXPORT_TYPE NAMESPACE`        |
//! | 5.4 – 5.9          | `CRC SYMBOL NAMESPACE MODULE EXPORT_TYPE`        |
//! | 3.x/4.x, RHEL 7/8  | `CRC SYMBOL MODULE EXPORT_TYPE`                  |
//! | 2.6                | `CRC SYMBOL MODULE`                              |
//!
//! Columns after the fifth are ignored, so a column appended by a future kernel does not make
//! every file unreadable.
//!
//! Duplicate symbol names do not occur in real files (a kernel build fails on "exported twice",
//! and none of the Debian 6.1/6.12 files has one). If a hand-merged file has them, the first
//! line is kept, except that a `vmlinux` line always beats a module line: the running kernel
//! refuses to load a module exporting a symbol vmlinux already exports, so the vmlinux CRC is
//! the one imports bind to. Every ignored line is listed by [`KernelSymvers::duplicates`].

use std::hash::BuildHasher;
use std::sync::OnceLock;

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

use crate::core::abi::Export;

/// Exports are built in chunks of this many lines, the first time one of their symbols is
/// looked up: a run that looks up a few dozen symbols allocates a few dozen chunks, not a slot
/// for each of the ~30,000 lines.
const EXPORT_CHUNK: usize = 64;

/// The MODULE column of symbols built into the kernel image.
pub const VMLINUX: &str = "vmlinux";

/// A line of a symvers file that cannot be read. The caller adds the file path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct SymversError {
    /// 1-based.
    pub line: usize,
    pub reason: MalformedLine,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedLine {
    #[error("not valid UTF-8")]
    NotUtf8,
    #[error("expected at least 3 TAB-separated fields (CRC, symbol, module), found {found}")]
    MissingFields { found: usize },
    #[error("CRC `{text}` is not 0x followed by 1 to 16 hex digits")]
    BadCrc { text: String },
    #[error("CRC `{text}` does not fit in 32 bits")]
    CrcTooWide { text: String },
    #[error("empty symbol name")]
    EmptySymbol,
    #[error("empty module field")]
    EmptyModule,
    #[error("no EXPORT_* type in field 4 or 5")]
    NoExportType,
}

/// One symvers line as seen through [`KernelSymvers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymversEntry<'a> {
    pub export: &'a Export,
    /// [`VMLINUX`] for built-ins, else the exporting module's build path without `.ko`
    /// (`drivers/net/mii`, or an absolute path for out-of-tree builds).
    pub module: &'a str,
    /// 1-based line in the file.
    pub line: usize,
}

impl SymversEntry<'_> {
    pub fn is_vmlinux(&self) -> bool {
        self.module == VMLINUX
    }
}

/// A symbol line that was dropped because the same name was already exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateExport {
    pub name: String,
    pub kept_line: usize,
    pub ignored_line: usize,
}

/// Every export listed in one kernel's symvers file, looked up by symbol name.
///
/// The whole file is checked line by line when it is parsed, but only indexed: where each
/// kept line starts, its symbol and its module. The rest of a line is read again, and an
/// [`Export`] built, the first time its symbol is looked up, so the cost beyond reading the
/// file grows with the symbols the offered modules need, not with the ~30,000 a kernel
/// exports.
#[derive(Debug, Clone, Default)]
pub struct KernelSymvers {
    text: Box<str>,
    /// The kept line of each exported symbol, in file order.
    lines: Vec<IndexedLine>,
    /// Positions in `lines`, hashed by symbol name.
    by_name: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Built on first lookup, a chunk of [`EXPORT_CHUNK`] entries of `lines` at a time.
    exports: Vec<OnceLock<Box<[OnceLock<Export>]>>>,
    /// Interned MODULE column values; most files have a few hundred to a few thousand.
    modules: Vec<Box<str>>,
    vmlinux_module: Option<u32>,
    duplicates: Vec<DuplicateExport>,
    /// See [`KernelSymvers::unread`].
    unread: bool,
}

/// Where one kept line is in the text. A file capped well below 4 GiB fits `u32`.
#[derive(Debug, Clone, Copy)]
struct IndexedLine {
    /// Byte offset of the line's first byte (its CRC).
    start: u32,
    symbol: Span,
    module: u32,
    /// 1-based line number.
    line: u32,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn of(field: &str, text: &str) -> Self {
        let start = field.as_ptr() as usize - text.as_ptr() as usize;
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            len: u32::try_from(field.len()).unwrap_or(0),
        }
    }

    fn in_text(self, text: &str) -> &str {
        let start = self.start as usize;
        text.get(start..start + self.len as usize)
            .unwrap_or_default()
    }
}

impl KernelSymvers {
    /// Parses the whole file. Blank lines and a CR before the LF are accepted; anything else
    /// that does not fit one of the layouts fails with the line number.
    pub fn parse(bytes: &[u8]) -> Result<Self, SymversError> {
        Self::parse_owned(bytes.to_vec())
    }

    /// [`KernelSymvers::parse`], keeping `bytes` as the text the index points into.
    pub fn parse_owned(bytes: Vec<u8>) -> Result<Self, SymversError> {
        let text = String::from_utf8(bytes).map_err(|err| SymversError {
            line: line_number_at(err.as_bytes(), err.utf8_error().valid_up_to()),
            reason: MalformedLine::NotUtf8,
        })?;
        let text = text.into_boxed_str();
        // Counting lines first sizes the tables once, and exactly (a vector count, far
        // cheaper than growing a table of 30,000 entries).
        let line_count = memchr::memchr_iter(b'\n', text.as_bytes()).count() + 1;
        let mut builder = Builder::with_capacity(&text, line_count);
        for (index, (start, raw_line)) in lines_of(&text).enumerate() {
            let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
            if is_blank(line) {
                continue;
            }
            let number = index + 1;
            let (symbol, module) = check_line(line).map_err(|reason| SymversError {
                line: number,
                reason,
            })?;
            builder.add(start, symbol, module, number);
        }
        let (lines, by_name, hasher, modules, vmlinux_module, duplicates) = builder.finish();
        let exports = std::iter::repeat_with(OnceLock::new)
            .take(lines.len().div_ceil(EXPORT_CHUNK))
            .collect();
        Ok(KernelSymvers {
            text,
            lines,
            by_name,
            hasher,
            exports,
            modules,
            vmlinux_module,
            duplicates,
            unread: false,
        })
    }

    /// The symvers of a kernel the run can offer no build but its own, left unread: no
    /// decision there looks at the kernel's exports. It lists nothing, and looking a symbol
    /// up in it is a bug, which the debug builds the tests run catch.
    pub fn unread() -> Self {
        KernelSymvers {
            unread: true,
            ..KernelSymvers::default()
        }
    }

    pub fn is_unread(&self) -> bool {
        self.unread
    }

    pub fn get(&self, name: &str) -> Option<SymversEntry<'_>> {
        debug_assert!(!self.unread, "{name} looked up in a symvers left unread");
        let hash = self.hasher.hash_one(name);
        let &position = self.by_name.find(hash, |&position| {
            self.lines[position as usize].symbol.in_text(&self.text) == name
        })?;
        Some(self.view(position as usize))
    }

    /// All exports, in file order.
    pub fn iter(&self) -> impl Iterator<Item = SymversEntry<'_>> {
        (0..self.lines.len()).map(|position| self.view(position))
    }

    /// Exports of the kernel image itself, the only ones `depmod -E` reads, in file order.
    pub fn vmlinux_exports(&self) -> impl Iterator<Item = &Export> {
        let vmlinux = self.vmlinux_module;
        (0..self.lines.len())
            .filter(move |&position| Some(self.lines[position].module) == vmlinux)
            .map(|position| self.export(position))
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Lines dropped because their symbol was already exported (see the module docs).
    pub fn duplicates(&self) -> &[DuplicateExport] {
        &self.duplicates
    }

    fn export(&self, position: usize) -> &Export {
        let chunk = self.exports[position / EXPORT_CHUNK].get_or_init(|| {
            std::iter::repeat_with(OnceLock::new)
                .take(EXPORT_CHUNK)
                .collect()
        });
        chunk[position % EXPORT_CHUNK].get_or_init(|| self.build_export(&self.lines[position]))
    }

    /// The line read again, now for all of its fields. It was checked when the file was
    /// parsed; should it somehow not read, the export keeps its name and nothing else.
    fn build_export(&self, indexed: &IndexedLine) -> Export {
        let name = indexed.symbol.in_text(&self.text);
        let rest = self.text.get(indexed.start as usize..).unwrap_or_default();
        let line = split_at_byte(rest, b'\n').next().unwrap_or_default();
        let line = line.strip_suffix('\r').unwrap_or(line);
        match parse_line(line) {
            Ok(fields) => Export {
                name: name.to_owned(),
                crc: Some(fields.crc),
                gpl_only: fields.gpl_only,
                namespace: fields.namespace.map(str::to_owned),
            },
            Err(_) => Export {
                name: name.to_owned(),
                crc: None,
                gpl_only: false,
                namespace: None,
            },
        }
    }

    fn view(&self, position: usize) -> SymversEntry<'_> {
        let line = &self.lines[position];
        SymversEntry {
            export: self.export(position),
            module: &self.modules[line.module as usize],
            line: line.line as usize,
        }
    }
}

/// Each line with the byte offset it starts at; like `str::split('\n')`, an empty text is one
/// empty line and a final LF is followed by one.
fn lines_of(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = 0;
    split_at_byte(text, b'\n').map(move |line| {
        let at = start;
        start += line.len() + 1;
        (at, line)
    })
}

/// Whether a line is empty or whitespace. Real lines start with their CRC's `0`, which
/// settles it without looking further.
fn is_blank(line: &str) -> bool {
    match line.as_bytes().first() {
        None => true,
        Some(b'0') => false,
        Some(_) => line.trim().is_empty(),
    }
}

/// The columns of one line, borrowed from the file.
#[derive(Debug, PartialEq, Eq)]
struct LineFields<'a> {
    crc: u32,
    symbol: &'a str,
    module: &'a str,
    gpl_only: bool,
    namespace: Option<&'a str>,
}

/// Up to the first five TAB-separated fields of `line` and how many there are; later
/// columns are ignored.
fn split_fields(line: &str) -> ([&str; 5], usize) {
    let mut tabs = [0usize; 5];
    let found = find_tabs(line.as_bytes(), &mut tabs);
    let mut fields = [""; 5];
    let mut field_start = 0;
    for (field, &tab) in fields.iter_mut().zip(&tabs[..found.min(4)]) {
        // TAB is ASCII, so every cut is on a char boundary.
        *field = line.get(field_start..tab).unwrap_or_default();
        field_start = tab + 1;
    }
    let count = found.min(4) + 1;
    fields[count - 1] = match found {
        5 => line.get(field_start..tabs[4]),
        _ => line.get(field_start..),
    }
    .unwrap_or_default();
    (fields, count)
}

const HIGH_BITS: u64 = u64::from_le_bytes([0x80; 8]);
const TABS: u64 = u64::from_le_bytes([b'\t'; 8]);

/// Positions of the first TABs of `bytes`, as many as `tabs` holds; returns how many were
/// found. Eight bytes at a time (a SWAR compare): a line's fields are a few to a few dozen
/// bytes, too short for a vector search to pay for its set-up, and a byte loop spent most
/// of the parse on its branch.
fn find_tabs(bytes: &[u8], tabs: &mut [usize]) -> usize {
    let mut found = 0;
    let mut words = bytes.chunks_exact(8);
    for (index, word) in words.by_ref().enumerate() {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        if record_tabs(tab_bytes(word), index * 8, tabs, &mut found) {
            return found;
        }
    }
    let base = bytes.len() - words.remainder().len();
    for (offset, &byte) in words.remainder().iter().enumerate() {
        if byte == b'\t' && found < tabs.len() {
            tabs[found] = base + offset;
            found += 1;
        }
    }
    found
}

/// Adds the TABs of one word (`mask` from [`tab_bytes`], the word starting at byte `base`);
/// returns whether `tabs` is full.
fn record_tabs(mut mask: u64, base: usize, tabs: &mut [usize], found: &mut usize) -> bool {
    while mask != 0 && *found < tabs.len() {
        tabs[*found] = base + (mask.trailing_zeros() / 8) as usize;
        *found += 1;
        mask &= mask - 1;
    }
    *found == tabs.len()
}

/// The high bit of each byte of `word` that is a TAB, and no other bit.
fn tab_bytes(word: u64) -> u64 {
    let x = word ^ TABS;
    // A byte's high bit ends up set when the byte is not zero: its low seven bits plus 0x7f
    // carry into it, or it was set already. No carry crosses into the next byte.
    let nonzero = ((x & !HIGH_BITS).wrapping_add(!HIGH_BITS) | x) & HIGH_BITS;
    !nonzero & HIGH_BITS
}

/// What indexing needs of a line, its symbol and module, with the same checks and errors as
/// [`parse_line`]. It stops looking at the third TAB in the usual layouts, where the export
/// type is known to start: its kind and the namespace after it are read on lookup.
fn check_line(line: &str) -> Result<(&str, &str), MalformedLine> {
    let mut tabs = [0usize; 3];
    let found = find_tabs(line.as_bytes(), &mut tabs);
    if found < 2 {
        return Err(MalformedLine::MissingFields { found: found + 1 });
    }
    // TAB is ASCII, so every cut is on a char boundary.
    let field = |range: std::ops::Range<usize>| line.get(range).unwrap_or_default();
    parse_crc(field(0..tabs[0]))?;
    let symbol = field(tabs[0] + 1..tabs[1]);
    if symbol.is_empty() {
        return Err(MalformedLine::EmptySymbol);
    }
    let module = if found == 2 {
        // Three fields: the 2.6 layout.
        field(tabs[1] + 1..line.len())
    } else {
        // "EXPORT_" has no TAB, so the rest of the line starts with it exactly when the
        // field does.
        let after_third = field(tabs[2] + 1..line.len());
        if after_third.starts_with("EXPORT_") {
            field(tabs[1] + 1..tabs[2])
        } else {
            // CRC SYMBOL NAMESPACE MODULE EXPORT_TYPE (5.4 to 5.9).
            match memchr::memchr(b'\t', after_third.as_bytes()) {
                Some(at)
                    if after_third
                        .get(at + 1..)
                        .is_some_and(|f| f.starts_with("EXPORT_")) =>
                {
                    after_third.get(..at).unwrap_or_default()
                }
                _ => return Err(MalformedLine::NoExportType),
            }
        }
    };
    if module.is_empty() {
        return Err(MalformedLine::EmptyModule);
    }
    Ok((symbol, module))
}

#[inline]
fn parse_line(line: &str) -> Result<LineFields<'_>, MalformedLine> {
    let (fields, count) = split_fields(line);
    if count < 3 {
        return Err(MalformedLine::MissingFields { found: count });
    }
    let crc = parse_crc(fields[0])?;
    let symbol = fields[1];
    if symbol.is_empty() {
        return Err(MalformedLine::EmptySymbol);
    }
    let (module, export_type, namespace) = locate_columns(&fields[..count])?;
    if module.is_empty() {
        return Err(MalformedLine::EmptyModule);
    }
    Ok(LineFields {
        crc,
        symbol,
        module,
        gpl_only: export_type.is_some_and(|kind| kind.contains("_GPL")),
        namespace: namespace.filter(|ns| !ns.is_empty()),
    })
}

/// Returns (MODULE, EXPORT_TYPE, NAMESPACE) for whichever layout the line uses.
fn locate_columns<'a>(
    fields: &[&'a str],
) -> Result<(&'a str, Option<&'a str>, Option<&'a str>), MalformedLine> {
    let is_export_type = |index: usize| fields.get(index).is_some_and(|f| f.starts_with("EXPORT_"));
    if is_export_type(3) {
        Ok((fields[2], Some(fields[3]), fields.get(4).copied()))
    } else if is_export_type(4) {
        Ok((fields[3], Some(fields[4]), Some(fields[2])))
    } else if fields.len() == 3 {
        // 2.6 layout: no export type, so nothing says the symbol is GPL-only.
        Ok((fields[2], None, None))
    } else {
        Err(MalformedLine::NoExportType)
    }
}

/// `0x` plus hex. modpost writes 8 digits; a 64-bit-wide value is accepted when its upper half
/// is zero.
fn parse_crc(text: &str) -> Result<u32, MalformedLine> {
    let bad = || MalformedLine::BadCrc {
        text: shorten(text),
    };
    let digits = match text.as_bytes() {
        [b'0', b'x' | b'X', digits @ ..] => digits,
        _ => return Err(bad()),
    };
    if digits.is_empty() || digits.len() > 16 {
        return Err(bad());
    }
    let mut value: u64 = 0;
    for &byte in digits {
        // A table instead of a branch per digit kind: CRC digits are random, so that branch
        // was mispredicted on most digits.
        let digit = HEX_VALUE[usize::from(byte)];
        if digit == NOT_HEX {
            return Err(bad());
        }
        value = (value << 4) | u64::from(digit);
    }
    u32::try_from(value).map_err(|_| MalformedLine::CrcTooWide {
        text: shorten(text),
    })
}

const NOT_HEX: u8 = 0xff;

/// The value of each hex digit, [`NOT_HEX`] for every other byte.
const HEX_VALUE: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = match byte as u8 {
            digit @ b'0'..=b'9' => digit - b'0',
            digit @ b'a'..=b'f' => digit - b'a' + 10,
            digit @ b'A'..=b'F' => digit - b'A' + 10,
            _ => NOT_HEX,
        };
        byte += 1;
    }
    table
};

/// Keeps error messages one line long when a field is garbage.
fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 24;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Like `str::split(char)`, minus its per-field set-up; the search itself is memchr's, a
/// vector compare over a line's worth of bytes. `separator` must be ASCII, so every cut is a
/// char boundary.
fn split_at_byte(text: &str, separator: u8) -> impl Iterator<Item = &str> {
    debug_assert!(separator.is_ascii());
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match memchr::memchr(separator, current.as_bytes()) {
            Some(at) => {
                rest = Some(&current[at + 1..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

fn line_number_at(bytes: &[u8], offset: usize) -> usize {
    1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count()
}

struct Builder<'a> {
    text: &'a str,
    lines: Vec<IndexedLine>,
    by_name: HashTable<u32>,
    hasher: DefaultHashBuilder,
    modules: Vec<Box<str>>,
    module_ids: HashMap<&'a str, u32>,
    vmlinux_module: Option<u32>,
    duplicates: Vec<DuplicateExport>,
    /// Lines come grouped by module, so this skips most map lookups.
    last_module: Option<(&'a str, u32)>,
}

type Built = (
    Vec<IndexedLine>,
    HashTable<u32>,
    DefaultHashBuilder,
    Vec<Box<str>>,
    Option<u32>,
    Vec<DuplicateExport>,
);

impl<'a> Builder<'a> {
    fn with_capacity(text: &'a str, lines: usize) -> Self {
        Builder {
            text,
            lines: Vec::with_capacity(lines),
            by_name: HashTable::with_capacity(lines),
            hasher: DefaultHashBuilder::default(),
            modules: Vec::new(),
            module_ids: HashMap::new(),
            vmlinux_module: None,
            duplicates: Vec::new(),
            last_module: None,
        }
    }

    /// Adds the line starting at byte `start`, line number `line`.
    fn add(&mut self, start: usize, symbol: &'a str, module: &'a str, line: usize) {
        let module = self.intern_module(module);
        // A file capped at 1 GiB cannot have 2^32 lines.
        let line = u32::try_from(line).unwrap_or(u32::MAX);
        let indexed = IndexedLine {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            symbol: Span::of(symbol, self.text),
            module,
            line,
        };
        let hash = self.hasher.hash_one(symbol);
        let (lines, text, hasher) = (&self.lines, self.text, &self.hasher);
        let found = self.by_name.entry(
            hash,
            |&position| lines[position as usize].symbol.in_text(text) == symbol,
            |&position| hasher.hash_one(lines[position as usize].symbol.in_text(text)),
        );
        match found {
            Entry::Occupied(old) => {
                let old = *old.get() as usize;
                self.resolve_duplicate(old, indexed, symbol);
            }
            Entry::Vacant(vacant) => {
                vacant.insert(u32::try_from(self.lines.len()).unwrap_or(u32::MAX));
                self.lines.push(indexed);
            }
        }
    }

    /// Called when `symbol` is already stored at `old`.
    fn resolve_duplicate(&mut self, old: usize, new: IndexedLine, symbol: &str) {
        let kept = self.lines[old];
        let vmlinux = self.vmlinux_module;
        let new_wins = Some(new.module) == vmlinux && Some(kept.module) != vmlinux;
        let (kept_line, ignored_line) = if new_wins {
            (new.line, kept.line)
        } else {
            (kept.line, new.line)
        };
        self.duplicates.push(DuplicateExport {
            name: symbol.to_owned(),
            kept_line: kept_line as usize,
            ignored_line: ignored_line as usize,
        });
        if new_wins {
            self.lines[old] = new;
        }
    }

    fn intern_module(&mut self, name: &'a str) -> u32 {
        if let Some((last, id)) = self.last_module
            && last == name
        {
            return id;
        }
        let modules = &mut self.modules;
        let id = *self.module_ids.entry(name).or_insert_with(|| {
            modules.push(name.into());
            u32::try_from(modules.len() - 1).unwrap_or(u32::MAX)
        });
        if name == VMLINUX {
            self.vmlinux_module = Some(id);
        }
        self.last_module = Some((name, id));
        id
    }

    fn finish(mut self) -> Built {
        self.lines.shrink_to_fit();
        self.modules.shrink_to_fit();
        self.duplicates.sort_by_key(|dup| dup.ignored_line);
        (
            self.lines,
            self.by_name,
            self.hasher,
            self.modules,
            self.vmlinux_module,
            self.duplicates,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> KernelSymvers {
        KernelSymvers::parse(text.as_bytes()).expect("valid symvers")
    }

    fn parse_err(text: &str) -> SymversError {
        KernelSymvers::parse(text.as_bytes()).expect_err("malformed symvers")
    }

    #[test]
    fn current_layout_with_empty_namespace() {
        let symvers = parse("0xbce1a965\tmodule_layout\tvmlinux\tEXPORT_SYMBOL\t\n");
        let entry = symvers.get("module_layout").unwrap();
        assert_eq!(
            entry.export,
            &Export {
                name: "module_layout".into(),
                crc: Some(0xbce1a965),
                gpl_only: false,
                namespace: None,
            }
        );
        assert_eq!(entry.module, "vmlinux");
        assert!(entry.is_vmlinux());
        assert_eq!(entry.line, 1);
    }

    #[test]
    fn current_layout_with_namespace() {
        let symvers = parse(
            "0x0a6884f3\tiwl_opmode_register\tdrivers/net/wireless/intel/iwlwifi/iwlwifi\t\
             EXPORT_SYMBOL_GPL\tIWLWIFI\n",
        );
        let entry = symvers.get("iwl_opmode_register").unwrap();
        assert_eq!(entry.module, "drivers/net/wireless/intel/iwlwifi/iwlwifi");
        assert!(entry.export.gpl_only);
        assert_eq!(entry.export.namespace.as_deref(), Some("IWLWIFI"));
        assert!(!entry.is_vmlinux());
    }

    #[test]
    fn namespace_in_the_middle_layout() {
        let symvers = parse(
            "0x12345678\tusb_stor_probe1\tUSB_STORAGE\tdrivers/usb/storage/usb-storage\t\
             EXPORT_SYMBOL_GPL\n\
             0x0000abcd\tprintk\t\tvmlinux\tEXPORT_SYMBOL\n",
        );
        let probe = symvers.get("usb_stor_probe1").unwrap();
        assert_eq!(probe.module, "drivers/usb/storage/usb-storage");
        assert_eq!(probe.export.namespace.as_deref(), Some("USB_STORAGE"));
        assert!(probe.export.gpl_only);
        let printk = symvers.get("printk").unwrap();
        assert_eq!(printk.module, "vmlinux");
        assert_eq!(printk.export.namespace, None);
        assert_eq!(printk.export.crc, Some(0xabcd));
    }

    #[test]
    fn four_column_layout() {
        let symvers = parse(
            "0xb352177e\tfind_first_bit\tvmlinux\tEXPORT_SYMBOL\n\
             0x11111111\tgpl_thing\tvmlinux\tEXPORT_SYMBOL_GPL\n\
             0x22222222\tfuture\tvmlinux\tEXPORT_SYMBOL_GPL_FUTURE\n\
             0x33333333\tunused\tvmlinux\tEXPORT_UNUSED_SYMBOL\n\
             0x44444444\tunused_gpl\tfs/ext4/ext4\tEXPORT_UNUSED_SYMBOL_GPL\n",
        );
        let gpl = |name: &str| symvers.get(name).unwrap().export.gpl_only;
        assert!(!gpl("find_first_bit"));
        assert!(gpl("gpl_thing"));
        assert!(gpl("future"));
        assert!(!gpl("unused"));
        assert!(gpl("unused_gpl"));
        assert_eq!(symvers.get("unused_gpl").unwrap().module, "fs/ext4/ext4");
        assert_eq!(
            symvers.get("find_first_bit").unwrap().export.namespace,
            None
        );
    }

    #[test]
    fn ancient_three_column_layout() {
        let symvers = parse("0x0000beef\tstruct_module\tvmlinux\n");
        let entry = symvers.get("struct_module").unwrap();
        assert_eq!(entry.export.crc, Some(0xbeef));
        assert!(!entry.export.gpl_only);
        assert!(entry.is_vmlinux());
    }

    #[test]
    fn zero_crc_is_kept_as_a_value() {
        let symvers = parse("0x00000000\tnoversions\tvmlinux\tEXPORT_SYMBOL\t\n");
        assert_eq!(symvers.get("noversions").unwrap().export.crc, Some(0));
    }

    #[test]
    fn sixty_four_bit_wide_crc_with_zero_upper_half() {
        let symvers = parse("0x00000000deadbeef\tsym\tvmlinux\tEXPORT_SYMBOL\n");
        assert_eq!(symvers.get("sym").unwrap().export.crc, Some(0xdeadbeef));
        let symvers = parse("0XDEADBEEF\tsym\tvmlinux\tEXPORT_SYMBOL\n");
        assert_eq!(symvers.get("sym").unwrap().export.crc, Some(0xdeadbeef));
    }

    #[test]
    fn extra_trailing_columns_are_ignored() {
        let symvers = parse("0x00000001\tsym\tvmlinux\tEXPORT_SYMBOL\tNS\tsomething-new\n");
        assert_eq!(
            symvers.get("sym").unwrap().export.namespace.as_deref(),
            Some("NS")
        );
    }

    #[test]
    fn blank_lines_crlf_and_missing_final_newline() {
        let symvers = parse(
            "\n0x00000001\ta\tvmlinux\tEXPORT_SYMBOL\t\r\n\r\n  \n\
             0x00000002\tb\tvmlinux\tEXPORT_SYMBOL_GPL\tNS\r\n\
             0x00000003\tc\tvmlinux\tEXPORT_SYMBOL\t",
        );
        assert_eq!(symvers.len(), 3);
        assert_eq!(symvers.get("a").unwrap().line, 2);
        assert_eq!(
            symvers.get("b").unwrap().export.namespace.as_deref(),
            Some("NS")
        );
        assert_eq!(symvers.get("c").unwrap().line, 6);
    }

    #[test]
    fn empty_input_is_an_empty_table() {
        assert!(parse("").is_empty());
        assert!(parse("\n\n").is_empty());
    }

    #[test]
    fn vmlinux_exports_leave_out_module_exports() {
        let symvers = parse(
            "0x00000001\tkfree\tvmlinux\tEXPORT_SYMBOL\t\n\
             0x00000002\tmii_link_ok\tdrivers/net/mii\tEXPORT_SYMBOL\t\n\
             0x00000003\tmsleep\tvmlinux\tEXPORT_SYMBOL\t\n",
        );
        let mut names: Vec<_> = symvers.vmlinux_exports().map(|e| e.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["kfree", "msleep"]);
        assert_eq!(symvers.iter().count(), 3);
    }

    #[test]
    fn no_vmlinux_lines_means_no_vmlinux_exports() {
        let symvers = parse("0x00000002\tmii_link_ok\tdrivers/net/mii\tEXPORT_SYMBOL\t\n");
        assert_eq!(symvers.vmlinux_exports().count(), 0);
    }

    #[test]
    fn malformed_lines_name_their_line_number() {
        let good = "0x00000001\tok\tvmlinux\tEXPORT_SYMBOL\t\n";
        let cases: [(&str, MalformedLine); 9] = [
            (
                "zz000001\tsym\tvmlinux\tEXPORT_SYMBOL\t",
                MalformedLine::BadCrc {
                    text: "zz000001".into(),
                },
            ),
            (
                "0x\tsym\tvmlinux\tEXPORT_SYMBOL\t",
                MalformedLine::BadCrc { text: "0x".into() },
            ),
            (
                "0x+1\tsym\tvmlinux\tEXPORT_SYMBOL\t",
                MalformedLine::BadCrc {
                    text: "0x+1".into(),
                },
            ),
            (
                "0x12345678901234567\tsym\tvmlinux\tEXPORT_SYMBOL\t",
                MalformedLine::BadCrc {
                    text: "0x12345678901234567".into(),
                },
            ),
            (
                "0x100000000\tsym\tvmlinux\tEXPORT_SYMBOL\t",
                MalformedLine::CrcTooWide {
                    text: "0x100000000".into(),
                },
            ),
            ("0x00000001\tsym", MalformedLine::MissingFields { found: 2 }),
            (
                "0x00000001\t\tvmlinux\tEXPORT_SYMBOL\t",
                MalformedLine::EmptySymbol,
            ),
            (
                "0x00000001\tsym\t\tEXPORT_SYMBOL\t",
                MalformedLine::EmptyModule,
            ),
            (
                "0x00000001\tsym\tvmlinux\tSYMBOL\t",
                MalformedLine::NoExportType,
            ),
        ];
        for (bad_line, reason) in cases {
            let text = format!("{good}\n{bad_line}\n{good}");
            assert_eq!(
                parse_err(&text),
                SymversError { line: 3, reason },
                "input line: {bad_line:?}"
            );
        }
    }

    #[test]
    fn error_message_is_short_and_has_the_line() {
        let err = parse_err("0x00000001\tsym\n");
        assert_eq!(
            err.to_string(),
            "line 1: expected at least 3 TAB-separated fields (CRC, symbol, module), found 2"
        );
        let err = parse_err(&format!("0x{}\tsym\tvmlinux\n", "9".repeat(40)));
        assert_eq!(
            err.to_string(),
            "line 1: CRC `0x9999999999999999999999...` is not 0x followed by 1 to 16 hex digits"
        );
    }

    #[test]
    fn non_utf8_line_is_reported_where_it_is() {
        let mut bytes = b"0x00000001\ta\tvmlinux\tEXPORT_SYMBOL\t\n\n".to_vec();
        bytes.extend_from_slice(b"0x00000002\tb\xff\tvmlinux\tEXPORT_SYMBOL\t\n");
        let err = KernelSymvers::parse(&bytes).unwrap_err();
        assert_eq!(
            err,
            SymversError {
                line: 3,
                reason: MalformedLine::NotUtf8
            }
        );
    }

    #[test]
    fn duplicate_keeps_first_line() {
        let symvers = parse(
            "0x00000001\tdup\tdrivers/a\tEXPORT_SYMBOL\t\n\
             0x00000002\tdup\tdrivers/b\tEXPORT_SYMBOL\t\n",
        );
        let entry = symvers.get("dup").unwrap();
        assert_eq!((entry.module, entry.export.crc), ("drivers/a", Some(1)));
        assert_eq!(
            symvers.duplicates(),
            [DuplicateExport {
                name: "dup".into(),
                kept_line: 1,
                ignored_line: 2
            }]
        );
        assert_eq!(symvers.len(), 1);
    }

    #[test]
    fn duplicate_prefers_vmlinux_over_an_earlier_module() {
        let symvers = parse(
            "0x00000001\tdup\tdrivers/a\tEXPORT_SYMBOL\t\n\
             0x00000002\tdup\tvmlinux\tEXPORT_SYMBOL_GPL\t\n\
             0x00000003\tdup\tdrivers/c\tEXPORT_SYMBOL\t\n",
        );
        let entry = symvers.get("dup").unwrap();
        assert_eq!((entry.module, entry.export.crc), ("vmlinux", Some(2)));
        assert!(entry.export.gpl_only);
        let lines: Vec<_> = symvers
            .duplicates()
            .iter()
            .map(|d| (d.kept_line, d.ignored_line))
            .collect();
        assert_eq!(lines, [(2, 1), (2, 3)]);
        assert_eq!(symvers.vmlinux_exports().count(), 1);
    }

    #[test]
    fn long_field_is_shortened_on_char_boundary() {
        let text = "é".repeat(30);
        let short = shorten(&text);
        assert_eq!(short.chars().count(), 24 + 3);
    }

    #[test]
    fn tabs_are_found_in_every_position_and_length() {
        for len in 0..40 {
            for tab_at in 0..len {
                let mut line = vec![b'a'; len];
                line[tab_at] = b'\t';
                let mut tabs = [0; 5];
                assert_eq!(find_tabs(&line, &mut tabs), 1, "len {len}, tab at {tab_at}");
                assert_eq!(tabs[0], tab_at);
            }
        }
        let line = b"\t\x89\x09\x08\x0a\t\t\t\t\t\t";
        let mut tabs = [0; 5];
        assert_eq!(find_tabs(line, &mut tabs), 5);
        assert_eq!(tabs, [0, 2, 5, 6, 7]);
    }

    #[test]
    fn fields_past_the_fifth_are_cut_off() {
        let (fields, count) = split_fields("a\tb\tc\td\te\tf\tg");
        assert_eq!((fields, count), (["a", "b", "c", "d", "e"], 5));
        let (fields, count) = split_fields("a\tb\tc\td\t");
        assert_eq!((fields, count), (["a", "b", "c", "d", ""], 5));
        let (fields, count) = split_fields("a\tb");
        assert_eq!((fields, count), (["a", "b", "", "", ""], 2));
    }

    /// Every line made of these fields, up to six of them: indexing must accept and refuse
    /// exactly what the full parse does, with the same reason.
    #[test]
    fn indexing_checks_a_line_as_the_full_parse_does() {
        let pieces = [
            "",
            "0x1",
            "0xzz",
            "sym",
            "vmlinux",
            "EXPORT_SYMBOL",
            "EXPORT_SYMBOL_GPL",
            "EXPORT_",
            "EXPORT",
            "NS",
            "0x100000000",
        ];
        let mut lines = vec![String::new()];
        for _ in 0..5 {
            let mut longer = Vec::new();
            for line in &lines {
                for piece in pieces {
                    longer.push(if line.is_empty() {
                        piece.to_owned()
                    } else {
                        format!("{line}\t{piece}")
                    });
                }
            }
            lines.extend(longer);
            lines.dedup();
        }
        for line in lines
            .iter()
            .chain([&"0x1\tsym\tNS\tmod\tEXPORT_SYMBOL\tx".to_owned()])
        {
            let full = parse_line(line).map(|fields| (fields.symbol, fields.module));
            assert_eq!(check_line(line), full, "line {line:?}");
        }
    }
}
