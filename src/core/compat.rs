//! The decision: would each candidate module load on a target kernel, and if not, why.
//!
//! Follows the loader's checks in its order (docs/compat-rules.md, "What the loader checks"):
//! the size of `struct module`, `module_layout` and every other modversions record, vermagic,
//! then each imported symbol (missing or its provider not installed, GPL-only, CRC, namespace).
//! Candidates may export symbols to each other; a candidate whose provider does not fit falls
//! too, to a fixed point, and members of a dependency cycle fall together (docs/compat-rules.md,
//! "Candidates that need each other").

use std::collections::BTreeSet;
use std::sync::Arc;

use hashbrown::HashMap;

use crate::core::abi::Export;
use crate::core::elf::ModuleFacts;
use crate::core::kernel::{KernelAbi, normalize_module_name, vermagic_tail};
use crate::core::needs::{NeededImport, Needs, Resolved};

/// A module considered for a kernel's `weak-updates/`.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Module name, as the kernel knows it.
    pub name: &'a str,
    /// The release the module was built for.
    pub built_for: &'a str,
    pub facts: &'a ModuleFacts,
}

/// Why a module does not fit. Each variant is one of the loader's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The module's `struct module` (`.gnu.linkonce.this_module`) is not the size of the
    /// kernel's: kABI macros can change that struct while `module_layout` keeps its CRC.
    ThisModuleSize { module: u64, kernel: u64 },
    /// No modversions at all: the loader only force-loads it, and only on the exact release.
    NoModversions,
    /// No vermagic: the loader only force-loads it.
    NoVermagic,
    /// The build options after the release differ (SMP, preempt model, ...).
    VermagicMismatch { module: Arc<str>, kernel: Arc<str> },
    /// The module was built against another version of the symbol.
    CrcMismatch {
        symbol: Arc<str>,
        module_crc: u32,
        kernel_crc: u32,
        provider: Arc<str>,
    },
    /// Nothing in the kernel, its modules or the other candidates exports the symbol.
    MissingSymbol { symbol: Arc<str> },
    /// Symvers gives the symbol to a module that is not installed for the kernel, and no
    /// other candidate offers it.
    ProviderNotInstalled {
        symbol: Arc<str>,
        provider: Arc<str>,
    },
    /// GPL-only exports are invisible to modules without a GPL-compatible licence.
    GplOnly {
        symbol: Arc<str>,
        provider: Arc<str>,
        license: Option<Arc<str>>,
    },
    /// The export lives in a namespace the module does not import.
    NamespaceNotImported {
        symbol: Arc<str>,
        namespace: Arc<str>,
        provider: Arc<str>,
    },
    /// The export is restricted to modules whose names match `module:<globs>`.
    RestrictedExport {
        symbol: Arc<str>,
        namespace: Arc<str>,
        provider: Arc<str>,
    },
    /// The symbol comes from another candidate that does not fit itself.
    ProviderDoesNotFit {
        symbol: Arc<str>,
        provider: Arc<str>,
    },
    /// The module needs symbols of candidates that in turn need it: the loader cannot load
    /// any of them first.
    DependencyCycle { members: Vec<String> },
}

impl Reason {
    /// The symbol the reason is about, if it is about one.
    pub fn symbol(&self) -> Option<&str> {
        match self {
            Reason::CrcMismatch { symbol, .. }
            | Reason::MissingSymbol { symbol }
            | Reason::ProviderNotInstalled { symbol, .. }
            | Reason::GplOnly { symbol, .. }
            | Reason::NamespaceNotImported { symbol, .. }
            | Reason::RestrictedExport { symbol, .. }
            | Reason::ProviderDoesNotFit { symbol, .. } => Some(symbol),
            _ => None,
        }
    }

    /// The module (or `vmlinux`) the reason names as the symbol's provider, if it names one.
    pub fn provider(&self) -> Option<&str> {
        match self {
            Reason::CrcMismatch { provider, .. }
            | Reason::ProviderNotInstalled { provider, .. }
            | Reason::GplOnly { provider, .. }
            | Reason::NamespaceNotImported { provider, .. }
            | Reason::RestrictedExport { provider, .. }
            | Reason::ProviderDoesNotFit { provider, .. } => Some(provider),
            _ => None,
        }
    }

