//! Reads what compatibility needs from a kernel module's ELF image: modinfo, the modversions
//! table, undefined symbols and exports (docs/compat-rules.md, "Reading a module"). Pure: it
//! gets bytes, not paths.
//!
//! goblin parses the headers, symbol table and string tables; every section's data is sliced
//! here, after checking that all sections lie inside the ELF part of the file.

use std::borrow::Cow;

use hashbrown::HashMap;

use goblin::container::Ctx;
use goblin::elf::header::{
    EI_CLASS, ELFCLASS64, EM_PPC64, EM_SPARC, EM_SPARC32PLUS, EM_SPARCV9, ET_REL, Header,
};
use goblin::elf::section_header::{
    SHF_ALLOC, SHN_ABS, SHN_LORESERVE, SHN_UNDEF, SHT_NOBITS, SHT_NULL, SHT_SYMTAB,
};
use goblin::elf::sym::STB_WEAK;
use goblin::elf::{Elf, SectionHeader};
use thiserror::Error;

use super::abi::{Export, Import, VersionEntry, VersionTable, VersionsKind};
use super::modinfo::ModInfo;
use super::signature::{SignatureError, TRAILER_LEN, split_signature_tail};

/// Size of one `__versions` record, whatever the target's word size.
pub const VERSION_RECORD_LEN: usize = 64;

/// sparc register declarations show up as undefined symbols but are not imports.
const STT_SPARC_REGISTER: u8 = 13;

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const ELF32_SHDR_LEN: u16 = 40;
const ELF64_SHDR_LEN: u16 = 64;

const KSYMTAB_PREFIX: &str = "__ksymtab_";
const CRC_PREFIX: &str = "__crc_";
const NAMESPACE_PREFIX: &str = "__kstrtabns_";

const BASIC_VERSIONS: &str = "__versions";
const EXT_CRCS: &str = "__version_ext_crcs";
const EXT_NAMES: &str = "__version_ext_names";

/// The module's own `struct module`, which the loader takes over as it is.
const THIS_MODULE: &str = ".gnu.linkonce.this_module";

/// Everything the compatibility decision needs to know about one module file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleFacts {
    pub name: Option<String>,
    pub vermagic: Option<String>,
    pub license: Option<String>,
    pub import_ns: Vec<String>,
    /// `None`: no modversions at all (neither `__versions` nor the extended pair).
    pub versions: Option<VersionTable>,
    pub imports: Vec<Import>,
    pub exports: Vec<Export>,
    /// Size of `.gnu.linkonce.this_module`, the `struct module` the module was built with; the
    /// loader refuses a module whose size differs from its own. `None` when there is none.
    pub this_module_size: Option<u64>,
    pub machine: u16,
}

#[derive(Debug, Error)]
pub enum ElfError {
    #[error("bad module signature trailer")]
    Signature(#[from] SignatureError),
    #[error("not an ELF file")]
    NotElf,
    #[error("not a relocatable object (ELF type {0}), so not a kernel module")]
    NotRelocatable(u16),
    #[error("section header table is missing or malformed: {0}")]
    SectionTable(&'static str),
    #[error("malformed ELF")]
    Malformed(#[source] goblin::error::Error),
    #[error("section {index} ({name}) lies outside the file")]
    SectionOutOfBounds { index: usize, name: String },
    #[error("__versions is {size} bytes, not a multiple of 64")]
    VersionsSize { size: usize },
    #[error("__versions record {index} has a name without a terminating NUL")]
    VersionNameUnterminated { index: usize },
    #[error("{present} is present without {missing}")]
    ExtVersionsIncomplete {
        present: &'static str,
        missing: &'static str,
    },
    #[error("__version_ext_crcs is {size} bytes, not a multiple of 4")]
    ExtCrcsSize { size: usize },
    #[error("extended modversions list {crcs} CRCs but only {names} names")]
    ExtMoreCrcsThanNames { crcs: usize, names: usize },
    #[error("symbol {index} has an unreadable name")]
    SymbolName { index: usize },
    #[error("{symbol} refers to section {section}, which does not exist")]
    SymbolSection { symbol: String, section: usize },
    #[error("{symbol} points outside its section's data")]
    SymbolValueOutOfBounds { symbol: String },
    #[error("the symbol table lies outside the file")]
    SymbolTableOutOfBounds,
    /// The [`ModuleSource`] could not give bytes it has; it knows why.
    #[error("could not be read")]
    Unreadable,
}

/// Where the parse gets a module's bytes: all of them in memory, or a file read one range at a
/// time, so that only the header, the section table and the sections the decision needs are
/// read (the shell's; the core does no I/O).
pub trait ModuleSource<'a> {
    /// Length of the whole file, signature included.
    fn file_len(&self) -> u64;
    /// `len` bytes at `offset`; the parse asks only for ranges inside [`ModuleSource::file_len`].
    /// `None` when they could not be read.
    fn read(&mut self, offset: u64, len: usize) -> Option<Cow<'a, [u8]>>;
}

impl<'a> ModuleSource<'a> for &'a [u8] {
    fn file_len(&self) -> u64 {
        self.len() as u64
    }

    fn read(&mut self, offset: u64, len: usize) -> Option<Cow<'a, [u8]>> {
        let start = usize::try_from(offset).ok()?;
        let bytes: &'a [u8] = self;
        bytes.get(start..start.checked_add(len)?).map(Cow::Borrowed)
    }
}

/// Parses a decompressed module file (a signature trailer, if any, is split off first).
pub fn parse_module(bytes: &[u8]) -> Result<ModuleFacts, ElfError> {
    parse_module_from(&mut &*bytes)
}

/// [`parse_module`], reading from `source` only the ranges it needs.
pub fn parse_module_from<'a>(source: &mut impl ModuleSource<'a>) -> Result<ModuleFacts, ElfError> {
    let file_len = source.file_len();
    let tail_len = file_len.min(TRAILER_LEN as u64);
    let tail = read(source, file_len - tail_len, tail_len)?;
    let (elf_len, _signature) = split_signature_tail(&tail, file_len)?;
    let head = read(source, 0, elf_len.min(ELF64_HEADER_LEN))?;
    let header = check_header(&head, elf_len)?;
    let loaded = Loaded::read(source, &header, elf_len)?;
    let image = Image::new(&loaded);
    let modinfo = ModInfo::parse(image.alloc_section(".modinfo")?.unwrap_or_default());
    Ok(ModuleFacts {
        name: modinfo.name().map(str::to_owned),
        vermagic: modinfo.vermagic().map(str::to_owned),
        license: modinfo.license().map(str::to_owned),
        import_ns: modinfo.import_ns().into_iter().map(str::to_owned).collect(),
        versions: image.versions()?,
        imports: image.imports()?,
        exports: image.exports()?,
        this_module_size: image.alloc_section_size(THIS_MODULE),
        machine: header.e_machine,
    })
}

const ELF64_HEADER_LEN: u64 = 64;

fn read<'a>(
    source: &mut impl ModuleSource<'a>,
    offset: u64,
    len: u64,
) -> Result<Cow<'a, [u8]>, ElfError> {
    let len = usize::try_from(len).map_err(|_| ElfError::Unreadable)?;
    source.read(offset, len).ok_or(ElfError::Unreadable)
}

/// Checks what the kernel's loader checks about the header (`head`, the file's first bytes)
/// before the section header table is read, so that table is known to fit the ELF part.
fn check_header(head: &[u8], elf_len: u64) -> Result<Header, ElfError> {
    if !head.starts_with(ELF_MAGIC) {
        return Err(ElfError::NotElf);
    }
    let header = Elf::parse_header(head).map_err(ElfError::Malformed)?;
    if header.e_type != ET_REL {
        return Err(ElfError::NotRelocatable(header.e_type));
    }
    check_section_table(&header, elf_len)?;
    Ok(header)
}

