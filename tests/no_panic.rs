//! The parsers that read files from disk return errors, never panic, on damaged or hostile
//! input: random bytes, real fixtures with bytes changed or cut off, and symvers-like text.
//! Case counts are kept small so this runs in seconds in a debug build; the cargo-fuzz targets
//! under `fuzz/` search the same ground for hours.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::Index;
use weak_modules::core::elf::parse_module;
use weak_modules::core::symvers::KernelSymvers;
use weak_modules::shell::decompress::{Compression, compression_of, decompress_with_limit};
use weak_modules::shell::load::{module_files, read_decompressed};

/// Every compressed module fixture decompresses to far less than this.
const DECOMPRESS_CAP_BYTES: usize = 256 << 10;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every module file under `fixtures/built` and `fixtures/root`, as it lies on disk.
fn fixture_module_paths() -> Vec<PathBuf> {
    let paths: Vec<PathBuf> = ["built", "root"]
        .iter()
        .flat_map(|dir| module_files(&fixtures().join(dir)))
        .collect();
    assert!(
        paths.len() > 50,
        "only {} fixture modules found",
        paths.len()
    );
    paths
}

/// The fixture modules, decompressed: 64- and 32-bit, little- and big-endian, signed or not.
static MODULE_IMAGES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    fixture_module_paths()
        .iter()
        .map(|path| {
            read_decompressed(path, weak_modules::shell::bounded::MODULE_LIMIT)
                .unwrap_or_else(|err| panic!("{err}"))
        })
        .collect()
});

/// The xz, zstd and gzip module fixtures, still compressed.
static COMPRESSED_MODULES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let compressed: Vec<Vec<u8>> = fixture_module_paths()
        .iter()
        .map(|path| std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display())))
        .filter(|bytes| compression_of(bytes) != Compression::None)
        .collect();
    for format in [Compression::Xz, Compression::Zstd, Compression::Gzip] {
        assert!(
            compressed
                .iter()
                .any(|bytes| compression_of(bytes) == format),
            "no {format} module fixture"
        );
    }
    compressed
});

/// One way of damaging a file.
#[derive(Debug, Clone)]
enum Damage {
    SetByte {
        at: Index,
        value: u8,
    },
    FlipBit {
        at: Index,
        bit: u8,
    },
    /// Writes a 4-byte little- or big-endian value, where offsets, sizes and counts live.
    SetWord {
        at: Index,
        value: u32,
        big_endian: bool,
    },
    Truncate {
        at: Index,
    },
}

fn damage() -> impl Strategy<Value = Damage> {
    let extreme_word = prop_oneof![
        Just(0u32),
        Just(1),
        Just(0x40),
        Just(0x7fff_ffff),
        Just(0x8000_0000),
        Just(u32::MAX),
        any::<u32>(),
    ];
    prop_oneof![
        4 => (any::<Index>(), any::<u8>()).prop_map(|(at, value)| Damage::SetByte { at, value }),
        2 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Damage::FlipBit { at, bit }),
        3 => (any::<Index>(), extreme_word, any::<bool>())
            .prop_map(|(at, value, big_endian)| Damage::SetWord { at, value, big_endian }),
        1 => any::<Index>().prop_map(|at| Damage::Truncate { at }),
    ]
}

fn apply(bytes: &mut Vec<u8>, damage: &Damage) {
    let len = bytes.len();
    if len == 0 {
        return;
    }
    match damage {
        Damage::SetByte { at, value } => bytes[at.index(len)] = *value,
        Damage::FlipBit { at, bit } => bytes[at.index(len)] ^= 1 << bit,
        Damage::SetWord {
            at,
            value,
            big_endian,
        } => {
            let word = if *big_endian {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            };
            let start = at.index(len);
            let end = (start + word.len()).min(len);
            bytes[start..end].copy_from_slice(&word[..end - start]);
        }
        Damage::Truncate { at } => bytes.truncate(at.index(len)),
    }
}

fn damaged(original: &[u8], damages: &[Damage]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for one in damages {
        apply(&mut bytes, one);
    }
    bytes
}

/// Fixed pieces symvers lines are made of, good and bad; separators are listed more than once
/// to come up more often.
const SYMVERS_WORDS: &[&str] = &[
    "\t",
    "\t",
    "\t",
    "\n",
    "\n",
    "\r\n",
    "0x",
    "0X",
    "EXPORT_SYMBOL",
    "EXPORT_SYMBOL_GPL",
    "EXPORT_",
    "vmlinux",
    "drivers/net/mii",
    "/abs/extra/fxexport",
    "CRYPTO_INTERNAL",
    "printk",
    "fx_export",
    "a",
    " ",
    "",
    "é",
    "\u{0}",
];

/// A fixed word, or (one time in four) a CRC of 0 to 18 hex digits.
fn symvers_token() -> impl Strategy<Value = String> {
    (any::<Index>(), 0u8..4, any::<u64>(), 0usize..=18).prop_map(|(word, kind, crc, width)| {
        if kind == 0 {
            format!("0x{crc:0width$x}")
        } else {
            word.get(SYMVERS_WORDS).to_string()
        }
    })
}