    /// A stable short name of the rule, for machine-readable output.
    pub fn rule(&self) -> &'static str {
        match self {
            Reason::ThisModuleSize { .. } => "this-module-size",
            Reason::NoModversions => "no-modversions",
            Reason::NoVermagic => "no-vermagic",
            Reason::VermagicMismatch { .. } => "vermagic",
            Reason::CrcMismatch { .. } => "crc",
            Reason::MissingSymbol { .. } => "missing-symbol",
            Reason::ProviderNotInstalled { .. } => "provider-not-installed",
            Reason::GplOnly { .. } => "gpl-only",
            Reason::NamespaceNotImported { .. } => "namespace",
            Reason::RestrictedExport { .. } => "restricted-export",
            Reason::ProviderDoesNotFit { .. } => "provider-does-not-fit",
            Reason::DependencyCycle { .. } => "dependency-cycle",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::ThisModuleSize { module, kernel } => write!(
                f,
                ".gnu.linkonce.this_module: struct module of {module} bytes, the kernel's is {kernel}"
            ),
            Reason::NoModversions => write!(f, "built without modversions"),
            Reason::NoVermagic => write!(f, "has no vermagic"),
            Reason::VermagicMismatch { module, kernel } => write!(
                f,
                "vermagic '{}' differs from the kernel's '{}'",
                module.trim_end(),
                kernel.trim_end()
            ),
            Reason::CrcMismatch {
                symbol,
                module_crc,
                kernel_crc,
                provider,
            } => write!(
                f,
                "{symbol}: module wants CRC 0x{module_crc:08x}, {provider} has 0x{kernel_crc:08x}"
            ),
            Reason::MissingSymbol { symbol } => write!(f, "{symbol}: not exported by the kernel"),
            Reason::ProviderNotInstalled { symbol, provider } => write!(
                f,
                "{symbol}: exported by {provider}, which is not installed for the kernel"
            ),
            Reason::GplOnly {
                symbol,
                provider,
                license,
            } => write!(
                f,
                "{symbol}: GPL-only export of {provider}, module licence is '{}'",
                license.as_deref().unwrap_or("none")
            ),
            Reason::NamespaceNotImported {
                symbol,
                namespace,
                provider,
            } => write!(
                f,
                "{symbol}: {provider} exports it in namespace {namespace}, not imported"
            ),
            Reason::RestrictedExport {
                symbol,
                namespace,
                provider,
            } => write!(f, "{symbol}: {provider} exports it only to {namespace}"),
            Reason::ProviderDoesNotFit { symbol, provider } => {
                write!(f, "{symbol}: its provider {provider} does not fit")
            }
            Reason::DependencyCycle { members } => {
                write!(f, "dependency cycle: {}", members.join(" -> "))
            }
        }
    }
}

/// The outcome for one candidate on one kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Empty when the module fits.
    pub reasons: Vec<Reason>,
    /// Indices of the candidates this one takes symbols from (its dependency group).
    pub uses: BTreeSet<usize>,
    /// The kernel ships a module of the same name, which depmod's search order puts first.
    pub shadowed: bool,
}

