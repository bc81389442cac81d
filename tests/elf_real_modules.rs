//! Parses the real modules committed under `fixtures/`: Debian's own in-tree `llc`/`stp`/`dummy`
//! and our kbuild-built fixture modules (x86_64, s390x big-endian, i686 32-bit). Expected
//! figures were read with Debian's `modprobe --dump-modversions`, `readelf` and the kernels'
//! Module.symvers.

use std::path::{Path, PathBuf};

use weak_modules::core::abi::{Export, VersionsKind};
use weak_modules::core::elf::{ModuleFacts, parse_module};
use weak_modules::core::modinfo::ModInfo;
use weak_modules::core::signature::{SignatureInfo, split_signature};
use weak_modules::shell::decompress::decompress;

const EM_386: u16 = 3;
const EM_S390: u16 = 22;
const EM_X86_64: u16 = 62;

/// The committed fixtures; a checkout without them fails every test here.
fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    assert!(dir.join("root").is_dir(), "{} has no root/", dir.display());
    dir
}

fn is_module_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

fn module_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|entry| entry.expect("readable fixture tree").into_path())
        .filter(|path| path.is_file() && is_module_file(path))
        .collect();
    files.sort();
    files
}

fn parse_file(path: &Path) -> ModuleFacts {
    let bytes = decompressed(path);
    parse_module(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn decompressed(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    decompress(&raw).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the file's signature trailer says, read apart from the facts (which do not keep it).
fn signature_of(relative: &str) -> Option<SignatureInfo> {
    let bytes = decompressed(&fixtures().join(relative));
    split_signature(&bytes).expect("valid trailer").signature
}

/// ELF class (1: 32-bit, 2: 64-bit) and data encoding (1: little, 2: big endian) of a file.
fn class_and_data(relative: &str) -> (u8, u8) {
    let bytes = decompressed(&fixtures().join(relative));
    (bytes[4], bytes[5])
}

/// The `.modinfo` value of `key`, found in the raw file (the facts keep only what the
/// decision uses).
fn modinfo_value(relative: &str, key: &str) -> Option<String> {
    let bytes = decompressed(&fixtures().join(relative));
    let needle = format!("{key}=");
    let start = bytes
        .windows(needle.len())
        .position(|window| window == needle.as_bytes())?;
    let end = start + bytes[start..].iter().position(|&b| b == 0)?;
    let info = ModInfo::parse(&bytes[start..end]);
    info.get(key).map(str::to_owned)
}

/// Parses `fixtures/<relative>`.
fn fixture(relative: &str) -> ModuleFacts {
    parse_file(&fixtures().join(relative))
}

fn crc_of(facts: &ModuleFacts, symbol: &str) -> Option<u32> {
    let table = facts.versions.as_ref()?;
    let entry = table.entries.iter().find(|entry| entry.name == symbol)?;
    Some(entry.crc)
}

fn export(name: &str, crc: u32, gpl_only: bool, namespace: Option<&str>) -> Export {
    Export {
        name: name.to_owned(),
        crc: Some(crc),
        gpl_only,
        namespace: namespace.map(str::to_owned),
    }
}

fn find_export<'a>(facts: &'a ModuleFacts, name: &str) -> &'a Export {
    facts
        .exports
        .iter()
        .find(|export| export.name == name)
        .unwrap_or_else(|| panic!("{name} is not exported"))
}

/// The kernel release a fixture path was built for: `root/lib/modules/<krel>/...`,
/// `built/<krel>/...`, `built/variants/<krel>/...` or `built/kmod-hello/<krel>/...`.
fn krel_of(relative: &Path) -> String {
    let parts: Vec<&str> = relative.iter().filter_map(|p| p.to_str()).collect();
    let krel = match parts.as_slice() {
        ["root", "lib", "modules", krel, ..] => krel,
        ["built", "variants" | "kmod-hello", krel, ..] => krel,
        ["built", krel, ..] => krel,
        _ => panic!("unexpected fixture path {}", relative.display()),
    };
    (*krel).to_owned()
}

#[test]
fn every_fixture_module_parses_and_matches_its_place() {
    let dir = fixtures();
    let files: Vec<PathBuf> = ["root", "built"]
        .iter()
        .flat_map(|sub| module_files(&dir.join(sub)))
        .collect();
    assert!(files.len() >= 80, "only {} module files found", files.len());
    for path in &files {
        let relative = path.strip_prefix(&dir).expect("under fixtures");
        let facts = parse_file(path);
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let stem = file_name.split(".ko").next().unwrap_or("");
        assert_eq!(facts.name.as_deref(), Some(stem), "{}", relative.display());
        let vermagic = facts.vermagic.as_deref().unwrap_or("");
        let krel = krel_of(relative);
        assert!(
            vermagic.starts_with(&format!("{krel} ")),
            "{}: vermagic {vermagic:?}",
            relative.display()
        );
        if stem == "fxnover" {
            assert_eq!(facts.versions, None, "{}", relative.display());
        } else {
            assert!(
                crc_of(&facts, "module_layout").is_some(),
                "{}: no module_layout record",
                relative.display()
            );
        }
    }
}

#[test]
fn debian_61_cloud_llc() {
    let llc = fixture("root/lib/modules/6.1.0-50-cloud-amd64/kernel/net/llc/llc.ko");
    let table = llc.versions.as_ref().expect("llc has __versions");
    assert_eq!(table.kind, VersionsKind::Basic);
    assert_eq!(table.entries.len(), 27);
    assert_eq!(crc_of(&llc, "module_layout"), Some(0x82164fbb));
    assert_eq!(crc_of(&llc, "kmalloc_trace"), Some(0xe69cd212));
    assert_eq!(crc_of(&llc, "__fentry__"), Some(0xbdfb6dbb));
    assert_eq!(crc_of(&llc, "consume_skb"), Some(0x65b8b3a6));
    // Every record except the module_layout pseudo-entry is an undefined symbol.
    assert_eq!(llc.imports.len(), 26);
    assert!(llc.imports.iter().all(|import| !import.weak));
    assert_eq!(llc.exports.len(), 9);
    assert_eq!(
        find_export(&llc, "llc_sap_list"),
        &export("llc_sap_list", 0x52d7b2fd, false, None)
    );
    assert_eq!(
        find_export(&llc, "llc_build_and_send_ui_pkt"),
        &export("llc_build_and_send_ui_pkt", 0x22404557, false, None)
    );
    assert_eq!(
        signature_of("root/lib/modules/6.1.0-50-cloud-amd64/kernel/net/llc/llc.ko")
            .map(|s| s.sig_len),
        Some(681)
    );
    assert_eq!(
        llc.vermagic.as_deref(),
        Some("6.1.0-50-cloud-amd64 SMP preempt mod_unload modversions ")
    );
    assert_eq!(llc.license.as_deref(), Some("GPL"));
    let llc_path = "root/lib/modules/6.1.0-50-cloud-amd64/kernel/net/llc/llc.ko";
    assert_eq!(modinfo_value(llc_path, "intree").as_deref(), Some("Y"));
    assert_eq!(modinfo_value(llc_path, "depends").as_deref(), Some(""));
    assert_eq!(llc.machine, EM_X86_64);
    assert_eq!(class_and_data(llc_path), (2, 1));
}

#[test]
fn debian_61_stp_exports_gpl_symbols_and_depends_on_llc() {
    let stp = fixture("root/lib/modules/6.1.0-50-amd64/kernel/net/802/stp.ko");
    assert_eq!(crc_of(&stp, "module_layout"), Some(0xbce1a965));
    assert_eq!(crc_of(&stp, "llc_sap_open"), Some(0x4e1b37fe));
    assert_eq!(
        modinfo_value(
            "root/lib/modules/6.1.0-50-amd64/kernel/net/802/stp.ko",
            "depends"
        )
        .as_deref(),
        Some("llc")
    );
    assert_eq!(
        find_export(&stp, "stp_proto_register"),
        &export("stp_proto_register", 0xab56e43c, true, None)
    );
}

#[test]
fn debian_612_llc_from_xz_with_signature_inside_the_stream() {
    let llc = fixture("root/lib/modules/6.12.117+deb12-amd64/kernel/net/llc/llc.ko.xz");
    assert_eq!(crc_of(&llc, "module_layout"), Some(0x2f9b2b9a));
    assert_eq!(crc_of(&llc, "__kmalloc_cache_noprof"), Some(0xbec2158c));
    assert_eq!(crc_of(&llc, "kmalloc_caches"), Some(0xf9218641));
    assert_eq!(
        find_export(&llc, "llc_sap_find"),
        &export("llc_sap_find", 0xec12a54a, false, None)
    );
    let signature = signature_of("root/lib/modules/6.12.117+deb12-amd64/kernel/net/llc/llc.ko.xz");
    assert_eq!(signature.map(|s| s.sig_len), Some(263));
    assert!(signature.is_some_and(|s| s.is_pkcs7()));
}

#[test]
fn fxexport_exports_on_every_build_kernel() {
    let dir = fixtures();
    for relative in [
        "root/lib/modules/6.1.0-50-amd64/extra/fxdep/fxexport.ko",
        "root/lib/modules/6.1.0-55-amd64/extra/fxdep/fxexport.ko.xz",
        "root/lib/modules/6.12.117+deb12-amd64/extra/fxdep/fxexport.ko.xz",
        "built/6.1.0-50-s390x/fxexport.ko",
        "built/6.1.0-50-686/fxexport.ko",
    ] {
        let facts = parse_file(&dir.join(relative));
        let expected = [
            export("fx_plain", 0x24d494b8, false, None),
            export("fx_gpl", 0xa287f050, true, None),
            export("fx_ns", 0xc145c7ac, true, Some("FIXTURE_NS")),
            export("fx_open", 0x371fed15, false, None),
            export("fx_open2", 0xb35a4b39, false, None),
        ];
        for wanted in &expected {
            assert_eq!(find_export(&facts, &wanted.name), wanted, "{relative}");
        }
        assert_eq!(facts.exports.len(), expected.len(), "{relative}");
    }
}

#[test]
fn fxexport_v2_moves_symbols_to_gpl_and_a_second_namespace() {
    let v2 = fixture("root/lib/modules/6.1.0-56-amd64/extra/fxdep/fxexport.ko");
    assert_eq!(
        find_export(&v2, "fx_open"),
        &export("fx_open", 0x371fed15, true, None)
    );
    assert_eq!(
        find_export(&v2, "fx_open2"),
        &export("fx_open2", 0xb35a4b39, false, Some("FIXTURE_NS2"))
    );
    assert_eq!(crc_of(&v2, "module_layout"), Some(0x9060323f));
}

#[test]
fn fxconsume_imports_namespace_and_depends_on_fxexport() {
    let consume = fixture("root/lib/modules/6.12.117+deb12-amd64/extra/fxdep/fxconsume.ko.xz");
    assert_eq!(consume.import_ns, ["FIXTURE_NS"]);
    assert_eq!(
        modinfo_value(
            "root/lib/modules/6.12.117+deb12-amd64/extra/fxdep/fxconsume.ko.xz",
            "depends"
        )
        .as_deref(),
        Some("fxexport")
    );
    assert_eq!(crc_of(&consume, "fx_ns"), Some(0xc145c7ac));
    assert_eq!(crc_of(&consume, "module_layout"), Some(0x2f9b2b9a));
    let mut imported: Vec<&str> = consume.imports.iter().map(|i| i.name.as_str()).collect();
    imported.sort_unstable();
    assert_eq!(
        imported,
        [
            "__fentry__",
            "__x86_return_thunk",
            "fx_gpl",
            "fx_ns",
            "fx_plain"
        ]
    );
    assert!(consume.exports.is_empty());
}

#[test]
fn fxpriv_is_proprietary() {
    let private = fixture("root/lib/modules/6.1.0-50-amd64/extra/fxdep/fxpriv.ko");
    assert_eq!(private.license.as_deref(), Some("Proprietary"));
    assert_eq!(crc_of(&private, "fx_open"), Some(0x371fed15));
}

#[test]
fn fxnover_has_imports_but_no_versions() {
    let nover = fixture("root/lib/modules/6.1.0-50-amd64/extra/fxnover.ko");
    assert_eq!(nover.versions, None);
    assert!(nover.imports.iter().any(|import| import.name == "msleep"));
    assert!(
        nover
            .vermagic
            .as_deref()
            .is_some_and(|v| v.contains(" modversions "))
    );
}

#[test]
fn signed_fixture_reports_its_signature() {
    let signed = fixture("root/lib/modules/6.1.0-50-amd64/extra/fx/fxstable.ko");
    assert!(
        signature_of("root/lib/modules/6.1.0-50-amd64/extra/fx/fxstable.ko")
            .is_some_and(|s| s.is_pkcs7())
    );
    assert_eq!(crc_of(&signed, "mutex_lock"), Some(0x4dfa8d4b));
    assert_eq!(crc_of(&signed, "module_layout"), Some(0xbce1a965));
}

#[test]
fn s390x_big_endian_module() {
    let stable = fixture("built/6.1.0-50-s390x/fxstable.ko");
    assert_eq!(stable.machine, EM_S390);
    assert_eq!(class_and_data("built/6.1.0-50-s390x/fxstable.ko"), (2, 2));
    assert_eq!(crc_of(&stable, "mutex_lock"), Some(0x860efa2c));
    assert_eq!(crc_of(&stable, "msleep"), Some(0xf9a482f9));
    assert_eq!(crc_of(&stable, "module_layout"), Some(0x8ffae2f3));
}

#[test]
fn i686_32_bit_module() {
    let export_module = fixture("built/6.1.0-50-686/fxexport.ko");
    assert_eq!(export_module.machine, EM_386);
    assert_eq!(class_and_data("built/6.1.0-50-686/fxexport.ko"), (1, 1));
    assert_eq!(crc_of(&export_module, "module_layout"), Some(0x89f6e291));
    assert_eq!(crc_of(&export_module, "__fentry__"), Some(0xbdfb6dbb));
}

#[test]
fn compressed_variants_parse_like_the_plain_module() {
    let dir = fixtures();
    let plain = parse_file(&dir.join("built/6.1.0-55-amd64/fxstable.ko"));
    for variant in ["fxstable.ko.xz", "fxstable.ko.zst", "fxstable.ko.gz"] {
        let facts = parse_file(&dir.join("built/variants/6.1.0-55-amd64").join(variant));
        assert_eq!(facts, plain, "{variant}");
    }
}

#[test]
fn reading_by_sections_gives_the_facts_of_reading_whole() {
    let dir = fixtures();
    let files: Vec<PathBuf> = ["root", "built"]
        .iter()
        .flat_map(|sub| module_files(&dir.join(sub)))
        .collect();
    let mut by_sections = 0;
    for path in &files {
        let whole = parse_module(&decompressed(path)).expect("parses whole");
        let read = weak_modules::shell::load::read_module(path).expect("reads by sections");
        assert_eq!(read, whole, "{}", path.display());
        let uncompressed = std::fs::read(path).unwrap().starts_with(b"\x7fELF");
        if uncompressed && std::fs::metadata(path).unwrap().len() > 16 << 10 {
            by_sections += 1;
        }
    }
    assert!(
        by_sections >= 10,
        "only {by_sections} modules were read by sections"
    );
}
