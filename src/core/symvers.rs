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

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::core::abi::Export;

/// Real lines are 50–120 bytes; dividing the file size by this over-reserves the table a
/// little instead of growing it several times.
const TYPICAL_MIN_LINE_LEN: usize = 48;

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
#[derive(Debug, Clone, Default)]
pub struct KernelSymvers {
    entries: HashSet<StoredEntry>,
    /// Interned MODULE column values; most files have a few hundred to a few thousand.
    modules: Vec<Box<str>>,
    vmlinux_module: Option<u32>,
    duplicates: Vec<DuplicateExport>,
}

impl KernelSymvers {
    /// Parses the whole file. Blank lines and a CR before the LF are accepted; anything else
    /// that does not fit one of the layouts fails with the line number.
    pub fn parse(bytes: &[u8]) -> Result<Self, SymversError> {
        let text = std::str::from_utf8(bytes).map_err(|err| SymversError {
            line: line_number_at(bytes, err.valid_up_to()),
            reason: MalformedLine::NotUtf8,
        })?;
        let mut builder = Builder::with_capacity(text.len() / TYPICAL_MIN_LINE_LEN);
        for (index, raw_line) in split_at_byte(text, b'\n').enumerate() {
            let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
            if line.trim().is_empty() {
                continue;
            }
            let number = index + 1;
            let fields = parse_line(line).map_err(|reason| SymversError {
                line: number,
                reason,
            })?;
            builder.add(fields, number);
        }
        Ok(builder.finish())
    }

    pub fn get(&self, name: &str) -> Option<SymversEntry<'_>> {
        self.entries.get(name).map(|stored| self.view(stored))
    }

    /// All exports, in no particular order (sort if the order is visible to users).
    pub fn iter(&self) -> impl Iterator<Item = SymversEntry<'_>> {
        self.entries.iter().map(|stored| self.view(stored))
    }

    /// Exports of the kernel image itself, the only ones `depmod -E` reads. In no particular
    /// order.
    pub fn vmlinux_exports(&self) -> impl Iterator<Item = &Export> {
        let vmlinux = self.vmlinux_module;
        self.entries
            .iter()
            .filter(move |stored| Some(stored.module) == vmlinux)
            .map(|stored| &stored.export)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Lines dropped because their symbol was already exported (see the module docs).
    pub fn duplicates(&self) -> &[DuplicateExport] {
        &self.duplicates
    }

    fn view<'a>(&'a self, stored: &'a StoredEntry) -> SymversEntry<'a> {
        SymversEntry {
            export: &stored.export,
            module: &self.modules[stored.module as usize],
            line: stored.line as usize,
        }
    }
}

/// Hashed and compared by symbol name only, so the set can be searched with a `&str` and
/// each name is stored once.
#[derive(Debug, Clone)]
struct StoredEntry {
    export: Export,
    module: u32,
    line: u32,
}

impl PartialEq for StoredEntry {
    fn eq(&self, other: &Self) -> bool {
        self.export.name == other.export.name
    }
}

impl Eq for StoredEntry {}

impl Hash for StoredEntry {
    // Must hash exactly like `str` for `Borrow<str>` lookups to work.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.export.name.as_str().hash(state);
    }
}

impl Borrow<str> for StoredEntry {
    fn borrow(&self) -> &str {
        &self.export.name
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

fn parse_line(line: &str) -> Result<LineFields<'_>, MalformedLine> {
    let mut fields = [""; 5];
    let mut count = 0;
    for field in split_at_byte(line, b'\t').take(fields.len()) {
        fields[count] = field;
        count += 1;
    }
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
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or_else(bad)?;
    if digits.is_empty() || digits.len() > 16 {
        return Err(bad());
    }
    let mut value: u64 = 0;
    for byte in digits.bytes() {
        let digit = char::from(byte).to_digit(16).ok_or_else(bad)?;
        value = (value << 4) | u64::from(digit);
    }
    u32::try_from(value).map_err(|_| MalformedLine::CrcTooWide {
        text: shorten(text),
    })
}

/// Keeps error messages one line long when a field is garbage.
fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 24;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Like `str::split(char)`, minus its per-field memchr/memcmp set-up, which dominated the
/// parse for fields this short. `separator` must be ASCII, so every cut is a char boundary.
fn split_at_byte(text: &str, separator: u8) -> impl Iterator<Item = &str> {
    debug_assert!(separator.is_ascii());
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.bytes().position(|byte| byte == separator) {
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

fn stored_entry(fields: &LineFields<'_>, module: u32, line: u32) -> StoredEntry {
    StoredEntry {
        export: Export {
            name: fields.symbol.to_owned(),
            crc: Some(fields.crc),
            gpl_only: fields.gpl_only,
            namespace: fields.namespace.map(str::to_owned),
        },
        module,
        line,
    }
}

fn line_number_at(bytes: &[u8], offset: usize) -> usize {
    1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count()
}

#[derive(Default)]
struct Builder<'a> {
    symvers: KernelSymvers,
    module_ids: HashMap<&'a str, u32>,
    /// Lines come grouped by module, so this skips most map lookups.
    last_module: Option<(&'a str, u32)>,
}

impl<'a> Builder<'a> {
    fn with_capacity(lines: usize) -> Self {
        let mut builder = Builder::default();
        builder.symvers.entries.reserve(lines);
        builder
    }

    fn add(&mut self, fields: LineFields<'a>, line: usize) {
        let module = self.intern_module(fields.module);
        // A file capped at 1 GiB cannot have 2^32 lines.
        let line = u32::try_from(line).unwrap_or(u32::MAX);
        if !self
            .symvers
            .entries
            .insert(stored_entry(&fields, module, line))
        {
            self.resolve_duplicate(&fields, module, line);
        }
    }

    /// Called when `fields.symbol` is already stored; the set still holds the older entry.
    fn resolve_duplicate(&mut self, fields: &LineFields<'a>, module: u32, line: u32) {
        let Some(old) = self.symvers.entries.get(fields.symbol) else {
            return;
        };
        let vmlinux = self.symvers.vmlinux_module;
        let new_wins = Some(module) == vmlinux && Some(old.module) != vmlinux;
        let (kept_line, ignored_line) = if new_wins {
            (line, old.line)
        } else {
            (old.line, line)
        };
        self.symvers.duplicates.push(DuplicateExport {
            name: fields.symbol.to_owned(),
            kept_line: kept_line as usize,
            ignored_line: ignored_line as usize,
        });
        if new_wins {
            self.symvers
                .entries
                .replace(stored_entry(fields, module, line));
        }
    }

    fn intern_module(&mut self, name: &'a str) -> u32 {
        if let Some((last, id)) = self.last_module
            && last == name
        {
            return id;
        }
        let modules = &mut self.symvers.modules;
        let id = *self.module_ids.entry(name).or_insert_with(|| {
            modules.push(name.into());
            u32::try_from(modules.len() - 1).unwrap_or(u32::MAX)
        });
        if name == VMLINUX {
            self.symvers.vmlinux_module = Some(id);
        }
        self.last_module = Some((name, id));
        id
    }

    fn finish(mut self) -> KernelSymvers {
        self.symvers.entries.shrink_to_fit();
        self.symvers.modules.shrink_to_fit();
        self.symvers.duplicates.sort_by_key(|dup| dup.ignored_line);
        self.symvers
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
}