impl Verdict {
    pub fn fits(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// Licences the kernel treats as GPL-compatible (`license_is_gpl_compatible`).
const GPL_COMPATIBLE: &[&str] = &[
    "GPL",
    "GPL v2",
    "GPL and additional rights",
    "Dual BSD/GPL",
    "Dual MIT/GPL",
    "Dual MPL/GPL",
];

/// Symbols the module loader supplies itself; they are never exported.
const LOADER_SYMBOLS: &[&str] = &["__this_module", "_GLOBAL_OFFSET_TABLE_", ".TOC."];

pub fn is_gpl_compatible(license: Option<&str>) -> bool {
    license.is_some_and(|license| GPL_COMPATIBLE.contains(&license))
}

/// Decides every candidate against one kernel.
pub fn decide(kernel: &KernelAbi, candidates: &[Candidate]) -> Vec<Verdict> {
    let (symbols, needs) = Needs::of_all(candidates.iter().map(|candidate| candidate.facts));
    let resolved = Resolved::new(kernel, &symbols);
    let prepared: Vec<Prepared> = candidates
        .iter()
        .zip(&needs)
        .map(|(candidate, needs)| Prepared::new(kernel, &resolved, needs, *candidate))
        .collect();
    let chosen: Vec<&Prepared> = prepared.iter().collect();
    decide_prepared(&chosen)
}

/// Decides candidates prepared against one kernel (see [`Prepared`]): what they take from each
/// other, to a fixed point. Deciding again with another choice of candidates redoes only that.
pub fn decide_prepared(candidates: &[&Prepared]) -> Vec<Verdict> {
    let offered = candidate_exports(candidates);
    let mut fallen = vec![false; candidates.len()];
    let mut verdicts = vec![Verdict::default(); candidates.len()];
    // A verdict depends on the other candidates only through the ones it `uses`: after the
    // first round, only the users of a candidate that just fell are checked again.
    let mut pending = vec![true; candidates.len()];
    loop {
        let context = Context {
            candidates,
            offered: &offered,
            fallen: &fallen,
        };
        for (index, candidate) in candidates.iter().enumerate() {
            if pending[index] && !fallen[index] {
                verdicts[index] = context.check(candidate);
            }
        }
        let mut newly_fallen = vec![false; candidates.len()];
        let mut changed = false;
        for (index, verdict) in verdicts.iter().enumerate() {
            if !fallen[index] && !verdict.fits() {
                fallen[index] = true;
                newly_fallen[index] = true;
                changed = true;
            }
        }
        if !changed {
            let standing = fallen.clone();
            if !break_cycles(candidates, &mut verdicts, &mut fallen) {
                return verdicts;
            }
            for (index, newly) in newly_fallen.iter_mut().enumerate() {
                *newly = fallen[index] && !standing[index];
            }
        }
        for (index, verdict) in verdicts.iter().enumerate() {
            pending[index] = !fallen[index] && verdict.uses.iter().any(|&used| newly_fallen[used]);
        }
    }
}

/// Symbols candidates offer each other: the first candidate exporting a name wins. A
/// candidate shadowed by the kernel's own module of that name offers nothing, because the
/// kernel's module is the one that loads.
fn candidate_exports<'a>(candidates: &[&Prepared<'a>]) -> HashMap<&'a str, (usize, &'a Export)> {
    let mut offered = HashMap::new();
    for (index, candidate) in candidates.iter().enumerate() {
        if candidate.shadowed {
            continue;
        }
        for export in &candidate.candidate.facts.exports {
            offered
                .entry(export.name.as_str())
                .or_insert((index, export));
        }
    }
    offered
}

/// A candidate checked against the kernel alone: every check whose outcome no other candidate
/// can change is made once, and the symbols the kernel does not offer are kept for each
/// decision to resolve among the candidates. Made once per kernel and build, it is what lets a
/// plan decide many choices of builds cheaply.
#[derive(Debug)]
pub struct Prepared<'a> {
    pub candidate: Candidate<'a>,
    /// The kernel ships a module of the same name.
    shadowed: bool,
    gpl_ok: bool,
    /// The loader's checks in its order.
    steps: Vec<Step<'a>>,
}

/// One of a prepared candidate's checks.
#[derive(Debug)]
enum Step<'a> {
    /// Failed against the kernel, whatever the other candidates.
    Fails(Reason),
    /// The kernel does not offer the symbol: another candidate may, else `unoffered` says
    /// what the loader does.
    FromCandidates {
        symbol: &'a str,
        need: Need,
        unoffered: Option<Reason>,
    },
}

#[derive(Debug, Clone, Copy)]
enum Need {
    /// A modversions record without an import (`module_layout`): only its CRC is checked.
    Version(u32),
    /// An import, with the CRC the module was built against, if it has one.
    Import(Option<u32>),
}

impl<'a> Prepared<'a> {
    /// `candidate` checked against `kernel`, whose offer of each symbol of the run is
    /// `resolved`; `needs` are the candidate's own.
    pub fn new(
        kernel: &KernelAbi,
        resolved: &Resolved,
        needs: &Needs<'a>,
        candidate: Candidate<'a>,
    ) -> Self {
        let facts = candidate.facts;
        let mut prepared = Prepared {
            candidate,
            shadowed: kernel.ships_module(candidate.name),
            gpl_ok: is_gpl_compatible(facts.license.as_deref()),
            steps: Vec::new(),
        };
        prepared.check_this_module_size(kernel);
        if facts.versions.is_none() && candidate.built_for != kernel.release {
            prepared.fails(Reason::NoModversions);
        }
        prepared.check_unreferenced_versions(resolved, needs);
        prepared.check_vermagic(kernel);
        for import in &needs.imports {
            prepared.check_import(kernel, resolved, import);
        }
        prepared
    }

    fn fails(&mut self, reason: Reason) {
        self.steps.push(Step::Fails(reason));
    }

    /// The loader's first check of the image: its `struct module` is copied over the
    /// kernel's, so the sizes must agree. Skipped when either size is unknown.
    fn check_this_module_size(&mut self, kernel: &KernelAbi) {
        let (Some(module), Some(kernel)) = (
            self.candidate.facts.this_module_size,
            kernel.this_module_size,
        ) else {
            return;
        };
        if module != kernel {
            self.fails(Reason::ThisModuleSize { module, kernel });
        }
    }

