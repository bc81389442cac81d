//! Real Debian symvers files (fixtures/SOURCES.md), read the way the tool reads them:
//! bytes from disk, `decompress` by magic, then `KernelSymvers::parse`.
//!
//! Layout of the committed fixtures:
//! - `fixtures/root/boot/symvers-<krel>.gz` (most kernels, as RHEL/Kylin ship them)
//! - `fixtures/root/lib/modules/<krel>/symvers.{xz,zst}` (one kernel each)

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use weak_modules::core::symvers::KernelSymvers;
use weak_modules::shell::decompress::{Compression, compression_of, decompress};

const ABI_50: &str = "6.1.0-50-amd64";
const ABI_50_CLOUD: &str = "6.1.0-50-cloud-amd64";
const ABI_53: &str = "6.1.0-53-amd64";
const ABI_54: &str = "6.1.0-54-amd64";
const ABI_55: &str = "6.1.0-55-amd64";
const ABI_56: &str = "6.1.0-56-amd64";
const ABI_56_RT: &str = "6.1.0-56-rt-amd64";
const LINUX_6_12: &str = "6.12.117+deb12-amd64";

/// Counted in the unpacked `linux-headers-*` packages (`wc -l`, and `$3 == "vmlinux"`).
struct KernelFigures {
    krel: &'static str,
    entries: usize,
    vmlinux_entries: usize,
    crcs: &'static [(&'static str, u32)],
}

const FIGURES: &[KernelFigures] = &[
    KernelFigures {
        krel: ABI_50,
        entries: 24_622,
        vmlinux_entries: 10_487,
        crcs: &[
            ("module_layout", 0xbce1a965),
            ("misc_register", 0x1e1dfe5f),
            ("_printk", 0x92997ed8),
            ("kmalloc_trace", 0x170241ed),
            ("mutex_lock", 0x4dfa8d4b),
        ],
    },
    KernelFigures {
        krel: ABI_53,
        entries: 24_643,
        vmlinux_entries: 10_492,
        crcs: &[
            ("module_layout", 0xbce1a965),
            ("misc_register", 0x1e1dfe5f),
            ("kmalloc_trace", 0x83acf7c5),
        ],
    },
    KernelFigures {
        krel: ABI_54,
        entries: 24_664,
        vmlinux_entries: 10_493,
        crcs: &[("module_layout", 0xbce1a965), ("misc_register", 0xf3f9e5eb)],
    },
    KernelFigures {
        krel: ABI_55,
        entries: 24_683,
        vmlinux_entries: 10_503,
        crcs: &[("module_layout", 0x9060323f), ("misc_register", 0x844c8938)],
    },
    KernelFigures {
        krel: ABI_56,
        entries: 24_683,
        vmlinux_entries: 10_503,
        crcs: &[("module_layout", 0x9060323f)],
    },
    KernelFigures {
        krel: ABI_56_RT,
        entries: 24_656,
        vmlinux_entries: 10_477,
        crcs: &[
            ("module_layout", 0x9487079a),
            ("misc_register", 0x0b30340d),
            ("mutex_lock", 0x5de130f5),
        ],
    },
    KernelFigures {
        krel: ABI_50_CLOUD,
        entries: 14_382,
        vmlinux_entries: 9_281,
        crcs: &[
            ("module_layout", 0x82164fbb),
            ("misc_register", 0xf589f60d),
            ("_printk", 0x92997ed8),
        ],
    },
    KernelFigures {
        krel: LINUX_6_12,
        entries: 26_765,
        vmlinux_entries: 11_245,
        crcs: &[
            ("module_layout", 0x2f9b2b9a),
            ("_printk", 0x122c3a7e),
            ("misc_register", 0x8f0b1b34),
            ("mutex_lock", 0x4dfa8d4b),
        ],
    },
];