fn check_section_table(header: &Header, file_len: u64) -> Result<(), ElfError> {
    let entry_len = if header.e_ident[EI_CLASS] == ELFCLASS64 {
        ELF64_SHDR_LEN
    } else {
        ELF32_SHDR_LEN
    };
    // e_shnum == 0 would make goblin take the count from section 0 (extended numbering),
    // which no module uses.
    if header.e_shnum == 0 {
        return Err(ElfError::SectionTable("no section headers"));
    }
    if header.e_shentsize != entry_len {
        return Err(ElfError::SectionTable("unexpected section header size"));
    }
    if header.e_shstrndx >= header.e_shnum {
        return Err(ElfError::SectionTable(
            "section name table index out of range",
        ));
    }
    let table_len = u64::from(header.e_shnum) * u64::from(entry_len);
    let table_fits = header
        .e_shoff
        .checked_add(table_len)
        .is_some_and(|end| end <= file_len);
    if header.e_shoff == 0 || !table_fits {
        return Err(ElfError::SectionTable("table lies outside the file"));
    }
    Ok(())
}

/// Byte order and word size of the target, for reading raw section data.
#[derive(Debug, Clone, Copy)]
struct Target {
    little_endian: bool,
    is_64: bool,
    machine: u16,
}

impl Target {
    fn u32_at(self, data: &[u8], offset: usize) -> Option<u32> {
        let end = offset.checked_add(4)?;
        let raw: [u8; 4] = data.get(offset..end)?.try_into().ok()?;
        Some(if self.little_endian {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        })
    }

    fn u64_at(self, data: &[u8], offset: usize) -> Option<u64> {
        let end = offset.checked_add(8)?;
        let raw: [u8; 8] = data.get(offset..end)?.try_into().ok()?;
        Some(if self.little_endian {
            u64::from_le_bytes(raw)
        } else {
            u64::from_be_bytes(raw)
        })
    }

    /// Width of a C `unsigned long`, the CRC field of a `__versions` record.
    fn long_len(self) -> usize {
        if self.is_64 { 8 } else { 4 }
    }

    fn is_sparc(self) -> bool {
        matches!(self.machine, EM_SPARC | EM_SPARC32PLUS | EM_SPARCV9)
    }

    /// ppc64 ELFv1 dot-symbols: the kernel compares version names with one '.' removed.
    fn version_name(self, name: String) -> String {
        match name.strip_prefix('.') {
            Some(undotted) if self.machine == EM_PPC64 => undotted.to_owned(),
            _ => name,
        }
    }
}

/// A symbol table entry, the fields the parse uses.
#[derive(Debug, Clone, Copy)]
struct Sym {
    st_name: usize,
    st_info: u8,
    st_shndx: usize,
    st_value: u64,
}

impl Sym {
    fn st_bind(&self) -> u8 {
        self.st_info >> 4
    }

    fn st_type(&self) -> u8 {
        self.st_info & 0xf
    }
}

/// What the parse read of a module: its section headers, their names, the symbol table with
/// its strings, and the data of the sections it looks into, every range checked against the
/// ELF part of the file before it was read.
struct Loaded<'a> {
    target: Target,
    headers: Vec<SectionHeader>,
    names: Cow<'a, [u8]>,
    syms: Vec<Sym>,
    strtab: Cow<'a, [u8]>,
    /// By section index.
    data: HashMap<usize, Cow<'a, [u8]>>,
}

/// Sections read for their data when present (and loaded, SHF_ALLOC).
const DATA_SECTIONS: [&str; 4] = [".modinfo", BASIC_VERSIONS, EXT_CRCS, EXT_NAMES];

impl<'a> Loaded<'a> {
    fn read(
        source: &mut impl ModuleSource<'a>,
        header: &Header,
        elf_len: u64,
    ) -> Result<Self, ElfError> {
        let container = header.container().map_err(ElfError::Malformed)?;
        let endian = header.endianness().map_err(ElfError::Malformed)?;
        let ctx = Ctx::new(container, endian);
        let target = Target {
            little_endian: endian.is_little(),
            is_64: ctx.is_big(),
            machine: header.e_machine,
        };
        let entry_len = u64::from(header.e_shentsize);
        let table = read(
            source,
            header.e_shoff,
            u64::from(header.e_shnum) * entry_len,
        )?;
        let headers = SectionHeader::parse_from(&table, 0, usize::from(header.e_shnum), ctx)
            .map_err(ElfError::Malformed)?;
        let in_file = |index: usize| {
            headers.get(index).is_some_and(|header| {
                is_empty_section(header)
                    || byte_range(header).is_some_and(|range| range.end as u64 <= elf_len)
            })
        };
        let names_index = usize::from(header.e_shstrndx);
        let names = match headers.get(names_index) {
            Some(names) if in_file(names_index) => read_section(source, names)?,
            _ => Cow::Borrowed(&[][..]),
        };
        if let Some(index) = (0..headers.len()).find(|&index| !in_file(index)) {
            let name = headers
                .get(index)
                .and_then(|header| string_at(&names, header.sh_name))
                .unwrap_or("");
            return Err(ElfError::SectionOutOfBounds {
                index,
                name: name.to_owned(),
            });
        }
        let mut loaded = Loaded {
            target,
            names,
            syms: Vec::new(),
            strtab: Cow::Borrowed(&[][..]),
            data: HashMap::new(),
            headers,
        };
        loaded.read_symbols(source, elf_len)?;
        let mut wanted: Vec<usize> = DATA_SECTIONS
            .iter()
            .filter_map(|name| loaded.alloc_section_index(name))
            .collect();
        // The sections export helpers point into: CRC tables, namespace strings.
        let strings = StringTable::new(&loaded.strtab);
        for sym in &loaded.syms {
            let name = strings.get(sym.st_name).unwrap_or("");
            if (name.starts_with(CRC_PREFIX) || name.starts_with(NAMESPACE_PREFIX))
                && sym.st_shndx < SHN_LORESERVE as usize
                && sym.st_shndx < loaded.headers.len()
            {
                wanted.push(sym.st_shndx);
            }
        }
        for index in wanted {
            if !loaded.data.contains_key(&index) {
                let data = read_section(source, &loaded.headers[index])?;
                loaded.data.insert(index, data);
            }
        }
        Ok(loaded)
    }

    /// The last SHT_SYMTAB section, as goblin took it, and the strings it links to.
    fn read_symbols(
        &mut self,
        source: &mut impl ModuleSource<'a>,
        elf_len: u64,
    ) -> Result<(), ElfError> {
        let Some(symtab) = self
            .headers
            .iter()
            .rfind(|header| header.sh_type == SHT_SYMTAB)
        else {
            return Ok(());
        };
        let sym_len: u64 = if self.target.is_64 { 24 } else { 16 };
        let count = symtab.sh_size.checked_div(symtab.sh_entsize).unwrap_or(0);
        let table_len = count
            .checked_mul(sym_len)
            .filter(|len| {
                symtab
                    .sh_offset
                    .checked_add(*len)
                    .is_some_and(|end| end <= elf_len)
            })
            .ok_or(ElfError::SymbolTableOutOfBounds)?;
        let link = usize::try_from(symtab.sh_link).unwrap_or(usize::MAX);
        let offset = symtab.sh_offset;
        let table = read(source, offset, table_len)?;
        self.syms = table
            .chunks_exact(sym_len as usize)
            .map(|raw| parse_sym(raw, self.target))
            .collect();
        if let Some(strtab) = self.headers.get(link) {
            self.strtab = read_section(source, strtab)?;
        }
        Ok(())
    }

