//! What one run was asked to do, validated: the only thing the rest of the program sees of the
//! command line.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    AddModules,
    RemoveModules,
    AddKernel(String),
    RemoveKernel(String),
    /// Audit the kernels named (all installed ones when none is); never changes anything.
    Check(Vec<String>),
    /// Bring every installed kernel to the state `Check` expects.
    Sync,
    /// For the modules on stdin, a table of every kernel's verdict; never changes anything.
    Explain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub mode: Mode,
    pub dry_run: bool,
    pub no_initramfs: bool,
    pub verbose: bool,
    /// Report every event as a JSON line on stdout instead of `--verbose` text.
    pub json: bool,
    /// Colour in `--explain` tables (stdout is a terminal).
    pub colour: bool,
    /// `/` on the live system.
    pub base: PathBuf,
    pub dracut: PathBuf,
    /// Program and arguments, word-split, run as `PROG ARGS... RELEASE`.
    pub check_initramfs_prog: Option<Vec<String>>,
}

impl Config {
    pub fn live_system(&self) -> bool {
        self.base == std::path::Path::new("/")
    }
}
