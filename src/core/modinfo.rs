//! The `.modinfo` section: NUL-terminated `key=value` strings, possibly with NUL padding
//! between them, where a key may repeat (`alias`, `import_ns`, `parm`, ...).

use std::borrow::Cow;

/// Parsed `.modinfo`, in section order, borrowing from the section. Non-UTF-8 bytes are
/// replaced (only then is a string copied), never rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModInfo<'a> {
    entries: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> ModInfo<'a> {
    /// Parses the raw section. Strings without `=` are skipped: the kernel looks values up
    /// by matching `key=`, so it never sees them either.
    pub fn parse(section: &'a [u8]) -> Self {
        let entries = section
            .split(|&byte| byte == 0)
            .filter(|raw| !raw.is_empty())
            .filter_map(split_key_value)
            .collect();
        Self { entries }
    }

    /// All `(key, value)` pairs in section order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// The first value of `key`, as the kernel's lookup returns it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Every value of a repeatable key, in section order.
    pub fn get_all<'s>(&'s self, key: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.entries
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    pub fn name(&self) -> Option<&str> {
        self.get("name")
    }

    /// Kept verbatim, trailing space included: the vermagic comparison is exact.
    pub fn vermagic(&self) -> Option<&str> {
        self.get("vermagic")
    }

    pub fn license(&self) -> Option<&str> {
        self.get("license")
    }

    pub fn import_ns(&self) -> Vec<&str> {
        self.get_all("import_ns").collect()
    }

    /// Module names from the comma list; `depends=` (empty) gives an empty list.
    pub fn depends(&self) -> Vec<&str> {
        self.get("depends")
            .map(|list| list.split(',').filter(|name| !name.is_empty()).collect())
            .unwrap_or_default()
    }
}

fn split_key_value(raw: &[u8]) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    let equals = raw.iter().position(|&byte| byte == b'=')?;
    let (key, rest) = raw.split_at(equals);
    let value = rest.get(1..).unwrap_or_default();
    Some((String::from_utf8_lossy(key), String::from_utf8_lossy(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_usual_keys() {
        let info = ModInfo::parse(
            b"license=GPL\0depends=\0retpoline=Y\0name=fxstable\0\
              vermagic=6.1.0-50-amd64 SMP preempt mod_unload modversions \0",
        );
        assert_eq!(info.name(), Some("fxstable"));
        assert_eq!(info.license(), Some("GPL"));
        assert_eq!(
            info.vermagic(),
            Some("6.1.0-50-amd64 SMP preempt mod_unload modversions ")
        );
        assert!(info.depends().is_empty());
        assert_eq!(info.get("retpoline"), Some("Y"));
    }

    #[test]
    fn skips_nul_padding_between_entries() {
        let info = ModInfo::parse(b"\0\0license=GPL\0\0\0\0name=x\0\0\0");
        assert_eq!(info.entries().count(), 2);
        assert_eq!(info.name(), Some("x"));
    }

    #[test]
    fn keeps_every_value_of_a_repeated_key() {
        let info = ModInfo::parse(b"import_ns=A\0alias=x\0import_ns=B\0");
        assert_eq!(info.import_ns(), vec!["A", "B"]);
        assert_eq!(info.get_all("alias").collect::<Vec<_>>(), vec!["x"]);
        assert_eq!(info.get_all("missing").count(), 0);
    }

    #[test]
    fn first_value_wins_for_single_keys() {
        let info = ModInfo::parse(b"name=first\0name=second\0");
        assert_eq!(info.name(), Some("first"));
    }

    #[test]
    fn depends_splits_on_commas_and_drops_empty_names() {
        let info = ModInfo::parse(b"depends=llc,stp,,\0");
        assert_eq!(info.depends(), vec!["llc", "stp"]);
    }

    #[test]
    fn value_may_contain_equals_and_be_empty() {
        let info = ModInfo::parse(b"parm=a=b\0empty=\0");
        assert_eq!(info.get("parm"), Some("a=b"));
        assert_eq!(info.get("empty"), Some(""));
    }

    #[test]
    fn strings_without_equals_are_ignored() {
        let info = ModInfo::parse(b"garbage\0license=GPL\0");
        assert_eq!(info.entries().count(), 1);
        assert_eq!(info.get("garbage"), None);
    }

    #[test]
    fn non_utf8_is_replaced_not_rejected() {
        let info = ModInfo::parse(b"author=J\xffrg\0license=GPL\0");
        assert_eq!(info.get("author"), Some("J\u{FFFD}rg"));
        assert_eq!(info.license(), Some("GPL"));
    }

    #[test]
    fn unterminated_last_entry_is_kept() {
        let info = ModInfo::parse(b"license=GPL\0name=tail");
        assert_eq!(info.name(), Some("tail"));
    }

    #[test]
    fn empty_section_has_nothing() {
        let info = ModInfo::parse(b"");
        assert_eq!(info, ModInfo::default());
        assert_eq!(info.vermagic(), None);
    }
}