    fn alloc_section_index(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|header| {
            header.sh_flags & u64::from(SHF_ALLOC) != 0
                && string_at(&self.names, header.sh_name) == Some(name)
        })
    }
}

fn is_empty_section(header: &SectionHeader) -> bool {
    header.sh_type == SHT_NOBITS || header.sh_type == SHT_NULL
}

/// A section's data; its range was checked to lie in the ELF part.
fn read_section<'a>(
    source: &mut impl ModuleSource<'a>,
    header: &SectionHeader,
) -> Result<Cow<'a, [u8]>, ElfError> {
    if is_empty_section(header) {
        return Ok(Cow::Borrowed(&[][..]));
    }
    read(source, header.sh_offset, header.sh_size)
}

fn parse_sym(raw: &[u8], target: Target) -> Sym {
    let u16_at = |offset: usize| {
        let bytes: [u8; 2] = raw
            .get(offset..offset + 2)
            .and_then(|b| b.try_into().ok())
            .unwrap_or_default();
        if target.little_endian {
            u16::from_le_bytes(bytes)
        } else {
            u16::from_be_bytes(bytes)
        }
    };
    let u32_at = |offset: usize| target.u32_at(raw, offset).unwrap_or(0);
    let byte_at = |offset: usize| raw.get(offset).copied().unwrap_or(0);
    if target.is_64 {
        Sym {
            st_name: u32_at(0) as usize,
            st_info: byte_at(4),
            st_shndx: usize::from(u16_at(6)),
            st_value: target.u64_at(raw, 8).unwrap_or(0),
        }
    } else {
        Sym {
            st_name: u32_at(0) as usize,
            st_value: u64::from(u32_at(4)),
            st_info: byte_at(12),
            st_shndx: usize::from(u16_at(14)),
        }
    }
}

/// A string table checked for UTF-8 once, when it all is (as in every real module), rather
/// than once per string.
struct StringTable<'a> {
    bytes: &'a [u8],
    text: Option<&'a str>,
}

impl<'a> StringTable<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        StringTable {
            bytes,
            text: std::str::from_utf8(bytes).ok(),
        }
    }

    /// [`string_at`].
    fn get(&self, offset: usize) -> Option<&'a str> {
        let Some(text) = self.text else {
            return string_at(self.bytes, offset);
        };
        let rest = text.get(offset..)?;
        let end = memchr::memchr(0, rest.as_bytes()).unwrap_or(rest.len());
        // NUL is ASCII, so `end` is a char boundary.
        rest.get(..end)
    }
}

/// The NUL-terminated string at `offset` of a string table (to the table's end if it has no
/// NUL); `None` outside the table or when it is not UTF-8.
fn string_at(table: &[u8], offset: usize) -> Option<&str> {
    let rest = table.get(offset..)?;
    let end = memchr::memchr(0, rest).unwrap_or(rest.len());
    std::str::from_utf8(rest.get(..end)?).ok()
}

/// The parts of a module the facts are read from.
struct Image<'a> {
    loaded: &'a Loaded<'a>,
    strings: StringTable<'a>,
    target: Target,
}

impl<'a> Image<'a> {
    fn new(loaded: &'a Loaded<'a>) -> Self {
        Image {
            loaded,
            strings: StringTable::new(&loaded.strtab),
            target: loaded.target,
        }
    }

    fn section_name(&self, index: usize) -> &'a str {
        self.loaded
            .headers
            .get(index)
            .and_then(|header| string_at(&self.loaded.names, header.sh_name))
            .unwrap_or("")
    }

    fn section_data(&self, index: usize) -> Result<&'a [u8], ElfError> {
        let out_of_bounds = || ElfError::SectionOutOfBounds {
            index,
            name: self.section_name(index).to_owned(),
        };
        let header = self.loaded.headers.get(index).ok_or_else(out_of_bounds)?;
        if is_empty_section(header) {
            return Ok(&[]);
        }
        // Every section the facts use was read (see `Loaded::read`); the ranges of all were
        // checked.
        self.loaded
            .data
            .get(&index)
            .map(|data| &data[..])
            .ok_or_else(out_of_bounds)
    }

    /// The data of the first section called `name` that is loaded (SHF_ALLOC): the kernel's
    /// section lookup ignores sections without that flag, so they count as absent.
    fn alloc_section(&self, name: &str) -> Result<Option<&'a [u8]>, ElfError> {
        self.loaded
            .alloc_section_index(name)
            .map(|index| self.section_data(index))
            .transpose()
    }

    /// The size the first loaded section called `name` declares (`sh_size`).
    fn alloc_section_size(&self, name: &str) -> Option<u64> {
        self.loaded
            .alloc_section_index(name)
            .map(|index| self.loaded.headers[index].sh_size)
    }

    fn versions(&self) -> Result<Option<VersionTable>, ElfError> {
        let basic = self
            .alloc_section(BASIC_VERSIONS)?
            .map(|data| parse_basic_versions(data, self.target))
            .transpose()?;
        let ext_crcs = self.alloc_section(EXT_CRCS)?;
        let ext_names = self.alloc_section(EXT_NAMES)?;
        let table = match (ext_crcs, ext_names, basic) {
            (Some(crcs), Some(names), _) => Some(VersionTable {
                kind: VersionsKind::Extended,
                entries: parse_ext_versions(crcs, names, self.target)?,
            }),
            (Some(_), None, _) => return Err(ext_incomplete(EXT_CRCS, EXT_NAMES)),
            (None, Some(_), _) => return Err(ext_incomplete(EXT_NAMES, EXT_CRCS)),
            (None, None, basic) => basic.map(|entries| VersionTable {
                kind: VersionsKind::Basic,
                entries,
            }),
        };
        Ok(table)
    }

    fn symbol_name(&self, index: usize, sym: &Sym) -> Result<&'a str, ElfError> {
        self.strings
            .get(sym.st_name)
            .ok_or(ElfError::SymbolName { index })
    }

    fn imports(&self) -> Result<Vec<Import>, ElfError> {
        let mut imports = Vec::new();
        for (index, sym) in self.loaded.syms.iter().enumerate() {
            if sym.st_shndx != SHN_UNDEF as usize || self.is_sparc_register(sym) {
                continue;
            }
            let name = self.symbol_name(index, sym)?;
            if !name.is_empty() {
                imports.push(Import {
                    name: name.to_owned(),
                    weak: sym.st_bind() == STB_WEAK,
                });
            }
        }
        Ok(imports)
    }

    fn is_sparc_register(&self, sym: &Sym) -> bool {
        self.target.is_sparc() && sym.st_type() == STT_SPARC_REGISTER
    }

    /// Exports are found through the `__ksymtab_<name>` helper symbols; `__crc_<name>` and
    /// `__kstrtabns_<name>` add the CRC and namespace (docs/compat-rules.md, "Reading a
    /// module").
    fn exports(&self) -> Result<Vec<Export>, ElfError> {
        let helpers = self.export_helpers()?;
        let mut exports = Vec::new();
        for (name, ksymtab) in &helpers.ksymtab {
            let Some(gpl_only) = ksymtab_gpl_only(self.section_name(ksymtab.st_shndx)) else {
                continue;
            };
            let crc = helpers
                .crc
                .get(name)
                .map(|sym| self.export_crc(name, sym))
                .transpose()?;
            let namespace = helpers
                .namespace
                .get(name)
                .map(|sym| self.export_namespace(name, sym))
                .transpose()?
                .flatten();
            exports.push(Export {
                name: (*name).to_owned(),
                crc,
                gpl_only,
                namespace,
            });
        }
        Ok(exports)
    }

    fn export_helpers(&self) -> Result<ExportHelpers<'a>, ElfError> {
        let mut helpers = ExportHelpers::default();
        for (index, sym) in self.loaded.syms.iter().enumerate() {
            let name = self.symbol_name(index, sym)?;
            if let Some(export) = name.strip_prefix(KSYMTAB_PREFIX) {
                helpers.ksymtab.push((export, *sym));
            } else if let Some(export) = name.strip_prefix(CRC_PREFIX) {
                helpers.crc.insert(export, *sym);
            } else if let Some(export) = name.strip_prefix(NAMESPACE_PREFIX) {
                helpers.namespace.insert(export, *sym);
            }
        }
        Ok(helpers)
    }

    /// Absolute (and undefined) `__crc_` symbols carry the CRC as their value; otherwise the
    /// value is an offset into the section (`__kcrctab*`) holding it.
    fn export_crc(&self, export: &str, sym: &Sym) -> Result<u32, ElfError> {
        if sym.st_shndx == SHN_ABS as usize || sym.st_shndx == SHN_UNDEF as usize {
            return Ok(low_32_bits(sym.st_value));
        }
        let data = self.symbol_section(CRC_PREFIX, export, sym)?;
        usize::try_from(sym.st_value)
            .ok()
            .and_then(|offset| self.target.u32_at(data, offset))
            .ok_or_else(|| value_out_of_bounds(CRC_PREFIX, export))
    }

    /// The namespace string `__kstrtabns_<name>` points at; empty means no namespace.
    fn export_namespace(&self, export: &str, sym: &Sym) -> Result<Option<String>, ElfError> {
        let data = self.symbol_section(NAMESPACE_PREFIX, export, sym)?;
        let namespace = usize::try_from(sym.st_value)
            .ok()
            .and_then(|offset| data.get(offset..))
            .and_then(until_nul)
            .ok_or_else(|| value_out_of_bounds(NAMESPACE_PREFIX, export))?;
        Ok((!namespace.is_empty()).then(|| String::from_utf8_lossy(namespace).into_owned()))
    }

    fn symbol_section(&self, prefix: &str, export: &str, sym: &Sym) -> Result<&'a [u8], ElfError> {
        let section = sym.st_shndx;
        if section >= SHN_LORESERVE as usize || section >= self.loaded.headers.len() {
            return Err(ElfError::SymbolSection {
                symbol: format!("{prefix}{export}"),
                section,
            });
        }
        self.section_data(section)
    }
}

