//! What a module needs from whatever kernel it is offered to, worked out once per module, with
//! every symbol name numbered once per run ([`Symbols`]); and what one kernel offers for each
//! of those numbers ([`Resolved`]). A run offering 1,121 modules to three kernels thus looks
//! each of the ~8,000 distinct symbols up once per kernel, not each of the ~56,000 imports.

use std::sync::OnceLock;

use hashbrown::HashMap;

use crate::core::abi::Export;
use crate::core::elf::ModuleFacts;
use crate::core::kernel::{KernelAbi, Provider};

/// A symbol name's number in its run's [`Symbols`].
pub type SymbolId = u32;

/// Every symbol name some module of a run needs, numbered in the order first met.
#[derive(Debug, Default)]
pub struct Symbols<'a> {
    ids: HashMap<&'a str, SymbolId>,
    names: Vec<&'a str>,
}

impl<'a> Symbols<'a> {
    pub fn intern(&mut self, name: &'a str) -> SymbolId {
        *self.ids.entry(name).or_insert_with(|| {
            self.names.push(name);
            SymbolId::try_from(self.names.len() - 1).unwrap_or(SymbolId::MAX)
        })
    }

    pub fn names(&self) -> &[&'a str] {
        &self.names
    }
}

/// What a module needs from any kernel, by name, in the loader's order. Worked out for each
/// module on its own (on any core); [`Needs::number`] then numbers the names for the run.
#[derive(Debug, Default)]
pub struct Wants<'a> {
    /// Modversions records without an import (`module_layout` above all), in table order,
    /// with their CRCs: only those are checked.
    versions_only: Vec<(&'a str, u32)>,
    /// Imports under the name they are exported by: weak or not, and the CRC the module was
    /// built against when its modversions list the symbol.
    imports: Vec<(&'a str, bool, Option<u32>)>,
}

impl<'a> Wants<'a> {
    pub fn of(facts: &'a ModuleFacts) -> Self {
        let mut wants = Wants::default();
        let mut crcs: HashMap<&str, u32> = HashMap::new();
        if let Some(table) = &facts.versions {
            let imported: hashbrown::HashSet<&str> = facts
                .imports
                .iter()
                .map(|import| import.name.as_str())
                .collect();
            for entry in &table.entries {
                crcs.insert(&entry.name, entry.crc);
                if !imported.contains(entry.name.as_str()) {
                    wants.versions_only.push((&entry.name, entry.crc));
                }
            }
        }
        wants.imports = facts
            .imports
            .iter()
            .map(|import| {
                let name = import_name(facts, &import.name);
                (name, import.weak, crcs.get(name).copied())
            })
            .collect();
        wants
    }
}

/// A symbol a module needs, with its number.
#[derive(Debug, Clone, Copy)]
pub struct Needed<'a> {
    pub name: &'a str,
    pub id: SymbolId,
}

/// One import, under the name it is exported by.
#[derive(Debug, Clone, Copy)]
pub struct NeededImport<'a> {
    pub symbol: Needed<'a>,
    pub weak: bool,
    /// The CRC the module was built against, when its modversions list the symbol.
    pub crc: Option<u32>,
}

/// [`Wants`] with every name numbered in the run's [`Symbols`].
#[derive(Debug, Default)]
pub struct Needs<'a> {
    pub versions_only: Vec<(Needed<'a>, u32)>,
    pub imports: Vec<NeededImport<'a>>,
}

impl<'a> Needs<'a> {
    pub fn number(wants: Wants<'a>, symbols: &mut Symbols<'a>) -> Self {
        let mut needed = |name: &'a str| Needed {
            name,
            id: symbols.intern(name),
        };
        Needs {
            versions_only: wants
                .versions_only
                .into_iter()
                .map(|(name, crc)| (needed(name), crc))
                .collect(),
            imports: wants
                .imports
                .into_iter()
                .map(|(name, weak, crc)| NeededImport {
                    symbol: needed(name),
                    weak,
                    crc,
                })
                .collect(),
        }
    }

    /// What `facts` need, numbered in `symbols`.
    pub fn of(facts: &'a ModuleFacts, symbols: &mut Symbols<'a>) -> Self {
        Needs::number(Wants::of(facts), symbols)
    }

    /// What each of `modules` needs, numbered in one table, in order.
    pub fn of_all(modules: impl IntoIterator<Item = &'a ModuleFacts>) -> (Symbols<'a>, Vec<Self>) {
        let mut symbols = Symbols::default();
        let needs = modules
            .into_iter()
            .map(|facts| Needs::of(facts, &mut symbols))
            .collect();
        (symbols, needs)
    }
}

