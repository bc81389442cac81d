#!/usr/bin/env bash
# Whole-tool timing with hyperfine: the native weak-modules against a reference weak-modules
# (e.g. RHEL's bash script) on the same example root, doing the same jobs.
#
#   benches/compare-bash.sh /path/to/reference/weak-modules [runs]
#
# The reference is not part of this project: pass the path of one you have. It needs a
# System.map per kernel and reads only gzip symvers, so the root used here gets empty
# System.map files and every symvers recompressed as boot/symvers-<krel>.gz. Both tools run
# with --no-initramfs and the real depmod; the root is reset before every run.
set -euo pipefail
reference=${1:?usage: $0 REFERENCE_WEAK_MODULES [RUNS]}
runs=${2:-10}
here=$(cd "$(dirname "$0")/.." && pwd)
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }

cargo build --release --quiet --manifest-path "$here/Cargo.toml"
native=${CARGO_TARGET_DIR:-$here/target}/release/weak-modules

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
cp -a "$here/fixtures/root/." "$root/"
for dir in "$root"/lib/modules/*/; do
	krel=$(basename "$dir")
	for symvers in "$dir"symvers.*; do
		[ -e "$symvers" ] || continue
		case $symvers in
		*.xz) xz -dc "$symvers" ;; *.zst) zstd -qdc "$symvers" ;; *) cat "$symvers" ;;
		esac | gzip -n >"$root/boot/symvers-$krel.gz"
		rm "$symvers"
	done
	: >"$root/boot/System.map-$krel"
done

# Every module of 6.1.0-55's extra/ that fits 6.1.0-56 by depmod's rules too: one that does not
# (fxnover) would make the reference roll the whole batch back.
modules=$(find "$root/lib/modules/6.1.0-55-amd64/extra" -name '*.ko*' ! -name 'fxnover*' | sort)
printf '%s\n' "$modules" >"$root/modules.list"
reset="rm -rf $root/lib/modules/*/weak-updates"
# The reference demands an existing dracut even with --no-initramfs (RHEL 9 kmod-28-9).
common="--basedir $root --no-initramfs --dracut /bin/true"

hyperfine --warmup 1 --runs "$runs" --prepare "$reset" \
	-n "native --add-modules (6 modules)" "$native $common --add-modules < $root/modules.list" \
	-n "reference --add-modules (6 modules)" "$reference $common --add-modules < $root/modules.list" \
	-n "native --add-kernel" "$native $common --add-kernel 6.1.0-56-amd64" \
	-n "reference --add-kernel" "$reference $common --add-kernel 6.1.0-56-amd64"