/// One of `choices`, or now and then an arbitrary token in its place.
fn mostly_one_of(choices: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        30 => prop::sample::select(choices).prop_map(str::to_owned),
        1 => symvers_token(),
    ]
}

/// Lines in the layouts real files use (5.10+ and 5.4-5.9 column orders, cut to 1-5 columns or
/// with a sixth), with a field replaced by junk now and then, so that many files parse, and
/// repeated symbol names exercise the duplicate rules.
fn symvers_like_line() -> impl Strategy<Value = String> {
    let crc = prop_oneof![
        30 => any::<u32>().prop_map(|crc| format!("0x{crc:08x}")),
        1 => symvers_token(),
    ];
    let symbol = mostly_one_of(&["printk", "fx_export", "kmalloc", "a"]);
    let module = mostly_one_of(&["vmlinux", "drivers/net/mii", "/abs/extra/fxexport"]);
    let export_type = mostly_one_of(&["EXPORT_SYMBOL", "EXPORT_SYMBOL_GPL", "EXPORT_SYMBOL_NS"]);
    let namespace = mostly_one_of(&["", "CRYPTO_INTERNAL"]);
    let columns = prop_oneof![1 => 1usize..=2, 12 => 3usize..=5, 1 => Just(6)];
    let layout = (columns, any::<bool>());
    (crc, symbol, module, export_type, namespace, layout).prop_map(
        |(crc, symbol, module, export_type, namespace, (columns, namespace_third))| {
            let mut fields = if namespace_third {
                [crc, symbol, namespace, module, export_type]
            } else {
                [crc, symbol, module, export_type, namespace]
            }
            .to_vec();
            fields.push("future column".to_owned());
            fields.truncate(columns);
            fields.join("\t")
        },
    )
}

fn symvers_like_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(symvers_token(), 0..120).prop_map(|tokens| tokens.concat()),
        3 => prop::collection::vec(symvers_like_line(), 0..12).prop_map(|lines| lines.join("\n")),
    ]
    .prop_map(String::into_bytes)
}

/// What `KernelSymvers::parse` promises for any input: an error names a line that exists, and
/// a table holds every non-blank line once, either as an entry or as an ignored duplicate.
fn check_symvers_contract(bytes: &[u8]) -> Result<(), TestCaseError> {
    let line_count = bytes.split(|&byte| byte == b'\n').count();
    match KernelSymvers::parse(bytes) {
        Err(err) => prop_assert!(
            (1..=line_count).contains(&err.line),
            "error on line {} of {line_count}",
            err.line
        ),
        Ok(symvers) => {
            let text = std::str::from_utf8(bytes).expect("parsed input is UTF-8");
            let non_blank_lines = text
                .split('\n')
                .filter(|line| !line.trim().is_empty())
                .count();
            prop_assert_eq!(symvers.len() + symvers.duplicates().len(), non_blank_lines);
            for entry in symvers.iter() {
                prop_assert!(symvers.get(&entry.export.name).is_some());
            }
        }
    }
    Ok(())
}

/// Random bytes, half of them behind an ELF magic and class/endianness bytes, so that they get
/// past the first check.
fn module_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let random = prop::collection::vec(any::<u8>(), 0..4096);
    prop_oneof![
        random.clone(),
        (1u8..=2, 1u8..=2, random).prop_map(|(class, data, rest)| {
            let mut bytes = vec![0x7f, b'E', b'L', b'F', class, data, 1];
            bytes.extend(rest);
            bytes
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn parse_module_never_panics_on_random_bytes(bytes in module_like_bytes()) {
        let _ = parse_module(&bytes);
    }

    #[test]
    fn parse_module_never_panics_on_damaged_real_modules(
        module in any::<Index>(),
        damages in prop::collection::vec(damage(), 1..12),
    ) {
        let original = module.get(&MODULE_IMAGES);
        let _ = parse_module(&damaged(original, &damages));
    }

    #[test]
    fn symvers_parse_keeps_its_contract_on_symvers_like_text(text in symvers_like_text()) {
        check_symvers_contract(&text)?;
    }

    #[test]
    fn symvers_parse_keeps_its_contract_on_random_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        check_symvers_contract(&bytes)?;
    }
}

proptest! {
    // Each case decompresses up to a module's worth of data in a debug build.
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn decompress_never_panics_or_exceeds_its_cap_on_damaged_real_files(
        file in any::<Index>(),
        damages in prop::collection::vec(damage(), 1..6),
    ) {
        let original = file.get(&COMPRESSED_MODULES);
        if let Ok(output) = decompress_with_limit(&damaged(original, &damages), DECOMPRESS_CAP_BYTES) {
            prop_assert!(output.len() <= DECOMPRESS_CAP_BYTES);
        }
    }
}

#[test]
fn undamaged_fixtures_parse_so_the_damage_tests_start_from_valid_files() {
    for image in MODULE_IMAGES.iter() {
        parse_module(image).expect("fixture module parses");
    }
    for compressed in COMPRESSED_MODULES.iter() {
        let output = decompress_with_limit(compressed, DECOMPRESS_CAP_BYTES)
            .expect("fixture decompresses under the cap");
        parse_module(&output).expect("decompressed fixture module parses");
    }
}