/// The name an import is exported under: ppc64 ELFv1 modules import functions by their
/// dot-names (`.foo` for `foo`); `.TOC.` is the loader's own.
fn import_name<'n>(facts: &ModuleFacts, name: &'n str) -> &'n str {
    if facts.machine == goblin::elf::header::EM_PPC64 && name != ".TOC." {
        name.strip_prefix('.').unwrap_or(name)
    } else {
        name
    }
}

/// What one kernel offers for each symbol of a run: its [`KernelAbi::lookup`], by number,
/// looked up the first time a build needs it (a kernel that is offered nothing looks nothing
/// up), from any core.
#[derive(Debug)]
pub struct Resolved<'k> {
    kernel: &'k KernelAbi<'k>,
    names: &'k [&'k str],
    found: Vec<OnceLock<Option<(&'k Export, Provider<'k>)>>>,
}

impl<'k> Resolved<'k> {
    pub fn new(kernel: &'k KernelAbi<'k>, symbols: &'k Symbols<'k>) -> Self {
        Resolved {
            kernel,
            names: symbols.names(),
            found: std::iter::repeat_with(OnceLock::new)
                .take(symbols.names().len())
                .collect(),
        }
    }

    pub fn get(&self, symbol: SymbolId) -> Option<(&'k Export, Provider<'k>)> {
        let index = symbol as usize;
        let name = self.names.get(index)?;
        *self
            .found
            .get(index)?
            .get_or_init(|| self.kernel.lookup(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::abi::{Import, VersionEntry, VersionTable, VersionsKind};

    fn facts(machine: u16, imports: &[&str], versions: &[(&str, u32)]) -> ModuleFacts {
        ModuleFacts {
            name: None,
            vermagic: None,
            license: None,
            import_ns: Vec::new(),
            versions: Some(VersionTable {
                kind: VersionsKind::Basic,
                entries: versions
                    .iter()
                    .map(|&(name, crc)| VersionEntry {
                        name: name.to_owned(),
                        crc,
                    })
                    .collect(),
            }),
            imports: imports
                .iter()
                .map(|name| Import {
                    name: (*name).to_owned(),
                    weak: false,
                })
                .collect(),
            exports: Vec::new(),
            this_module_size: None,
            machine,
        }
    }

    fn imports<'a>(needs: &Needs<'a>) -> Vec<(&'a str, SymbolId, Option<u32>)> {
        needs
            .imports
            .iter()
            .map(|import| (import.symbol.name, import.symbol.id, import.crc))
            .collect()
    }

    #[test]
    fn two_modules_share_the_numbers_of_the_symbols_they_both_need() {
        let x86 = goblin::elf::header::EM_X86_64;
        let first = facts(
            x86,
            &["printk", "kfree"],
            &[("module_layout", 1), ("printk", 2)],
        );
        let second = facts(x86, &["kfree", "vzalloc"], &[("kfree", 3)]);
        let mut symbols = Symbols::default();
        let one = Needs::of(&first, &mut symbols);
        let two = Needs::of(&second, &mut symbols);
        assert_eq!(
            symbols.names(),
            ["module_layout", "printk", "kfree", "vzalloc"]
        );
        let versions: Vec<_> = one
            .versions_only
            .iter()
            .map(|(s, crc)| (s.name, s.id, *crc))
            .collect();
        assert_eq!(versions, [("module_layout", 0, 1)]);
        assert_eq!(imports(&one), [("printk", 1, Some(2)), ("kfree", 2, None)]);
        assert_eq!(imports(&two), [("kfree", 2, Some(3)), ("vzalloc", 3, None)]);
    }

    #[test]
    fn ppc64_dot_names_are_needed_under_their_exported_names() {
        let ppc = goblin::elf::header::EM_PPC64;
        let module = facts(ppc, &[".memcpy", ".TOC."], &[("memcpy", 7)]);
        let mut symbols = Symbols::default();
        let needs = Needs::of(&module, &mut symbols);
        assert_eq!(symbols.names(), ["memcpy", ".TOC."]);
        assert_eq!(needs.imports[0].crc, Some(7));
        assert!(needs.versions_only.iter().any(|(s, _)| s.name == "memcpy"));
    }
}
