//! Where a weak link goes and what it points at. Paths here are relative to the base directory
//! (`lib/modules/K0/extra/d/m.ko`, no leading `/`) and handled as text: nothing is looked up.

/// The path of a module's link below `weak-updates/`: the part after
/// `lib/modules/<built_for>/<first dir>/`, or the whole path when the module does not live under
/// its own kernel's directory (then the link mirrors its full path, as the bash tool does).
pub fn link_subpath(module: &str, built_for: &str) -> String {
    for prefix in ["lib/modules/", "usr/lib/modules/"] {
        let below = module
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(built_for))
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.split_once('/'))
            .map(|(_first_dir, rest)| rest);
        if let Some(rest) = below.filter(|rest| !rest.is_empty()) {
            return rest.to_owned();
        }
    }
    module.to_owned()
}

/// For a module that is not below its own kernel's directory (the release its vermagic names),
/// the release its directory names instead (`""` when it is not below `lib/modules/` at all).
/// Such a module is linked under its whole path, which is rarely what a packager meant: a
/// spec that appends `.arch` to a release that has none, a module copied by hand.
pub fn misplaced_release<'a>(module: &'a str, built_for: &str) -> Option<&'a str> {
    if built_for.is_empty() || link_subpath(module, built_for) != module {
        return None;
    }
    Some(release_from_path(module))
}

/// The release in `.../lib/modules/<release>/...`: what a module belongs to when it has no
/// vermagic, or its file is gone. Empty when the path has no such part.
pub fn release_from_path(path: &str) -> &str {
    let after = match path.find("lib/modules/") {
        Some(start) if start == 0 || path[..start].ends_with('/') => &path[start + 12..],
        _ => return "",
    };
    after.split('/').next().unwrap_or("")
}

/// The weak-updates directory of a kernel, relative to the base.
pub fn weak_updates_dir(release: &str) -> String {
    format!("lib/modules/{release}/weak-updates")
}

/// What a link at `link` (base-relative) should contain to reach `module` (base-relative).
/// On the live system: the absolute path, exactly as the bash tool writes it. Under a base
/// directory: a relative path, which resolves both from the host and inside the booted image.
pub fn link_target(link: &str, module: &str, live_system: bool) -> String {
    if live_system {
        return format!("/{module}");
    }
    let link_dir: Vec<&str> = components(link).collect();
    let link_dir = &link_dir[..link_dir.len().saturating_sub(1)];
    let module: Vec<&str> = components(module).collect();
    let common = link_dir
        .iter()
        .zip(&module)
        .take_while(|(a, b)| a == b)
        .count();
    let mut target: Vec<&str> = vec![".."; link_dir.len() - common];
    target.extend(&module[common..]);
    target.join("/")
}

/// Where a link's text leads, relative to the base, resolved lexically (`..` folded). An
/// absolute target is taken inside the base, as it resolves in the booted image; one that
/// spells out the base itself (the bash tool's `--basedir` links) has the base removed first.
/// `None` when `..` climbs above the base.
pub fn resolve_link(link: &str, target: &str, base: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    let rest = if let Some(absolute) = target.strip_prefix('/') {
        let base = base.trim_matches('/');
        match absolute.strip_prefix(base) {
            Some(inside) if !base.is_empty() && (inside.is_empty() || inside.starts_with('/')) => {
                inside
            }
            _ => absolute,
        }
    } else {
        parts.extend(components(link));
        parts.pop();
        target
    };
    fold(parts, rest)
}

/// A base-relative path below the kernel's own directory:
/// `lib/modules/K/weak-updates/x.ko` -> `weak-updates/x.ko` (any other path as it is).
pub fn below_kernel(path: &str, release: &str) -> String {
    path.strip_prefix(&format!("lib/modules/{release}/"))
        .unwrap_or(path)
        .to_owned()
}

/// Lexically normalized form of an absolute path given on the command line: `.` and empty
/// components dropped, `..` folded, and `..` at the root staying at the root, as the kernel
/// resolves `/../lib`.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in components(path) {
        match part {
            "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    parts.join("/")
}

/// Whether `release` can name a directory of `lib/modules/`: one path component, not `.` or
/// `..`, no NUL.
pub fn is_valid_release(release: &str) -> bool {
    !release.is_empty()
        && release != "."
        && release != ".."
        && !release.contains('/')
        && !release.contains('\0')
}

/// Appends the components of `path` to `parts`, folding `.` and `..`.
fn fold<'a>(mut parts: Vec<&'a str>, path: &'a str) -> Option<String> {
    for part in components(path) {
        match part {
            "." => {}
            ".." => {
                parts.pop()?;
            }
            name => parts.push(name),
        }
    }
    Some(parts.join("/"))
}

fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|part| !part.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn climbing_above_the_root_stays_at_the_root() {
        assert_eq!(
            normalize("/../../lib/modules/K/extra/m.ko"),
            "lib/modules/K/extra/m.ko"
        );
        assert_eq!(normalize("/lib/../../x/./y//z"), "x/y/z");
        assert_eq!(normalize("/.."), "");
    }

    #[test]
    fn a_release_is_one_plain_path_component() {
        for good in [
            "6.1.0-50-amd64",
            "5.14.0-70.el9.x86_64",
            "6.12.117+deb12-amd64",
        ] {
            assert!(is_valid_release(good), "{good}");
        }
        for bad in ["", ".", "..", "../../x", "a/b", "/abs", "x\0y"] {
            assert!(!is_valid_release(bad), "{bad:?}");
        }
    }

    #[test]
    fn subpath_drops_the_first_directory_below_the_release() {
        assert_eq!(link_subpath("lib/modules/K0/extra/d/m.ko", "K0"), "d/m.ko");
        assert_eq!(
            link_subpath("usr/lib/modules/K0/updates/m.ko.xz", "K0"),
            "m.ko.xz"
        );
        assert_eq!(
            link_subpath("lib/modules/5.14.0+debug/extra/d/m.ko", "5.14.0+debug"),
            "d/m.ko"
        );
    }

    #[test]
    fn subpath_is_the_whole_path_outside_the_own_kernel() {
        assert_eq!(link_subpath("opt/x/m.ko", "K0"), "opt/x/m.ko");
        assert_eq!(
            link_subpath("lib/modules/K0/extra/d/m.ko", "K9"),
            "lib/modules/K0/extra/d/m.ko"
        );
        assert_eq!(
            link_subpath("lib/modules/K0x/extra/m.ko", "K0"),
            "lib/modules/K0x/extra/m.ko"
        );
    }

    #[test]
    fn a_module_outside_its_own_kernel_is_misplaced() {
        assert_eq!(
            misplaced_release(
                "lib/modules/6.1.0-55-amd64.x86_64/extra/hello/hello.ko",
                "6.1.0-55-amd64"
            ),
            Some("6.1.0-55-amd64.x86_64")
        );
        assert_eq!(
            misplaced_release("lib/modules/K0/extra/m.ko", "K1"),
            Some("K0")
        );
        assert_eq!(misplaced_release("opt/x/m.ko", "K0"), Some(""));
    }

    #[test]
    fn a_module_in_its_own_kernel_or_without_a_release_is_not_misplaced() {
        assert_eq!(misplaced_release("lib/modules/K0/extra/d/m.ko", "K0"), None);
        assert_eq!(
            misplaced_release("usr/lib/modules/K0/updates/m.ko.xz", "K0"),
            None
        );
        assert_eq!(misplaced_release("lib/modules/K0/extra/m.ko", ""), None);
    }

    #[test]
    fn the_release_is_read_from_lib_modules_in_a_path() {
        assert_eq!(release_from_path("lib/modules/K0/extra/m.ko"), "K0");
        assert_eq!(release_from_path("usr/lib/modules/K0/extra/m.ko"), "K0");
        assert_eq!(release_from_path("/tmp/b/lib/modules/K0/extra/m.ko"), "K0");
        assert_eq!(release_from_path("opt/x/m.ko"), "");
        assert_eq!(release_from_path("mylib/modules/K0/m.ko"), "");
    }

    #[test]
    fn targets_are_absolute_live_and_relative_under_a_base() {
        let link = "lib/modules/K1/weak-updates/d/m.ko";
        let module = "lib/modules/K0/extra/d/m.ko";
        assert_eq!(
            link_target(link, module, true),
            "/lib/modules/K0/extra/d/m.ko"
        );
        assert_eq!(link_target(link, module, false), "../../../K0/extra/d/m.ko");
        assert_eq!(
            link_target(
                "lib/modules/K1/weak-updates/opt/x/m.ko",
                "opt/x/m.ko",
                false
            ),
            "../../../../../../opt/x/m.ko"
        );
    }

    #[test]
    fn relative_targets_resolve_back_to_the_module() {
        let link = "lib/modules/K1/weak-updates/d/m.ko";
        let module = "lib/modules/K0/extra/d/m.ko";
        let target = link_target(link, module, false);
        assert_eq!(
            resolve_link(link, &target, "/tmp/b").as_deref(),
            Some(module)
        );
    }

    #[test]
    fn absolute_targets_resolve_inside_the_base() {
        let link = "lib/modules/K1/weak-updates/m.ko";
        assert_eq!(
            resolve_link(link, "/lib/modules/K0/extra/m.ko", "/tmp/b").as_deref(),
            Some("lib/modules/K0/extra/m.ko")
        );
        assert_eq!(
            resolve_link(link, "/tmp/b/lib/modules/K0/extra/m.ko", "/tmp/b").as_deref(),
            Some("lib/modules/K0/extra/m.ko")
        );
        assert_eq!(
            resolve_link(link, "/tmp/bx/m.ko", "/tmp/b").as_deref(),
            Some("tmp/bx/m.ko")
        );
        assert_eq!(resolve_link(link, "../../../../../..", "/"), None);
    }
}
