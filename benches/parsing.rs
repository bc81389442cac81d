//! How long reading the inputs of a decision takes: a kernel's symvers (plain, and from the
//! `.gz` as shipped in /boot) and a module's ELF. Files are read, and decompressed where the
//! benchmark is about parsing only, before the timed loop.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use weak_modules::core::elf::parse_module;
use weak_modules::core::symvers::KernelSymvers;
use weak_modules::shell::decompress::decompress;

const SYMVERS_RELEASES: &[&str] = &["6.1.0-50-amd64", "6.12.117+deb12-amd64"];

/// An in-tree Debian module (signed, many imports) and a small out-of-tree fixture module.
const MODULES: &[&str] = &[
    "root/lib/modules/6.1.0-50-cloud-amd64/kernel/net/llc/llc.ko",
    "built/6.1.0-55-amd64/fxexport.ko",
];

fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(relative)
}

fn read_fixture(relative: &str) -> Vec<u8> {
    let path = fixture(relative);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn boot_symvers_gz(release: &str) -> Vec<u8> {
    read_fixture(&format!("root/boot/symvers-{release}.gz"))
}

fn symvers_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("symvers_parse");
    for release in SYMVERS_RELEASES {
        let text = decompress(&boot_symvers_gz(release)).expect("fixture symvers decompresses");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(release), &text, |b, text| {
            b.iter(|| KernelSymvers::parse(black_box(text)).expect("fixture symvers parses"));
        });
    }
    group.finish();
}

fn symvers_gunzip(c: &mut Criterion) {
    let mut group = c.benchmark_group("symvers_gunzip");
    for release in SYMVERS_RELEASES {
        let gz = boot_symvers_gz(release);
        group.throughput(Throughput::Bytes(gz.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(release), &gz, |b, gz| {
            b.iter(|| decompress(black_box(gz)).expect("fixture symvers decompresses"));
        });
    }
    group.finish();
}

fn symvers_gunzip_and_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("symvers_gunzip_and_parse");
    for release in SYMVERS_RELEASES {
        let gz = boot_symvers_gz(release);
        group.throughput(Throughput::Bytes(gz.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(release), &gz, |b, gz| {
            b.iter(|| {
                let text = decompress(black_box(gz)).expect("fixture symvers decompresses");
                KernelSymvers::parse(&text).expect("fixture symvers parses")
            });
        });
    }
    group.finish();
}

/// How many symbols a run looks up in one kernel's symvers: one small module, a large one,
/// a batch of modules.
const LOOKUPS: &[usize] = &[10, 100, 1_000, 10_000];

/// About `count` of `names`, spread evenly over them.
fn spread(names: &[String], count: usize) -> Vec<&str> {
    let step = (names.len() / count).max(1);
    names.iter().step_by(step).map(String::as_str).collect()
}

/// Reading a symvers to look up N of its symbols, as a run does for each kernel: the cost
/// beyond the parse should grow with N, not with the ~30,000 lines of the file.
fn symvers_lookup(c: &mut Criterion) {
    let release = SYMVERS_RELEASES[0];
    let text = decompress(&boot_symvers_gz(release)).expect("fixture symvers decompresses");
    let all = KernelSymvers::parse(&text).expect("fixture symvers parses");
    let names: Vec<String> = all.iter().map(|entry| entry.export.name.clone()).collect();
    let mut group = c.benchmark_group("symvers_parse_and_lookup");
    for &count in LOOKUPS {
        let wanted = spread(&names, count);
        group.throughput(Throughput::Elements(wanted.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(count), &wanted, |b, wanted| {
            b.iter(|| {
                let symvers = KernelSymvers::parse(black_box(&text)).expect("parses");
                wanted
                    .iter()
                    .filter_map(|name| symvers.get(name))
                    .map(|entry| entry.export.crc.unwrap_or(0))
                    .fold(0u32, u32::wrapping_add)
            });
        });
    }
    group.finish();
    let mut group = c.benchmark_group("symvers_lookup_parsed");
    for &count in LOOKUPS {
        let wanted = spread(&names, count);
        group.throughput(Throughput::Elements(wanted.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(count), &wanted, |b, wanted| {
            b.iter(|| {
                wanted
                    .iter()
                    .filter_map(|name| all.get(black_box(name)))
                    .map(|entry| entry.export.crc.unwrap_or(0))
                    .fold(0u32, u32::wrapping_add)
            });
        });
    }
    group.finish();
}

fn module_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("module_parse");
    for relative in MODULES {
        let bytes = read_fixture(relative);
        let name = Path::new(relative)
            .file_name()
            .expect("fixture path names a file")
            .to_string_lossy();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| parse_module(black_box(bytes)).expect("fixture module parses"));
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    symvers_parse,
    symvers_gunzip,
    symvers_gunzip_and_parse,
    symvers_lookup,
    module_parse
);
criterion_main!(benches);