    /// Records modpost added without an import, `module_layout` above all: the loader checks
    /// it before anything else.
    fn check_unreferenced_versions(&mut self, resolved: &Resolved, needs: &Needs<'a>) {
        for &(symbol, crc) in &needs.versions_only {
            match resolved.get(symbol.id) {
                Some((export, provider)) => {
                    if let Some(reason) =
                        crc_mismatch(symbol.name, crc, export, || provider.to_string())
                    {
                        self.fails(reason);
                    }
                }
                None => self.steps.push(Step::FromCandidates {
                    symbol: symbol.name,
                    need: Need::Version(crc),
                    unoffered: None,
                }),
            }
        }
    }

    fn check_vermagic(&mut self, kernel: &KernelAbi) {
        let Some(vermagic) = &self.candidate.facts.vermagic else {
            self.fails(Reason::NoVermagic);
            return;
        };
        let Some(kernel_tail) = &kernel.vermagic_tail else {
            return;
        };
        let module_tail = vermagic_tail(vermagic);
        if module_tail != kernel_tail {
            self.fails(Reason::VermagicMismatch {
                module: module_tail.into(),
                kernel: kernel_tail.as_str().into(),
            });
        }
    }

    fn check_import(&mut self, kernel: &KernelAbi, resolved: &Resolved, import: &NeededImport<'a>) {
        let symbol = import.symbol.name;
        let Some((export, provider)) = resolved.get(import.symbol.id) else {
            let unoffered = if import.weak || LOADER_SYMBOLS.contains(&symbol) {
                None
            } else {
                Some(match kernel.absent_provider(symbol) {
                    Some(provider) => Reason::ProviderNotInstalled {
                        symbol: symbol.into(),
                        provider: provider.into(),
                    },
                    None => Reason::MissingSymbol {
                        symbol: symbol.into(),
                    },
                })
            };
            self.steps.push(Step::FromCandidates {
                symbol,
                need: Need::Import(import.crc),
                unoffered,
            });
            return;
        };
        let mut reasons = Vec::new();
        self.check_export(
            symbol,
            export,
            import.crc,
            || provider.to_string(),
            &mut reasons,
        );
        for reason in reasons {
            self.fails(reason);
        }
    }

    /// The checks of an import the export resolves: GPL-only, CRC, namespace.
    fn check_export(
        &self,
        symbol: &str,
        export: &Export,
        crc: Option<u32>,
        provider: impl Fn() -> String,
        reasons: &mut Vec<Reason>,
    ) {
        if export.gpl_only && !self.gpl_ok {
            reasons.push(Reason::GplOnly {
                symbol: symbol.into(),
                provider: provider().into(),
                license: self.candidate.facts.license.as_deref().map(Arc::from),
            });
            return;
        }
        if let Some(reason) = crc.and_then(|crc| crc_mismatch(symbol, crc, export, &provider)) {
            reasons.push(reason);
        }
        if let Some(reason) = self.namespace_refused(symbol, export, provider) {
            reasons.push(reason);
        }
    }

    fn namespace_refused(
        &self,
        symbol: &str,
        export: &Export,
        provider: impl Fn() -> String,
    ) -> Option<Reason> {
        let namespace = export.namespace.as_deref().filter(|ns| !ns.is_empty())?;
        if let Some(globs) = namespace.strip_prefix("module:") {
            let name = normalize_module_name(self.candidate.name);
            let allowed = globs
                .split(',')
                .any(|glob| glob_matches(&normalize_module_name(glob), &name));
            return (!allowed).then(|| Reason::RestrictedExport {
                symbol: symbol.into(),
                namespace: namespace.into(),
                provider: provider().into(),
            });
        }
        let imported = self
            .candidate
            .facts
            .import_ns
            .iter()
            .any(|ns| ns == namespace);
        (!imported).then(|| Reason::NamespaceNotImported {
            symbol: symbol.into(),
            namespace: namespace.into(),
            provider: provider().into(),
        })
    }
}

/// An exporter without a CRC (or with CRC 0, an asm export) accepts any.
fn crc_mismatch(
    symbol: &str,
    module_crc: u32,
    export: &Export,
    provider: impl Fn() -> String,
) -> Option<Reason> {
    let kernel_crc = export.crc.filter(|crc| *crc != 0)?;
    (kernel_crc != module_crc).then(|| Reason::CrcMismatch {
        symbol: symbol.into(),
        module_crc,
        kernel_crc,
        provider: provider().into(),
    })
}

