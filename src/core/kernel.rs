//! What a target kernel offers a module: the symbols of its image and of the modules it ships,
//! the vermagic tail and `struct module` size its modules carry, and the names of those modules
//! (which shadow a weak link of the same name at load time). Symvers lists the exports of every
//! module the kernel was built with; one counts only when that module is installed.

use std::borrow::Cow;

use hashbrown::{HashMap, HashSet};

use crate::core::abi::Export;
use crate::core::symvers::KernelSymvers;

/// Who offers a symbol in the target kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider<'a> {
    Vmlinux,
    /// A module the kernel ships itself, by name.
    Module(&'a str),
}

impl std::fmt::Display for Provider<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Provider::Vmlinux => f.write_str("vmlinux"),
            Provider::Module(name) => f.write_str(name),
        }
    }
}

/// The ABI of one installed kernel, built from its symvers plus what the shell found on disk.
#[derive(Debug)]
pub struct KernelAbi<'s> {
    pub release: String,
    /// vermagic without its first word (the release), e.g. `SMP preempt mod_unload modversions `.
    /// `None` when no module of the kernel was found to read it from.
    pub vermagic_tail: Option<String>,
    /// Size of `struct module` (`.gnu.linkonce.this_module`) in the kernel's own modules.
    /// `None` when no module of the kernel was found to read it from: the size is not checked.
    pub this_module_size: Option<u64>,
    symvers: &'s KernelSymvers,
    /// Exports of out-of-tree modules the kernel ships itself (its `extra/`, `updates/`),
    /// which symvers does not list, with the (normalized) name of their module.
    native_exports: HashMap<&'s str, (&'s Export, Cow<'s, str>)>,
    /// Names (normalized) of every module installed for the kernel: in-tree ones from its
    /// `kernel/`, out-of-tree ones from `extra/` and `updates/`.
    native_modules: HashSet<Cow<'s, str>>,
}

impl<'s> KernelAbi<'s> {
    pub fn new(release: impl Into<String>, symvers: &'s KernelSymvers) -> Self {
        KernelAbi {
            release: release.into(),
            vermagic_tail: None,
            this_module_size: None,
            symvers,
            native_exports: HashMap::new(),
            native_modules: HashSet::new(),
        }
    }

    /// Records a module the kernel ships (found in its `kernel/`, `extra/` or `updates/`).
    pub fn add_native_module(&mut self, name: &'s str, exports: &'s [Export]) {
        let name = normalize_module_name(name);
        for export in exports {
            self.native_exports
                .entry(&export.name)
                .or_insert_with(|| (export, name.clone()));
        }
        self.native_modules.insert(name);
    }

    pub fn ships_module(&self, name: &str) -> bool {
        self.native_modules
            .contains(normalize_module_name(name).as_ref())
    }

    /// The kernel's own provider of `symbol`: vmlinux first, as the loader searches it first,
    /// then the modules the kernel ships. An export symvers gives to a module that is not
    /// installed is not offered (see [`KernelAbi::absent_provider`]).
    pub fn lookup(&self, symbol: &str) -> Option<(&Export, Provider<'_>)> {
        let listed = self.symvers.get(symbol);
        if let Some(entry) = listed.filter(|entry| entry.is_vmlinux()) {
            return Some((entry.export, Provider::Vmlinux));
        }
        if let Some((export, module)) = self.native_exports.get(symbol) {
            return Some((*export, Provider::Module(module)));
        }
        listed
            .map(|entry| (entry.export, module_name_of(entry.module)))
            .filter(|(_, module)| self.ships_module(module))
            .map(|(export, module)| (export, Provider::Module(module)))
    }

    /// The module symvers says exports `symbol`, when the kernel does not have it installed
    /// (normalized, as the loader names it). `None` for vmlinux exports, installed providers
    /// and symbols symvers does not list.
    pub fn absent_provider(&self, symbol: &str) -> Option<String> {
        let entry = self.symvers.get(symbol)?;
        let module = module_name_of(entry.module);
        let absent = !entry.is_vmlinux()
            && !self.native_exports.contains_key(symbol)
            && !self.ships_module(module);
        absent.then(|| normalize_module_name(module).into_owned())
    }
}

/// The kernel treats `-` and `_` in module names as the same character. Most names have no
/// `-` and are borrowed as they are.
pub fn normalize_module_name(name: &str) -> Cow<'_, str> {
    if name.contains('-') {
        Cow::Owned(name.replace('-', "_"))
    } else {
        Cow::Borrowed(name)
    }
}

/// `drivers/net/mii` (a symvers MODULE column) -> `mii`.
fn module_name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A vermagic string without its first word, the kernel release, which the loader ignores for
/// modules that carry CRCs.
pub fn vermagic_tail(vermagic: &str) -> &str {
    vermagic.split_once(' ').map_or("", |(_, tail)| tail)
}

/// The release a vermagic string names (its first word).
pub fn vermagic_release(vermagic: &str) -> &str {
    vermagic.split(' ').next().unwrap_or("")
}
