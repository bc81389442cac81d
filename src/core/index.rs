//! Whether a kernel's `modules.dep` still describes the modules its tree holds outside
//! `kernel/` (`extra/`, `updates/`, and the links of `weak-updates/` that resolve). A run killed
//! between changing links and depmod, or a depmod that failed half-way, leaves them apart; the
//! next run sees it here and runs depmod.
//!
//! depmod lists one module per name (a weak link that the kernel's own module shadows is not
//! listed), so a present module counts as indexed when its name is listed anywhere.

use std::collections::BTreeSet;

use crate::core::kernel::normalize_module_name;

/// Directories below a kernel's own directory whose contents this tool and kmod packages
/// change; `kernel/` belongs to the kernel package.
const WATCHED: &[&str] = &["extra/", "updates/", "weak-updates/"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexMismatch {
    Missing,
    Empty,
    /// Lists a module (path below the kernel's directory) that is no longer there.
    ListsGone(String),
    /// Does not list a module that is there, nor any of its name.
    Lacks(String),
}

impl std::fmt::Display for IndexMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexMismatch::Missing => f.write_str("modules.dep is missing"),
            IndexMismatch::Empty => f.write_str("modules.dep is empty"),
            IndexMismatch::ListsGone(path) => write!(f, "modules.dep lists {path}, which is gone"),
            IndexMismatch::Lacks(path) => write!(f, "modules.dep does not list {path}"),
        }
    }
}

/// `present`: paths below the kernel's directory of every readable module in the watched
/// directories; `unreadable`: files there that cannot be read as modules (depmod may or may not
/// list them); `any_module`: whether the kernel has any module at all.
pub fn index_mismatch(
    modules_dep: Option<&[u8]>,
    present: &[String],
    unreadable: &[String],
    any_module: bool,
) -> Option<IndexMismatch> {
    let Some(text) = modules_dep else {
        return any_module.then_some(IndexMismatch::Missing);
    };
    let listed: Vec<&[u8]> = text
        .split(|&byte| byte == b'\n')
        .filter_map(|line| line.split(|&byte| byte == b':').next())
        .filter(|path| !path.is_empty())
        .collect();
    if listed.is_empty() {
        return any_module.then_some(IndexMismatch::Empty);
    }
    let present_paths: BTreeSet<&str> = present
        .iter()
        .chain(unreadable)
        .map(String::as_str)
        .collect();
    for path in &listed {
        let path = String::from_utf8_lossy(path);
        let watched = WATCHED.iter().any(|dir| path.starts_with(dir));
        if watched && !present_paths.contains(path.as_ref()) {
            return Some(IndexMismatch::ListsGone(path.into_owned()));
        }
    }
    let listed_names: BTreeSet<String> = listed
        .iter()
        .map(|path| module_name_of(&String::from_utf8_lossy(path)))
        .collect();
    present
        .iter()
        .find(|path| !listed_names.contains(&module_name_of(path)))
        .map(|path| IndexMismatch::Lacks(path.clone()))
}

/// `extra/d/foo-bar.ko.xz` -> `foo_bar`, the name depmod indexes a file under.
fn module_name_of(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    normalize_module_name(file.split(".ko").next().unwrap_or(file)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| (*p).to_owned()).collect()
    }

    const DEP: &[u8] = b"kernel/net/llc/llc.ko:\n\
        extra/fx/fxexport.ko:\n\
        weak-updates/fx/fxconsume.ko: extra/fx/fxexport.ko\n";

    #[test]
    fn an_index_that_matches_the_tree_is_current() {
        let tree = present(&["extra/fx/fxexport.ko", "weak-updates/fx/fxconsume.ko"]);
        assert_eq!(index_mismatch(Some(DEP), &tree, &[], true), None);
    }

    #[test]
    fn a_missing_or_empty_index_is_stale_only_when_there_are_modules() {
        assert_eq!(
            index_mismatch(None, &[], &[], true),
            Some(IndexMismatch::Missing)
        );
        assert_eq!(
            index_mismatch(Some(b""), &[], &[], true),
            Some(IndexMismatch::Empty)
        );
        assert_eq!(index_mismatch(Some(b"\n"), &[], &[], false), None);
    }

    #[test]
    fn a_gone_link_or_a_new_one_makes_it_stale() {
        let gone = present(&["extra/fx/fxexport.ko"]);
        assert_eq!(
            index_mismatch(Some(DEP), &gone, &[], true),
            Some(IndexMismatch::ListsGone(
                "weak-updates/fx/fxconsume.ko".into()
            ))
        );
        let new = present(&[
            "extra/fx/fxexport.ko",
            "weak-updates/fx/fxconsume.ko",
            "weak-updates/fx/fx-alloc.ko.xz",
        ]);
        assert_eq!(
            index_mismatch(Some(DEP), &new, &[], true),
            Some(IndexMismatch::Lacks(
                "weak-updates/fx/fx-alloc.ko.xz".into()
            ))
        );
    }

    #[test]
    fn a_shadowed_link_is_indexed_under_the_kernels_own_module() {
        let tree = present(&[
            "extra/fx/fxexport.ko",
            "weak-updates/fx/fxconsume.ko",
            "weak-updates/net/llc.ko",
        ]);
        assert_eq!(index_mismatch(Some(DEP), &tree, &[], true), None);
    }
}
