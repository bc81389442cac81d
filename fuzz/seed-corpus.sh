#!/bin/sh
# Fills fuzz/corpus/<target>/ with seeds made from the committed fixtures (fuzz/corpus is
# gitignored: never commit it). Safe to re-run: seeds are named by content hash, as libFuzzer
# names its own finds, so nothing is duplicated and the fuzzers' finds are kept.
#
#   elf, module_decision
#               every module under fixtures/built and fixtures/root, decompressed
#   symvers     every kernel's symvers, decompressed, plus short excerpts (whole files are
#               1.5-2 MB; the fuzzers run with -max_len, which keeps only their beginning)
#   decompress  every compressed fixture, plus small xz/zstd/gzip streams in other settings
#               (check types, multiple streams/members, a skippable zstd frame)
#   cpio        newc and crc archives of a few modules and a modprobe.d file, alone,
#               concatenated with zero padding, and followed by a compressed archive
#
# Needs xz, zstd, gzip, cpio and sha1sum.

set -eu

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
fixtures="$fuzz_dir/../fixtures"
corpus="$fuzz_dir/corpus"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

for tool in xz zstd gzip cpio sha1sum; do
    command -v "$tool" >/dev/null || { echo "seed-corpus.sh: $tool is missing" >&2; exit 1; }
done

# add_seed TARGET < bytes: stores stdin as corpus/TARGET/<sha1 of the bytes>.
add_seed() {
    mkdir -p "$corpus/$1"
    cat >"$scratch/seed"
    name=$(sha1sum <"$scratch/seed" | cut -d' ' -f1)
    mv "$scratch/seed" "$corpus/$1/$name"
}

# decompressed FILE: writes FILE's contents to stdout, decompressed by its suffix.
decompressed() {
    case "$1" in
        *.xz) xz -dc "$1" ;;
        *.zst) zstd -dcq "$1" ;;
        *.gz) gzip -dc "$1" ;;
        *) cat "$1" ;;
    esac
}

# One path a line, so the loops below read them with `while read` (paths may hold spaces).
find "$fixtures/built" "$fixtures/root" -type f -name '*.ko*' | sort >"$scratch/modules"
find "$fixtures/root" -type f -name '*symvers*' | sort >"$scratch/symvers-files"

# elf, module_decision
while IFS= read -r module; do
    decompressed "$module" | add_seed elf
    decompressed "$module" | add_seed module_decision
done <"$scratch/modules"

# symvers
while IFS= read -r symvers; do
    decompressed "$symvers" >"$scratch/symvers"
    add_seed symvers <"$scratch/symvers"
    # The first lines (vmlinux), a spread over the whole file (module lines, namespaces,
    # GPL-only exports), and the last lines.
    head -n 40 "$scratch/symvers" | add_seed symvers
    awk 'NR % 400 == 1' "$scratch/symvers" | add_seed symvers
    grep -P '\t[A-Z_]+$' "$scratch/symvers" | head -n 40 | add_seed symvers
    tail -n 40 "$scratch/symvers" | add_seed symvers
    # The older layouts: 5.4-5.9 (namespace third), 3.x/4.x (no namespace), 2.6 (3 columns).
    head -n 40 "$scratch/symvers" |
        awk -F'\t' -v OFS='\t' '{ print $1, $2, $5, $3, $4 }' | add_seed symvers
    head -n 40 "$scratch/symvers" | cut -f1-4 | add_seed symvers
    head -n 40 "$scratch/symvers" | cut -f1-3 | add_seed symvers
done <"$scratch/symvers-files"

# decompress
cat "$scratch/modules" "$scratch/symvers-files" | while IFS= read -r compressed; do
    case "$compressed" in
        *.xz | *.zst | *.gz) add_seed decompress <"$compressed" ;;
    esac
done
sample_module="$fixtures/built/6.1.0-55-amd64/fxstable.ko"
for check in none crc32 crc64 sha256; do
    xz -c --check="$check" "$sample_module" | add_seed decompress
done
xz -c --format=xz -0 "$sample_module" | add_seed decompress
{ xz -c "$sample_module"; xz -c "$sample_module"; } | add_seed decompress
zstd -cq --no-check "$sample_module" | add_seed decompress
zstd -cq --check -19 "$sample_module" | add_seed decompress
{ zstd -cq "$sample_module"; zstd -cq "$sample_module"; } | add_seed decompress
# A skippable frame (magic 0x184D2A50, 4-byte payload) before a real one.
{ printf '\120\052\115\030\004\000\000\000skip'; zstd -cq "$sample_module"; } | add_seed decompress
gzip -c -1 "$sample_module" | add_seed decompress
{ gzip -c "$sample_module"; gzip -c "$sample_module"; } | add_seed decompress
head -c 300 "$sample_module" | add_seed decompress

# cpio: an unpacked initramfs tree with what the image comparison looks at.
tree="$scratch/tree"
mkdir -p "$tree/usr/lib/modules/6.1.0-55-amd64/extra" "$tree/etc/modprobe.d" "$tree/bin"
cp "$sample_module" "$tree/usr/lib/modules/6.1.0-55-amd64/extra/"
xz -c "$sample_module" >"$tree/usr/lib/modules/6.1.0-55-amd64/extra/fxcompressed.ko.xz"
printf 'options fxstable debug=1\n' >"$tree/etc/modprobe.d/fx.conf"
printf '#!/bin/sh\n' >"$tree/bin/init"
ln -s ../bin/init "$tree/etc/init-link"
ln "$tree/etc/modprobe.d/fx.conf" "$tree/etc/modprobe.d/fx-hardlink.conf"
(cd "$tree" && find . | sort | cpio -o -H newc --quiet) >"$scratch/newc.cpio"
(cd "$tree" && find . | sort | cpio -o -H crc --quiet) >"$scratch/crc.cpio"
(cd "$tree" && find etc | sort | cpio -o -H newc --quiet) >"$scratch/small.cpio"
add_seed cpio <"$scratch/newc.cpio"
add_seed cpio <"$scratch/crc.cpio"
add_seed cpio <"$scratch/small.cpio"
{ cat "$scratch/small.cpio"; head -c 512 /dev/zero; cat "$scratch/crc.cpio"; } | add_seed cpio
{ cat "$scratch/small.cpio"; gzip -c "$scratch/newc.cpio"; } | add_seed cpio

for target in elf module_decision symvers decompress cpio; do
    echo "$target: $(find "$corpus/$target" -type f | wc -l) seeds in fuzz/corpus/$target"
done