/// One decision's view of the other candidates.
struct Context<'k, 'a> {
    candidates: &'k [&'k Prepared<'a>],
    offered: &'k HashMap<&'a str, (usize, &'a Export)>,
    fallen: &'k [bool],
}

impl Context<'_, '_> {
    fn check(&self, prepared: &Prepared) -> Verdict {
        let mut verdict = Verdict {
            shadowed: prepared.shadowed,
            ..Verdict::default()
        };
        for step in &prepared.steps {
            match step {
                Step::Fails(reason) => verdict.reasons.push(reason.clone()),
                Step::FromCandidates {
                    symbol,
                    need,
                    unoffered,
                } => match self.offered.get(symbol) {
                    Some(&(index, export)) => {
                        self.check_offered(prepared, symbol, *need, index, export, &mut verdict)
                    }
                    None => verdict.reasons.extend(unoffered.iter().cloned()),
                },
            }
        }
        verdict
    }

    fn check_offered(
        &self,
        prepared: &Prepared,
        symbol: &str,
        need: Need,
        index: usize,
        export: &Export,
        verdict: &mut Verdict,
    ) {
        let provider = || self.candidates[index].candidate.name.to_owned();
        let crc = match need {
            Need::Version(crc) => {
                verdict
                    .reasons
                    .extend(crc_mismatch(symbol, crc, export, provider));
                return;
            }
            Need::Import(crc) => crc,
        };
        verdict.uses.insert(index);
        if self.fallen[index] {
            verdict.reasons.push(Reason::ProviderDoesNotFit {
                symbol: symbol.into(),
                provider: provider().into(),
            });
            return;
        }
        prepared.check_export(symbol, export, crc, provider, &mut verdict.reasons);
    }
}

/// Marks every candidate on a dependency cycle among the still-standing ones as fallen.
/// Returns whether any was found.
fn break_cycles(candidates: &[&Prepared], verdicts: &mut [Verdict], fallen: &mut [bool]) -> bool {
    let mut found = false;
    for cycle in cycles(verdicts, fallen) {
        let members: Vec<String> = cycle
            .iter()
            .map(|index| candidates[*index].candidate.name.to_owned())
            .collect();
        for index in cycle {
            verdicts[index].reasons.push(Reason::DependencyCycle {
                members: members.clone(),
            });
            fallen[index] = true;
            found = true;
        }
    }
    found
}

/// Strongly connected components of more than one standing candidate (Tarjan), over the
/// `uses` edges between standing candidates.
fn cycles(verdicts: &[Verdict], fallen: &[bool]) -> Vec<Vec<usize>> {
    struct Walk<'v> {
        verdicts: &'v [Verdict],
        fallen: &'v [bool],
        index_of: HashMap<usize, usize>,
        low: HashMap<usize, usize>,
        stack: Vec<usize>,
        on_stack: BTreeSet<usize>,
        found: Vec<Vec<usize>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, node: usize) {
            let order = self.index_of.len();
            self.index_of.insert(node, order);
            self.low.insert(node, order);
            self.stack.push(node);
            self.on_stack.insert(node);
            for &next in &self.verdicts[node].uses {
                if self.fallen[next] {
                    continue;
                }
                if !self.index_of.contains_key(&next) {
                    self.visit(next);
                    let low = self.low[&node].min(self.low[&next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(&next) {
                    let low = self.low[&node].min(self.index_of[&next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[&node] == self.index_of[&node] {
                let mut component = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack.remove(&member);
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort_unstable();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        verdicts,
        fallen,
        index_of: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in (0..verdicts.len()).filter(|node| !fallen[*node]) {
        if !walk.index_of.contains_key(&node) {
            walk.visit(node);
        }
    }
    walk.found
}

/// `*` and `?` globs, as module-name lists of `EXPORT_SYMBOL_FOR_MODULES` use them.
fn glob_matches(glob: &str, name: &str) -> bool {
    let (glob, name) = (glob.as_bytes(), name.as_bytes());
    let (mut g, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        match glob.get(g) {
            Some(b'*') => {
                backtrack = Some((g, n));
                g += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                g += 1;
                n += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    g = star + 1;
                    n = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn globs_match_module_names() {
        assert!(glob_matches("kvm*", "kvm_intel"));
        assert!(glob_matches("kvm", "kvm"));
        assert!(!glob_matches("kvm", "kvm_amd"));
        assert!(glob_matches("*_amd", "kvm_amd"));
        assert!(glob_matches("k?m", "kvm"));
        assert!(!glob_matches("", "kvm"));
        assert!(glob_matches("*", ""));
    }
}