/// Same CRC in every kernel above (checked below). `mutex_lock` would be too, but the rt
/// flavour has its own.
const STABLE_CRCS: &[(&str, u32)] = &[
    ("msleep", 0xf9a482f9),
    ("kfree", 0x037a0cba),
    ("__fentry__", 0xbdfb6dbb),
];

/// krel → symvers file, from both places the fixtures put them.
struct Fixtures {
    files: BTreeMap<String, PathBuf>,
}

impl Fixtures {
    /// `None`, after saying so on stderr, only while the fixture tree is not committed yet.
    fn load() -> Option<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/root");
        if !root.is_dir() {
            // Straight to stderr: the test harness captures `eprintln!` of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED symvers_real: {} does not exist yet",
                root.display()
            );
            return None;
        }
        let mut files = BTreeMap::new();
        files.extend(boot_symvers(&root.join("boot")));
        files.extend(module_dir_symvers(&root.join("lib/modules")));
        assert!(
            !files.is_empty(),
            "no symvers files under {}",
            root.display()
        );
        Some(Fixtures { files })
    }

    fn path(&self, krel: &str) -> &Path {
        self.files.get(krel).unwrap_or_else(|| {
            panic!(
                "no symvers fixture for {krel}; found: {:?}",
                self.files.keys().collect::<Vec<_>>()
            )
        })
    }

    fn symvers(&self, krel: &str) -> KernelSymvers {
        load_symvers(self.path(krel))
    }
}

fn boot_symvers(boot: &Path) -> Vec<(String, PathBuf)> {
    entries_of(boot)
        .into_iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            let krel = strip_compression_suffix(name.strip_prefix("symvers-")?);
            Some((krel.to_owned(), path))
        })
        .collect()
}

fn module_dir_symvers(modules: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for kernel_dir in entries_of(modules) {
        let Some(krel) = kernel_dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        for path in entries_of(&kernel_dir) {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name == "symvers" || name.starts_with("symvers.") {
                found.push((krel.to_owned(), path));
            }
        }
    }
    found
}

fn entries_of(dir: &Path) -> Vec<PathBuf> {
    let Ok(read_dir) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = read_dir.map(|entry| entry.unwrap().path()).collect();
    paths.sort();
    paths
}