#[derive(Default)]
struct ExportHelpers<'a> {
    /// In symbol table order, so exports come out in a stable order.
    ksymtab: Vec<(&'a str, Sym)>,
    crc: HashMap<&'a str, Sym>,
    namespace: HashMap<&'a str, Sym>,
}

/// Whether a `__ksymtab_<name>` symbol in this section is a GPL-only export; `None` when the
/// section is not an export table at all (a symbol that merely has that prefix).
fn ksymtab_gpl_only(section: &str) -> Option<bool> {
    match section {
        "__ksymtab" | "__ksymtab_gpl_future" | "__ksymtab_unused" => Some(false),
        "__ksymtab_gpl" | "__ksymtab_unused_gpl" => Some(true),
        _ => None,
    }
}

fn parse_basic_versions(data: &[u8], target: Target) -> Result<Vec<VersionEntry>, ElfError> {
    if !data.len().is_multiple_of(VERSION_RECORD_LEN) {
        return Err(ElfError::VersionsSize { size: data.len() });
    }
    data.chunks_exact(VERSION_RECORD_LEN)
        .enumerate()
        .map(|(index, record)| parse_version_record(index, record, target))
        .collect()
}

fn parse_version_record(
    index: usize,
    record: &[u8],
    target: Target,
) -> Result<VersionEntry, ElfError> {
    let crc = if target.is_64 {
        target.u64_at(record, 0).map(low_32_bits)
    } else {
        target.u32_at(record, 0)
    };
    let name = record
        .get(target.long_len()..)
        .and_then(until_nul)
        .ok_or(ElfError::VersionNameUnterminated { index })?;
    // Unreachable for 64-byte records; kept as an error rather than a panic.
    let crc = crc.ok_or(ElfError::VersionsSize { size: record.len() })?;
    Ok(VersionEntry {
        name: target.version_name(String::from_utf8_lossy(name).into_owned()),
        crc,
    })
}

/// Pairs the packed CRC array with the first names of the NUL-separated list; extra names
/// (e.g. NUL padding) are ignored, as the kernel only needs at least as many names as CRCs.
fn parse_ext_versions(
    crcs: &[u8],
    names: &[u8],
    target: Target,
) -> Result<Vec<VersionEntry>, ElfError> {
    if !crcs.len().is_multiple_of(4) {
        return Err(ElfError::ExtCrcsSize { size: crcs.len() });
    }
    let crc_count = crcs.len() / 4;
    let name_count = ext_names(names).count();
    if crc_count > name_count {
        return Err(ElfError::ExtMoreCrcsThanNames {
            crcs: crc_count,
            names: name_count,
        });
    }
    let crc_values = crcs.chunks_exact(4).filter_map(|raw| target.u32_at(raw, 0));
    Ok(crc_values
        .zip(ext_names(names))
        .map(|(crc, name)| VersionEntry {
            name: target.version_name(String::from_utf8_lossy(name).into_owned()),
            crc,
        })
        .collect())
}

/// Names in `__version_ext_names`; an unterminated last name still counts, as in the
/// kernel's count (it measures each name with a bounded strlen).
fn ext_names(section: &[u8]) -> impl Iterator<Item = &[u8]> {
    section
        .split_inclusive(|&byte| byte == 0)
        .map(|name| name.strip_suffix(&[0]).unwrap_or(name))
}

fn ext_incomplete(present: &'static str, missing: &'static str) -> ElfError {
    ElfError::ExtVersionsIncomplete { present, missing }
}

fn value_out_of_bounds(prefix: &str, export: &str) -> ElfError {
    ElfError::SymbolValueOutOfBounds {
        symbol: format!("{prefix}{export}"),
    }
}

/// The bytes before the first NUL, or `None` if there is no NUL.
fn until_nul(bytes: &[u8]) -> Option<&[u8]> {
    let end = bytes.iter().position(|&byte| byte == 0)?;
    bytes.get(..end)
}

/// CRCs are 32-bit; wider fields hold them zero-extended.
fn low_32_bits(value: u64) -> u32 {
    (value & u64::from(u32::MAX)) as u32
}

