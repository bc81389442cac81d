//! Facts shared by the parsers and the decision: what a kernel or module exports, what a
//! module imports, and the CRCs it was built against.

/// A symbol offered to modules, by vmlinux or by a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub name: String,
    /// `None` when the exporter was built without modversions. The kernel also treats a CRC
    /// of 0 as "no CRC" (docs/compat-rules.md, "CRC comparison"), which the decision handles,
    /// not the parsers.
    pub crc: Option<u32>,
    pub gpl_only: bool,
    pub namespace: Option<String>,
}

/// A symbol a module needs (an undefined `.symtab` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub name: String,
    /// Weak undefined symbols may stay unresolved; the kernel sets them to 0.
    pub weak: bool,
}

/// One record of a module's modversions table: the CRC it was built against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub name: String,
    pub crc: u32,
}

/// Which modversions table a module carries; the kernel prefers the extended one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionsKind {
    /// `__versions`: fixed 64-byte records.
    Basic,
    /// `__version_ext_crcs` + `__version_ext_names` (6.14+).
    Extended,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionTable {
    pub kind: VersionsKind,
    pub entries: Vec<VersionEntry>,
}