fn strip_compression_suffix(name: &str) -> &str {
    [".gz", ".xz", ".zst"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

fn compression_named_by(path: &Path) -> Compression {
    match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => Compression::Gzip,
        Some("xz") => Compression::Xz,
        Some("zst") => Compression::Zstd,
        _ => Compression::None,
    }
}

fn load_symvers(path: &Path) -> KernelSymvers {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = decompress(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    KernelSymvers::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn crc_of(symvers: &KernelSymvers, krel: &str, symbol: &str) -> u32 {
    let entry = symvers
        .get(symbol)
        .unwrap_or_else(|| panic!("{krel}: {symbol} missing"));
    entry
        .export
        .crc
        .unwrap_or_else(|| panic!("{krel}: {symbol} has no CRC"))
}

#[test]
fn every_fixture_is_compressed_as_its_name_says_and_parses() {
    let Some(fixtures) = Fixtures::load() else {
        return;
    };
    for (krel, path) in &fixtures.files {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(
            compression_of(&bytes),
            compression_named_by(path),
            "{}",
            path.display()
        );
        let symvers = load_symvers(path);
        assert!(
            symvers.len() > 10_000,
            "{krel}: only {} entries",
            symvers.len()
        );
        assert!(symvers.duplicates().is_empty(), "{krel}: duplicates");
        assert!(symvers.get("module_layout").unwrap().is_vmlinux(), "{krel}");
    }
}

#[test]
fn fixtures_cover_all_three_compressions() {
    let Some(fixtures) = Fixtures::load() else {
        return;
    };
    let formats: Vec<_> = fixtures
        .files
        .values()
        .map(|p| compression_named_by(p))
        .collect();
    for format in [Compression::Gzip, Compression::Xz, Compression::Zstd] {
        assert!(formats.contains(&format), "no {format} symvers fixture");
    }
}

#[test]
fn entry_counts_and_crcs_match_the_debian_packages() {
    let Some(fixtures) = Fixtures::load() else {
        return;
    };
    for figures in FIGURES {
        let krel = figures.krel;
        let symvers = fixtures.symvers(krel);
        assert_eq!(symvers.len(), figures.entries, "{krel}: entries");
        assert_eq!(
            symvers.vmlinux_exports().count(),
            figures.vmlinux_entries,
            "{krel}: vmlinux entries"
        );
        for &(symbol, crc) in figures.crcs.iter().chain(STABLE_CRCS) {
            assert_eq!(
                crc_of(&symvers, krel, symbol),
                crc,
                "{krel}: {symbol} is {:#010x}, expected {crc:#010x}",
                crc_of(&symvers, krel, symbol)
            );
        }
    }
}

#[test]
fn abi_55_and_56_export_the_same_table() {
    let Some(fixtures) = Fixtures::load() else {
        return;
    };
    let abi_55 = fixtures.symvers(ABI_55);
    let abi_56 = fixtures.symvers(ABI_56);
    assert_eq!(abi_55.len(), abi_56.len());
    for entry in abi_55.iter() {
        let other = abi_56.get(&entry.export.name).expect("same symbols");
        assert_eq!(
            (entry.export, entry.module),
            (other.export, other.module),
            "{}",
            entry.export.name
        );
    }
}

#[test]
fn amd64_and_cloud_flavours_share_symbols_but_not_crcs() {
    let Some(fixtures) = Fixtures::load() else {
        return;
    };
    let amd64 = fixtures.symvers(ABI_50);
    let cloud = fixtures.symvers(ABI_50_CLOUD);
    let (mut shared, mut different_crc) = (0, 0);
    for entry in cloud.iter() {
        if let Some(other) = amd64.get(&entry.export.name) {
            shared += 1;
            different_crc += usize::from(other.export.crc != entry.export.crc);
        }
    }
    assert_eq!((shared, different_crc), (14_377, 9_615));
}

#[test]
fn linux_6_12_gpl_only_and_namespaced_exports() {
    let Some(fixtures) = Fixtures::load() else {
        return;
    };
    let symvers = fixtures.symvers(LINUX_6_12);

    assert!(symvers.get("kmalloc_trace").is_none());

    let setkey = symvers.get("crypto_cipher_setkey").unwrap();
    assert!(setkey.is_vmlinux());
    assert!(setkey.export.gpl_only);
    assert_eq!(setkey.export.namespace.as_deref(), Some("CRYPTO_INTERNAL"));
    assert_eq!(setkey.export.crc, Some(0x0594f6f6));

    let bpf_map_get = symvers.get("bpf_map_get").unwrap();
    assert!(!bpf_map_get.export.gpl_only);
    assert_eq!(
        bpf_map_get.export.namespace.as_deref(),
        Some("BPF_INTERNAL")
    );

    let init_uts_ns = symvers.get("init_uts_ns").unwrap();
    assert!(init_uts_ns.export.gpl_only);
    assert_eq!(init_uts_ns.export.namespace, None);
    assert_eq!(init_uts_ns.export.crc, Some(0xfcfa4bf9));

    let iwl = symvers.get("iwl_opmode_register").unwrap();
    assert_eq!(iwl.module, "drivers/net/wireless/intel/iwlwifi/iwlwifi");
    assert!(iwl.export.gpl_only);
    assert_eq!(iwl.export.namespace.as_deref(), Some("IWLWIFI"));
    assert_eq!(iwl.export.crc, Some(0x0a6884f3));

    let gpl_only = symvers.iter().filter(|e| e.export.gpl_only).count();
    let namespaced = symvers
        .iter()
        .filter(|e| e.export.namespace.is_some())
        .count();
    assert_eq!((gpl_only, namespaced), (15_144, 1_384));
}