fn byte_range(header: &SectionHeader) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(header.sh_offset).ok()?;
    let len = usize::try_from(header.sh_size).ok()?;
    Some(start..start.checked_add(len)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::signature::SIGNATURE_MAGIC;
    use goblin::elf::header::{EM_S390, EM_X86_64, ET_EXEC};
    use goblin::elf::section_header::{SHT_PROGBITS, SHT_STRTAB, SHT_SYMTAB};
    use goblin::elf::sym::{STB_GLOBAL, STB_LOCAL, STT_NOTYPE};

    const EM_386: u16 = 3;
    const ALLOC: u64 = SHF_ALLOC as u64;

    /// Writes integers in the byte order and word size of the ELF being built.
    #[derive(Clone, Copy)]
    struct Writer {
        is_64: bool,
        big_endian: bool,
    }

    impl Writer {
        fn u16(self, out: &mut Vec<u8>, value: u16) {
            if self.big_endian {
                out.extend(value.to_be_bytes());
            } else {
                out.extend(value.to_le_bytes());
            }
        }

        fn u32(self, out: &mut Vec<u8>, value: u32) {
            if self.big_endian {
                out.extend(value.to_be_bytes());
            } else {
                out.extend(value.to_le_bytes());
            }
        }

        fn u64(self, out: &mut Vec<u8>, value: u64) {
            if self.big_endian {
                out.extend(value.to_be_bytes());
            } else {
                out.extend(value.to_le_bytes());
            }
        }

        /// An address-sized field (`Elf_Addr`, `Elf_Off`, ...).
        fn word(self, out: &mut Vec<u8>, value: u64) {
            if self.is_64 {
                self.u64(out, value);
            } else {
                self.u32(out, u32::try_from(value).expect("fits ELF32"));
            }
        }
    }

    #[derive(Clone)]
    struct TestSection {
        name: String,
        sh_type: u32,
        flags: u64,
        data: Vec<u8>,
        link: u32,
        entsize: u64,
    }

    impl TestSection {
        fn table(name: &str, sh_type: u32, data: Vec<u8>, link: u32, entsize: u64) -> Self {
            TestSection {
                name: name.to_owned(),
                sh_type,
                flags: 0,
                data,
                link,
                entsize,
            }
        }
    }

    struct TestSymbol {
        name: String,
        section: u16,
        value: u64,
        bind: u8,
        kind: u8,
    }

    /// Builds small relocatable ELF files: a null section, the added sections, then
    /// `.symtab`, `.strtab` and `.shstrtab`.
    struct TestElf {
        writer: Writer,
        machine: u16,
        e_type: u16,
        sections: Vec<TestSection>,
        symbols: Vec<TestSymbol>,
    }

    impl TestElf {
        fn new(is_64: bool, big_endian: bool, machine: u16) -> Self {
            TestElf {
                writer: Writer { is_64, big_endian },
                machine,
                e_type: ET_REL,
                sections: Vec::new(),
                symbols: Vec::new(),
            }
        }

        fn x86_64() -> Self {
            Self::new(true, false, EM_X86_64)
        }

        fn section(self, name: &str, data: &[u8]) -> Self {
            self.section_with(name, SHT_PROGBITS, ALLOC, data)
        }

        fn section_with(mut self, name: &str, sh_type: u32, flags: u64, data: &[u8]) -> Self {
            self.sections.push(TestSection {
                name: name.to_owned(),
                sh_type,
                flags,
                data: data.to_vec(),
                link: 0,
                entsize: 0,
            });
            self
        }

        /// Index a section will have in the built file (index 0 is the null section).
        fn index_of(&self, name: &str) -> u16 {
            let position = self
                .sections
                .iter()
                .position(|section| section.name == name)
                .expect("section was added");
            u16::try_from(position + 1).expect("few sections")
        }

        fn symbol(mut self, name: &str, section: u16, value: u64, bind: u8) -> Self {
            self.symbols.push(TestSymbol {
                name: name.to_owned(),
                section,
                value,
                bind,
                kind: STT_NOTYPE,
            });
            self
        }

        fn undefined(self, name: &str) -> Self {
            self.symbol(name, 0, 0, STB_GLOBAL)
        }

        fn in_section(self, name: &str, section: &str, value: u64) -> Self {
            let index = self.index_of(section);
            self.symbol(name, index, value, STB_LOCAL)
        }

        fn build(self) -> Vec<u8> {
            let w = self.writer;
            let (strtab, name_offsets) = string_table(self.symbols.iter().map(|s| &s.name));
            let symtab = self.symbol_table(&name_offsets);
            let mut all = self.sections.clone();
            let sym_len = if w.is_64 { 24 } else { 16 };
            let strtab_index = u32::try_from(all.len() + 2).expect("few sections");
            all.push(TestSection::table(
                ".symtab",
                SHT_SYMTAB,
                symtab,
                strtab_index,
                sym_len,
            ));
            all.push(TestSection::table(".strtab", SHT_STRTAB, strtab, 0, 0));
            let shstrtab_name = ".shstrtab".to_owned();
            let names = all.iter().map(|s| &s.name).chain([&shstrtab_name]);
            let (shstrtab, section_names) = string_table(names);
            all.push(TestSection::table(
                &shstrtab_name,
                SHT_STRTAB,
                shstrtab,
                0,
                0,
            ));

            let header_len: usize = if w.is_64 { 64 } else { 52 };
            let mut body = Vec::new();
            let mut placed = Vec::new();
            for section in &all {
                while !(header_len + body.len()).is_multiple_of(8) {
                    body.push(0);
                }
                placed.push(header_len + body.len());
                body.extend_from_slice(&section.data);
            }
            while !(header_len + body.len()).is_multiple_of(8) {
                body.push(0);
            }
            let shoff = header_len + body.len();
            let shnum = u16::try_from(all.len() + 1).expect("few sections");

            let mut out = Vec::new();
            self.write_header(&mut out, shoff as u64, shnum);
            out.extend(body);
            out.extend(std::iter::repeat_n(0, if w.is_64 { 64 } else { 40 }));
            for ((section, offset), name) in all.iter().zip(placed).zip(section_names) {
                w.u32(&mut out, name);
                w.u32(&mut out, section.sh_type);
                w.word(&mut out, section.flags);
                w.word(&mut out, 0);
                w.word(&mut out, offset as u64);
                w.word(&mut out, section.data.len() as u64);
                w.u32(&mut out, section.link);
                w.u32(&mut out, 0);
                w.word(&mut out, 8);
                w.word(&mut out, section.entsize);
            }
            out
        }

        fn write_header(&self, out: &mut Vec<u8>, shoff: u64, shnum: u16) {
            let w = self.writer;
            out.extend(ELF_MAGIC);
            out.push(if w.is_64 { 2 } else { 1 });
            out.push(if w.big_endian { 2 } else { 1 });
            out.push(1);
            out.extend([0; 9]);
            w.u16(out, self.e_type);
            w.u16(out, self.machine);
            w.u32(out, 1);
            w.word(out, 0);
            w.word(out, 0);
            w.word(out, shoff);
            w.u32(out, 0);
            w.u16(out, if w.is_64 { 64 } else { 52 });
            w.u16(out, 0);
            w.u16(out, 0);
            w.u16(out, if w.is_64 { 64 } else { 40 });
            w.u16(out, shnum);
            w.u16(out, shnum - 1);
        }

        fn symbol_table(&self, name_offsets: &[u32]) -> Vec<u8> {
            let w = self.writer;
            let mut out = vec![0; if w.is_64 { 24 } else { 16 }];
            for (symbol, &name) in self.symbols.iter().zip(name_offsets) {
                let info = (symbol.bind << 4) | symbol.kind;
                w.u32(&mut out, name);
                if w.is_64 {
                    out.extend([info, 0]);
                    w.u16(&mut out, symbol.section);
                    w.u64(&mut out, symbol.value);
                    w.u64(&mut out, 0);
                } else {
                    w.u32(&mut out, u32::try_from(symbol.value).expect("fits"));
                    w.u32(&mut out, 0);
                    out.extend([info, 0]);
                    w.u16(&mut out, symbol.section);
                }
            }
            out
        }
    }

    /// A string table starting with the empty string, and each name's offset in it.
    fn string_table<'a>(names: impl Iterator<Item = &'a String>) -> (Vec<u8>, Vec<u32>) {
        let mut table = vec![0];
        let mut offsets = Vec::new();
        for name in names {
            offsets.push(u32::try_from(table.len()).expect("small table"));
            table.extend(name.as_bytes());
            table.push(0);
        }
        (table, offsets)
    }

    fn basic_versions(writer: Writer, entries: &[(u32, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (crc, name) in entries {
            let start = out.len();
            writer.word(&mut out, u64::from(*crc));
            out.extend(name.as_bytes());
            out.resize(start + VERSION_RECORD_LEN, 0);
        }
        out
    }

    fn ext_crcs(writer: Writer, crcs: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        for crc in crcs {
            writer.u32(&mut out, *crc);
        }
        out
    }

    fn entries(facts: &ModuleFacts) -> Vec<(u32, &str)> {
        let table = facts.versions.as_ref().expect("module has versions");
        table
            .entries
            .iter()
            .map(|entry| (entry.crc, entry.name.as_str()))
            .collect()
    }

    fn sign(mut elf: Vec<u8>, sig_len: usize) -> Vec<u8> {
        elf.extend(std::iter::repeat_n(0x30, sig_len));
        elf.extend([0, 0, 2, 0, 0, 0, 0, 0]);
        elf.extend(u32::try_from(sig_len).expect("small").to_be_bytes());
        elf.extend(SIGNATURE_MAGIC);
        elf
    }

    const SAMPLE: &[(u32, &str)] = &[(0xbce1a965, "module_layout"), (0xf9a482f9, "msleep")];

    #[test]
    fn reads_basic_versions_in_every_layout() {
        for (is_64, big_endian) in [(true, false), (true, true), (false, false), (false, true)] {
            let builder = TestElf::new(is_64, big_endian, EM_X86_64);
            let data = basic_versions(builder.writer, SAMPLE);
            let facts =
                parse_module(&builder.section("__versions", &data).build()).expect("valid module");
            assert_eq!(entries(&facts), SAMPLE, "64-bit {is_64}, BE {big_endian}");
            let kind = facts.versions.as_ref().map(|t| t.kind);
            assert_eq!(kind, Some(VersionsKind::Basic));
        }
    }

    #[test]
    fn big_endian_64_bit_crc_sits_in_the_last_four_bytes() {
        let mut record = vec![0, 0, 0, 0, 0xf9, 0xa4, 0x82, 0xf9];
        record.extend(b"msleep");
        record.resize(VERSION_RECORD_LEN, 0);
        let elf = TestElf::new(true, true, EM_S390).section("__versions", &record);
        let facts = parse_module(&elf.build()).expect("valid");
        assert_eq!(entries(&facts), [(0xf9a482f9, "msleep")]);
        assert_eq!(facts.machine, EM_S390);
    }

    #[test]
    fn module_without_version_sections_has_no_table() {
        let facts = parse_module(&TestElf::x86_64().build()).expect("valid");
        assert_eq!(facts.versions, None);
    }

    #[test]
    fn empty_versions_section_is_an_empty_table() {
        let facts =
            parse_module(&TestElf::x86_64().section("__versions", &[]).build()).expect("valid");
        assert_eq!(entries(&facts), []);
    }

    #[test]
    fn versions_size_must_be_a_multiple_of_64() {
        let elf = TestElf::x86_64().section("__versions", &[0; 65]).build();
        let err = parse_module(&elf).expect_err("odd size");
        assert!(
            matches!(err, ElfError::VersionsSize { size: 65 }),
            "{err:?}"
        );
    }

    #[test]
    fn version_name_must_be_nul_terminated() {
        let mut data = basic_versions(TestElf::x86_64().writer, SAMPLE);
        data.extend([0; 8]);
        data.extend([b'x'; 56]);
        let err = parse_module(&TestElf::x86_64().section("__versions", &data).build())
            .expect_err("unterminated name");
        assert!(
            matches!(err, ElfError::VersionNameUnterminated { index: 2 }),
            "{err:?}"
        );
    }

    #[test]
    fn unloaded_versions_section_is_ignored_like_the_kernel_does() {
        let data = basic_versions(TestElf::x86_64().writer, SAMPLE);
        let elf = TestElf::x86_64().section_with("__versions", SHT_PROGBITS, 0, &data);
        let facts = parse_module(&elf.build()).expect("valid");
        assert_eq!(facts.versions, None);
    }

    #[test]
    fn extended_versions_are_preferred_over_basic_ones() {
        let builder = TestElf::x86_64();
        let basic = basic_versions(builder.writer, SAMPLE);
        let crcs = ext_crcs(builder.writer, &[0x2f9b2b9a, 0x11111111]);
        let elf = builder
            .section("__versions", &basic)
            .section("__version_ext_crcs", &crcs)
            .section(
                "__version_ext_names",
                b"module_layout\0a_very_long_rust_name\0\0\0",
            );
        let facts = parse_module(&elf.build()).expect("valid");
        assert_eq!(
            entries(&facts),
            [
                (0x2f9b2b9a, "module_layout"),
                (0x11111111, "a_very_long_rust_name")
            ]
        );
        let kind = facts.versions.as_ref().map(|t| t.kind);
        assert_eq!(kind, Some(VersionsKind::Extended));
    }

    #[test]
    fn extended_crcs_follow_the_target_byte_order() {
        let builder = TestElf::new(false, true, EM_386);
        let crcs = ext_crcs(builder.writer, &[0x01020304]);
        let elf = builder
            .section("__version_ext_crcs", &crcs)
            .section("__version_ext_names", b"sym\0");
        let facts = parse_module(&elf.build()).expect("valid");
        assert_eq!(entries(&facts), [(0x01020304, "sym")]);
    }

    #[test]
    fn extended_tables_must_come_in_pairs() {
        let only_crcs = TestElf::x86_64().section("__version_ext_crcs", &[0; 4]);
        let err = parse_module(&only_crcs.build()).expect_err("names missing");
        assert!(
            matches!(
                err,
                ElfError::ExtVersionsIncomplete {
                    missing: "__version_ext_names",
                    ..
                }
            ),
            "{err:?}"
        );
        let only_names = TestElf::x86_64().section("__version_ext_names", b"a\0");
        let err = parse_module(&only_names.build()).expect_err("crcs missing");
        assert!(
            matches!(
                err,
                ElfError::ExtVersionsIncomplete {
                    missing: "__version_ext_crcs",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn extended_table_needs_a_name_for_every_crc() {
        let elf = TestElf::x86_64()
            .section("__version_ext_crcs", &[0; 12])
            .section("__version_ext_names", b"a\0b\0");
        let err = parse_module(&elf.build()).expect_err("3 CRCs, 2 names");
        assert!(
            matches!(err, ElfError::ExtMoreCrcsThanNames { crcs: 3, names: 2 }),
            "{err:?}"
        );
    }

    #[test]
    fn extended_crc_array_must_hold_whole_u32s() {
        let elf = TestElf::x86_64()
            .section("__version_ext_crcs", &[0; 6])
            .section("__version_ext_names", b"a\0b\0");
        let err = parse_module(&elf.build()).expect_err("6 bytes");
        assert!(matches!(err, ElfError::ExtCrcsSize { size: 6 }), "{err:?}");
    }

    #[test]
    fn unterminated_last_extended_name_still_counts() {
        let elf = TestElf::x86_64()
            .section("__version_ext_crcs", &[1, 0, 0, 0, 2, 0, 0, 0])
            .section("__version_ext_names", b"a\0bc");
        let facts = parse_module(&elf.build()).expect("valid");
        assert_eq!(entries(&facts), [(1, "a"), (2, "bc")]);
    }

    #[test]
    fn ppc64_version_names_lose_one_leading_dot() {
        let builder = TestElf::new(true, true, EM_PPC64);
        let data = basic_versions(builder.writer, &[(1, ".msleep"), (2, "..odd")]);
        let facts = parse_module(&builder.section("__versions", &data).build()).expect("valid");
        assert_eq!(entries(&facts), [(1, "msleep"), (2, ".odd")]);

        let builder = TestElf::new(true, true, EM_PPC64);
        let crcs = ext_crcs(builder.writer, &[3]);
        let elf = builder
            .section("__version_ext_crcs", &crcs)
            .section("__version_ext_names", b".kfree\0");
        assert_eq!(
            entries(&parse_module(&elf.build()).expect("valid")),
            [(3, "kfree")]
        );
    }

    #[test]
    fn other_arches_keep_leading_dots() {
        let builder = TestElf::x86_64();
        let data = basic_versions(builder.writer, &[(1, ".msleep")]);
        let facts = parse_module(&builder.section("__versions", &data).build()).expect("valid");
        assert_eq!(entries(&facts), [(1, ".msleep")]);
    }

    #[test]
    fn imports_are_named_undefined_symbols_with_their_binding() {
        let elf = TestElf::x86_64()
            .section(".text", &[0xc3])
            .undefined("msleep")
            .symbol("optional_hook", 0, 0, STB_WEAK)
            .symbol("", 0, 0, STB_GLOBAL)
            .in_section("local_helper", ".text", 0);
        let facts = parse_module(&elf.build()).expect("valid");
        let imports: Vec<_> = facts
            .imports
            .iter()
            .map(|i| (i.name.as_str(), i.weak))
            .collect();
        assert_eq!(imports, [("msleep", false), ("optional_hook", true)]);
    }

    #[test]
    fn sparc_register_symbols_are_not_imports() {
        for (machine, expected) in [(EM_SPARCV9, 1), (EM_X86_64, 2)] {
            let mut elf = TestElf::new(true, true, machine).undefined("real_import");
            elf.symbols.push(TestSymbol {
                name: "%g7".into(),
                section: 0,
                value: 0,
                bind: STB_GLOBAL,
                kind: STT_SPARC_REGISTER,
            });
            let facts = parse_module(&elf.build()).expect("valid");
            assert_eq!(facts.imports.len(), expected, "machine {machine}");
        }
    }

    /// A module laid out like Debian's fxexport.ko: CRCs in `__kcrctab*`, namespaces in
    /// `__ksymtab_strings`.
    fn exporting_module(big_endian: bool) -> TestElf {
        let builder = TestElf::new(true, big_endian, EM_X86_64);
        let kcrctab = ext_crcs(builder.writer, &[0x24d494b8]);
        let kcrctab_gpl = ext_crcs(builder.writer, &[0xa287f050, 0xc145c7ac]);
        builder
            .section("__ksymtab", &[0; 12])
            .section("__ksymtab_gpl", &[0; 24])
            .section("__kcrctab", &kcrctab)
            .section("__kcrctab_gpl", &kcrctab_gpl)
            .section(
                "__ksymtab_strings",
                b"fx_plain\0\0fx_gpl\0\0fx_ns\0FIXTURE_NS\0",
            )
            .in_section("__crc_fx_plain", "__kcrctab", 0)
            .in_section("__crc_fx_gpl", "__kcrctab_gpl", 0)
            .in_section("__crc_fx_ns", "__kcrctab_gpl", 4)
            .in_section("__kstrtabns_fx_plain", "__ksymtab_strings", 9)
            .in_section("__kstrtabns_fx_gpl", "__ksymtab_strings", 17)
            .in_section("__kstrtabns_fx_ns", "__ksymtab_strings", 24)
            .in_section("__ksymtab_fx_plain", "__ksymtab", 0)
            .in_section("__ksymtab_fx_gpl", "__ksymtab_gpl", 0)
            .in_section("__ksymtab_fx_ns", "__ksymtab_gpl", 12)
    }

    fn export(name: &str, crc: Option<u32>, gpl_only: bool, namespace: Option<&str>) -> Export {
        Export {
            name: name.to_owned(),
            crc,
            gpl_only,
            namespace: namespace.map(str::to_owned),
        }
    }

    #[test]
    fn exports_carry_crc_gpl_flag_and_namespace() {
        for big_endian in [false, true] {
            let facts = parse_module(&exporting_module(big_endian).build()).expect("valid");
            assert_eq!(
                facts.exports,
                [
                    export("fx_plain", Some(0x24d494b8), false, None),
                    export("fx_gpl", Some(0xa287f050), true, None),
                    export("fx_ns", Some(0xc145c7ac), true, Some("FIXTURE_NS")),
                ],
                "big endian {big_endian}"
            );
        }
    }

    #[test]
    fn absolute_crc_symbols_hold_the_crc_itself() {
        let elf = TestElf::x86_64()
            .section("__ksymtab", &[0; 16])
            .symbol("__crc_old_style", SHN_ABS as u16, 0x1234_5678, STB_GLOBAL)
            .in_section("__ksymtab_old_style", "__ksymtab", 0);
        let facts = parse_module(&elf.build()).expect("valid");
        assert_eq!(
            facts.exports,
            [export("old_style", Some(0x1234_5678), false, None)]
        );
    }

    #[test]
    fn exports_without_crc_symbol_have_no_crc() {
        let elf = TestElf::x86_64().section("__ksymtab", &[0; 12]).in_section(
            "__ksymtab_plain",
            "__ksymtab",
            0,
        );
        let facts = parse_module(&elf.build()).expect("valid");
        assert_eq!(facts.exports, [export("plain", None, false, None)]);
    }

    #[test]
    fn ksymtab_prefix_outside_export_tables_is_not_an_export() {
        let elf = TestElf::x86_64().section(".data", &[0; 8]).in_section(
            "__ksymtab_lookalike",
            ".data",
            0,
        );
        assert!(
            parse_module(&elf.build())
                .expect("valid")
                .exports
                .is_empty()
        );
    }

    #[test]
    fn crc_offset_past_its_section_is_an_error() {
        let elf = TestElf::x86_64()
            .section("__ksymtab", &[0; 12])
            .section("__kcrctab", &[0; 4])
            .in_section("__crc_f", "__kcrctab", 2)
            .in_section("__ksymtab_f", "__ksymtab", 0);
        let err = parse_module(&elf.build()).expect_err("CRC straddles the end");
        assert!(
            matches!(err, ElfError::SymbolValueOutOfBounds { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn crc_in_a_missing_section_is_an_error() {
        let elf = TestElf::x86_64()
            .section("__ksymtab", &[0; 12])
            .symbol("__crc_f", 40, 0, STB_LOCAL)
            .in_section("__ksymtab_f", "__ksymtab", 0);
        let err = parse_module(&elf.build()).expect_err("section 40 does not exist");
        assert!(
            matches!(err, ElfError::SymbolSection { section: 40, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn namespace_without_nul_is_an_error() {
        let elf = TestElf::x86_64()
            .section("__ksymtab", &[0; 12])
            .section("__ksymtab_strings", b"f\0NS")
            .in_section("__kstrtabns_f", "__ksymtab_strings", 2)
            .in_section("__ksymtab_f", "__ksymtab", 0);
        let err = parse_module(&elf.build()).expect_err("unterminated namespace");
        assert!(
            matches!(err, ElfError::SymbolValueOutOfBounds { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn modinfo_fields_are_lifted() {
        let elf = TestElf::x86_64().section(
            ".modinfo",
            b"import_ns=FIXTURE_NS\0depends=fxexport\0license=GPL\0\0name=fxconsume\0\
              vermagic=6.1.0-50-amd64 SMP preempt mod_unload modversions \0",
        );
        let facts = parse_module(&elf.build()).expect("valid");
        assert_eq!(facts.name.as_deref(), Some("fxconsume"));
        assert_eq!(facts.license.as_deref(), Some("GPL"));
        assert_eq!(
            facts.vermagic.as_deref(),
            Some("6.1.0-50-amd64 SMP preempt mod_unload modversions ")
        );
        assert_eq!(facts.import_ns, ["FIXTURE_NS"]);
    }

    #[test]
    fn signature_is_split_off() {
        let builder = TestElf::x86_64();
        let data = basic_versions(builder.writer, SAMPLE);
        let unsigned = builder.section("__versions", &data).build();
        let signed = sign(unsigned.clone(), 681);
        let facts = parse_module(&signed).expect("valid");
        assert_eq!(entries(&facts), SAMPLE);
        assert_eq!(facts, parse_module(&unsigned).expect("valid"));
    }

    #[test]
    fn sections_must_lie_inside_the_elf_part_not_the_signature() {
        let mut elf = TestElf::x86_64().section(".modinfo", b"name=x\0").build();
        let shoff = usize::try_from(u64::from_le_bytes(
            elf[0x28..0x30].try_into().expect("8 bytes"),
        ))
        .expect("small");
        // Grow .modinfo (section 1) so that it only fits if the signature were ELF data.
        let size_field = shoff + 64 + 32;
        let size = u64::from_le_bytes(elf[size_field..size_field + 8].try_into().expect("8"));
        let offset = u64::from_le_bytes(elf[size_field - 8..size_field].try_into().expect("8"));
        let grown = elf.len() as u64 - offset + 16;
        assert!(grown > size);
        elf[size_field..size_field + 8].copy_from_slice(&grown.to_le_bytes());
        let err = parse_module(&sign(elf, 100)).expect_err("section spills into signature");
        assert!(
            matches!(err, ElfError::SectionOutOfBounds { index: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn rejects_non_elf_and_non_relocatable_files() {
        assert!(matches!(parse_module(b""), Err(ElfError::NotElf)));
        assert!(matches!(parse_module(b"MZ\x90\x00"), Err(ElfError::NotElf)));
        let mut exec = TestElf::x86_64();
        exec.e_type = ET_EXEC;
        assert!(matches!(
            parse_module(&exec.build()),
            Err(ElfError::NotRelocatable(ET_EXEC))
        ));
    }

    #[test]
    fn bad_signature_trailer_is_reported() {
        let mut file = TestElf::x86_64().build();
        file.extend([0, 0, 2, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        file.extend(SIGNATURE_MAGIC);
        assert!(matches!(parse_module(&file), Err(ElfError::Signature(_))));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = exporting_module(false)
            .section(
                "__versions",
                &basic_versions(TestElf::x86_64().writer, SAMPLE),
            )
            .build();
        assert!(parse_module(&full).is_ok());
        for len in 0..full.len() {
            assert!(parse_module(&full[..len]).is_err(), "truncated to {len}");
        }
    }

    #[test]
    fn section_header_table_is_validated_before_goblin_sees_it() {
        let good = TestElf::x86_64().build();
        let cases: [(usize, &[u8]); 4] = [
            (0x3c, &[0, 0]),                                           // e_shnum = 0
            (0x3a, &[40, 0]),      // e_shentsize of ELF32 in an ELF64
            (0x3e, &[0xff, 0x00]), // e_shstrndx out of range
            (0x28, &[0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // e_shoff overflows
        ];
        for (offset, patch) in cases {
            let mut bytes = good.clone();
            bytes[offset..offset + patch.len()].copy_from_slice(patch);
            let err = parse_module(&bytes).expect_err("bad table");
            assert!(
                matches!(err, ElfError::SectionTable(_)),
                "patch at {offset:#x}: {err:?}"
            );
        }
    }

    /// Serves copies of the ranges asked for, as a file source does, counting them.
    struct Ranges<'b> {
        bytes: &'b [u8],
        read: usize,
        fail_after: usize,
    }

    impl<'a> ModuleSource<'a> for Ranges<'_> {
        fn file_len(&self) -> u64 {
            self.bytes.len() as u64
        }

        fn read(&mut self, offset: u64, len: usize) -> Option<Cow<'a, [u8]>> {
            if self.fail_after == 0 {
                return None;
            }
            self.fail_after -= 1;
            let start = usize::try_from(offset).ok()?;
            self.read += len;
            Some(Cow::Owned(self.bytes.get(start..start + len)?.to_vec()))
        }
    }

    #[test]
    fn read_by_ranges_gives_the_facts_of_the_whole_file_and_skips_the_rest() {
        let builder = exporting_module(false);
        let versions = basic_versions(builder.writer, SAMPLE);
        let module = builder
            .section("__versions", &versions)
            .section(".text", &[0xcc; 4096])
            .section(".modinfo", b"name=x\0license=GPL\0")
            .undefined("msleep")
            .build();
        let module = sign(module, 300);
        let mut ranges = Ranges {
            bytes: &module,
            read: 0,
            fail_after: usize::MAX,
        };
        let facts = parse_module_from(&mut ranges).expect("valid");
        assert_eq!(facts, parse_module(&module).expect("valid"));
        assert!(
            ranges.read < module.len() - 4096,
            "read {} bytes",
            ranges.read
        );
        for fail_after in 0..8 {
            let mut failing = Ranges {
                bytes: &module,
                read: 0,
                fail_after,
            };
            assert!(
                matches!(parse_module_from(&mut failing), Err(ElfError::Unreadable)),
                "read {fail_after} ranges"
            );
        }
    }

    #[test]
    fn strings_read_alike_whether_the_table_is_all_utf8_or_not() {
        for table in [&b"\0abc\0d\0tail"[..], b"\0abc\0\xff\0d\0tail"] {
            let strings = StringTable::new(table);
            for offset in 0..table.len() + 2 {
                assert_eq!(strings.get(offset), string_at(table, offset), "{offset}");
            }
        }
        let strings = StringTable::new(b"\0\xc3\xa9t\xc3\xa9\0");
        assert_eq!(strings.get(1), Some("été"));
        // Inside a character: not a string.
        assert_eq!(strings.get(2), None);
        assert_eq!(string_at(b"\0\xc3\xa9t\xc3\xa9\0", 2), None);
    }

    mod no_panic {
        use super::*;
        use proptest::prelude::*;

        fn sample_module() -> Vec<u8> {
            let builder = exporting_module(true);
            let versions = basic_versions(builder.writer, SAMPLE);
            let crcs = ext_crcs(builder.writer, &[1, 2]);
            builder
                .section("__versions", &versions)
                .section("__version_ext_crcs", &crcs)
                .section("__version_ext_names", b"a\0b\0")
                .section(".modinfo", b"name=x\0license=GPL\0")
                .undefined("msleep")
                .build()
        }

        proptest! {
            #[test]
            fn mutated_modules_never_panic(
                edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
                cut in any::<prop::sample::Index>(),
                truncate in any::<bool>(),
            ) {
                let mut bytes = sample_module();
                for (index, value) in edits {
                    let position = index.index(bytes.len());
                    bytes[position] = value;
                }
                if truncate {
                    bytes.truncate(cut.index(bytes.len()));
                }
                let _ = parse_module(&bytes);
            }
        }
    }
}
