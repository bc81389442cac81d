#!/usr/bin/env bash
# Whole runs of the native weak-modules side by side with a reference weak-modules (RHEL 9's
# bash script, kmod-28-9.el9), on real Debian cloud kernels with their full module trees.
#
#   benches/against-bash.sh CACHE_DIR REFERENCE_WEAK_MODULES
#
# RUNS=N sets hyperfine's runs per command (10). Run as root: the jobs run on a loop-mounted
# ext4 image unless BENCH_FS=here (see below). The reference takes minutes per run on the
# jobs with 1,121 modules; REFERENCE_SLOW=1 times it there too (one run each). BEFORE=BINARY
# times an earlier build of ours too, on every job.
#
# CACHE_DIR (keep it outside the repository) gets the packages (`apt-get download`, unpacked
# with `dpkg-deb -x`, nothing installed) and root4/:
#   boot/symvers-<krel>.gz, boot/System.map-<krel>   of each kernel (from the headers'
#                                                    Module.symvers, see build_root)
#   lib/modules/6.1.0-50-cloud-amd64/extra/          every module of the -50 image, as
#                                                    out-of-tree packages would install them
#   lib/modules/6.1.0-5{3,4,5}-cloud-amd64/kernel/   each image's own modules (-53 without
#                                                    crypto_simd: a stripped tree)
# with every kernel's indexes built by depmod, saved, and restored before each timed run.
#
# Jobs, each ours against the reference (--no-initramfs --dracut /bin/true, real depmod, whose
# warnings both tools pass on and hyperfine discards):
#   (a) one module (ansi_cprng.ko of -50, which fits -53 and -54) --add-modules, offered to the
#       3 other kernels; the links both make must be the same, which is checked
#   (b) one module --add-modules on fixtures/root (8 kernels; symvers recompressed as gzip in
#       /boot and an empty System.map each, which the reference needs)
#   (c) the 1,121 modules of -50 --add-modules, offered to the 3 other kernels
#   (d) --add-kernel 6.1.0-53-cloud-amd64, offered the 1,121 modules of -50 (263 fit)
# plus ours alone with --dry-run (our own work, no depmod), and the peak memory of ours.
set -euo pipefail
cache=${1:?usage: $0 CACHE_DIR REFERENCE_WEAK_MODULES}
reference=${2:?usage: $0 CACHE_DIR REFERENCE_WEAK_MODULES}
runs=${RUNS:-10}
here=$(cd "$(dirname "$0")/.." && pwd)
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }

old=6.1.0-50-cloud-amd64
targets=(6.1.0-53-cloud-amd64 6.1.0-54-cloud-amd64 6.1.0-55-cloud-amd64)
declare -A version=(
	[6.1.0-50-cloud-amd64]=6.1.176-1 [6.1.0-53-cloud-amd64]=6.1.187-1
	[6.1.0-54-cloud-amd64]=6.1.190-1 [6.1.0-55-cloud-amd64]=6.1.192-1
)
root=$cache/root4
indexes=$cache/root4-indexes.tar

deb() { # package version -> the file apt-get download writes
	printf '%s/debs/%s_%s_amd64.deb' "$cache" "$1" "$2"
}

# Into a temporary name first, so that an interrupted build is not taken for a root.
build_root() {
	local krel pkg partial=$cache/root4.partial unpacked=$cache/unpacked4
	mkdir -p "$cache/debs"
	rm -rf "$partial" "$unpacked" && mkdir -p "$partial/boot" "$unpacked"
	for krel in "$old" "${targets[@]}"; do
		for pkg in "linux-image-$krel-unsigned" "linux-headers-$krel"; do
			[[ -s $(deb "$pkg" "${version[$krel]}") ]] ||
				(cd "$cache/debs" && apt-get download -q "$pkg=${version[$krel]}" >/dev/null)
			dpkg-deb -x "$(deb "$pkg" "${version[$krel]}")" "$unpacked/$pkg"
		done
		gzip -n -c "$unpacked/linux-headers-$krel/usr/src/linux-headers-$krel/Module.symvers" \
			>"$partial/boot/symvers-$krel.gz"
		# Debian's image ships a stub System.map (the real one is in the -dbg package); depmod
		# -F reads only its __ksymtab_ names, which are the vmlinux lines of Module.symvers.
		gzip -dc "$partial/boot/symvers-$krel.gz" |
			awk -F'\t' '$3 == "vmlinux" { print "0000000000000000 r __ksymtab_" $2 }' \
				>"$partial/boot/System.map-$krel"
		mkdir -p "$partial/lib/modules/$krel"
	done
	cp -a "$unpacked/linux-image-$old-unsigned/lib/modules/$old/kernel" \
		"$partial/lib/modules/$old/extra"
	for krel in "${targets[@]}"; do
		local image=$unpacked/linux-image-$krel-unsigned/lib/modules/$krel
		cp -a "$image/kernel" "$partial/lib/modules/$krel/kernel"
		cp "$image"/modules.{order,builtin,builtin.modinfo} "$partial/lib/modules/$krel/"
	done
	find "$partial/lib/modules/${targets[0]}/kernel" -name 'crypto_simd.ko*' -delete
	for krel in "$old" "${targets[@]}"; do
		depmod -b "$partial" -ae -F "$partial/boot/System.map-$krel" "$krel" 2>/dev/null
	done
	rm -rf "$unpacked"
	mv "$partial" "$root"
	(cd "$root" && find lib/modules -maxdepth 2 -name 'modules.*' -print0 |
		tar --null -cf "$indexes" -T -)
}

# The fixture root as the reference can read it: gzip symvers in /boot, a System.map each.
fixture_root() {
	local dir krel symvers
	rm -rf "$cache/fixtures8" && cp -a "$here/fixtures/root" "$cache/fixtures8"
	for dir in "$cache"/fixtures8/lib/modules/*/; do
		krel=$(basename "$dir")
		for symvers in "$dir"symvers.*; do
			[ -e "$symvers" ] || continue
			case $symvers in
			*.xz) xz -dc "$symvers" ;; *.zst) zstd -qdc "$symvers" ;; *) cat "$symvers" ;;
			esac | gzip -n >"$cache/fixtures8/boot/symvers-$krel.gz"
			rm "$symvers"
		done
		: >"$cache/fixtures8/boot/System.map-$krel"
	done
	(cd "$cache/fixtures8" && find lib/modules -maxdepth 2 -name 'modules.*' -print0 |
		tar --null -cf "$cache/fixtures8-indexes.tar" -T -)
}

[[ -d $root ]] || build_root
fixture_root
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
native=${CARGO_TARGET_DIR:-$here/target}/release/weak-modules

# Where the jobs run: by default a fresh ext4 with a journal (mkfs.ext4's defaults), loop-mounted
# from an image in CACHE_DIR, as on an installed system. BENCH_FS=here runs them in CACHE_DIR
# itself. (On an ext4 without a journal, the inode allocator passes over every inode freed in
# the last minute, reading each from disk; the reset before each run frees hundreds, so there
# every run makes its links more slowly than the one before.)
work=$cache
if [[ ${BENCH_FS:-ext4} = ext4 ]]; then
	work=$cache/ext4
	mkdir -p "$work"
	if ! mountpoint -q "$work"; then
		rm -f "$cache/ext4.img" && truncate -s 2G "$cache/ext4.img"
		mkfs.ext4 -q -F "$cache/ext4.img"
		mount -o loop "$cache/ext4.img" "$work" ||
			{ echo "cannot loop-mount an ext4 image: run as root, or with BENCH_FS=here" >&2; exit 1; }
	fi
	trap 'umount "$work"' EXIT
	rm -rf "$work/root4" "$work/fixtures8"
	cp -a "$root" "$cache/fixtures8" "$indexes" "$cache/fixtures8-indexes.tar" "$work/"
	root=$work/root4
	indexes=$work/root4-indexes.tar
fi
fixtures8=$work/fixtures8
echo "filesystem of the jobs: $(findmnt -no FSTYPE,OPTIONS -T "$work")"

reset="rm -rf $root/lib/modules/*/weak-updates && tar -xf $indexes -C $root"
reset8="rm -rf $fixtures8/lib/modules/*/weak-updates && tar -xf $work/fixtures8-indexes.tar -C $fixtures8"
one=$(find "$root/lib/modules/$old/extra" -name 'ansi_cprng.ko*' | head -n1)
echo "$one" >"$cache/one.list"
find "$root/lib/modules/$old/extra" -name '*.ko*' | sort >"$cache/all.list"
echo "$fixtures8/lib/modules/6.1.0-50-amd64/extra/fx/fxmisc.ko" >"$cache/one8.list"
common="--basedir $root --no-initramfs --dracut /bin/true"
common8="--basedir $fixtures8 --no-initramfs --dracut /bin/true"

# (a) The links both tools make must be the same: link path -> the file it resolves to.
links() {
	(cd "$1" && find lib/modules/*/weak-updates -type l 2>/dev/null | sort |
		while read -r link; do printf '%s -> %s\n' "$link" "$(readlink -f "$link")"; done)
}
eval "$reset" && "$native" $common --add-modules <"$cache/one.list" && links "$root" >"$cache/links.native"
eval "$reset" && "$reference" $common --add-modules <"$cache/one.list" && links "$root" >"$cache/links.reference"
if ! diff -u "$cache/links.reference" "$cache/links.native"; then
	echo "(a): the native tool's links differ from the reference's" >&2
	exit 1
fi
echo "(a): both make the same $(wc -l <"$cache/links.native") links"

echo "load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"

before=()
if [[ -n ${BEFORE:-} ]]; then
	before=(-n "(a) before" "$BEFORE $common --add-modules < $cache/one.list"
		-n "(a) before --dry-run" "$BEFORE $common --dry-run --add-modules < $cache/one.list")
fi
hyperfine --warmup 2 --runs "$runs" --prepare "$reset" --export-markdown "$cache/a.md" "${before[@]}" \
	-n "(a) ours" "$native $common --add-modules < $cache/one.list" \
	-n "(a) reference" "$reference $common --add-modules < $cache/one.list" \
	-n "(a) ours --dry-run" "$native $common --dry-run --add-modules < $cache/one.list"
if [[ -n ${BEFORE:-} ]]; then
	before=(-n "(b) before --dry-run" "$BEFORE $common8 --dry-run --add-modules < $cache/one8.list")
fi
hyperfine --warmup 2 --runs "$runs" --prepare "$reset8" --export-markdown "$cache/b.md" "${before[@]}" \
	-n "(b) ours" "$native $common8 --add-modules < $cache/one8.list" \
	-n "(b) reference" "$reference $common8 --add-modules < $cache/one8.list" \
	-n "(b) ours --dry-run" "$native $common8 --dry-run --add-modules < $cache/one8.list" \
	-n "(b) ours --dry-run --add-kernel (1 kernel)" "$native $common8 --dry-run --add-kernel 6.1.0-56-amd64"
slow=()
if [[ ${REFERENCE_SLOW:-0} = 1 ]]; then
	slow=(-n "(c) reference" "$reference $common --add-modules < $cache/all.list"
		-n "(d) reference" "$reference $common --add-kernel ${targets[0]}")
fi
if [[ -n ${BEFORE:-} ]]; then
	before=(-n "(c) before" "$BEFORE $common --add-modules < $cache/all.list"
		-n "(c) before --dry-run" "$BEFORE $common --dry-run --add-modules < $cache/all.list"
		-n "(d) before" "$BEFORE $common --add-kernel ${targets[0]}"
		-n "(d) before --dry-run" "$BEFORE $common --dry-run --add-kernel ${targets[0]}")
fi
hyperfine --warmup 2 --runs "$runs" --prepare "$reset" --export-markdown "$cache/cd.md" "${before[@]}" \
	-n "(c) ours" "$native $common --add-modules < $cache/all.list" \
	-n "(c) ours --dry-run" "$native $common --dry-run --add-modules < $cache/all.list" \
	-n "(d) ours" "$native $common --add-kernel ${targets[0]}" \
	-n "(d) ours --dry-run" "$native $common --dry-run --add-kernel ${targets[0]}"
if ((${#slow[@]})); then
	hyperfine --runs 1 --prepare "$reset" --export-markdown "$cache/cd-reference.md" "${slow[@]}"
fi

# With depmod, every run removes and makes hundreds of links, and on some filesystems each run
# is slower than the one before (see BENCH_FS above): hyperfine's runs of one command after the
# other favour whichever goes first. So the jobs with depmod are also timed alternating, one
# run of each in turn, from the same restored indexes.
alternate() { # label, then the two commands
	local label=$1 first=$2 second=$3 i start a=0 b=0
	for ((i = 0; i < runs; i++)); do
		eval "$reset"
		start=$(date +%s%N) && sh -c "$first" >/dev/null 2>&1 && a=$((a + $(date +%s%N) - start))
		eval "$reset"
		start=$(date +%s%N) && sh -c "$second" >/dev/null 2>&1 && b=$((b + $(date +%s%N) - start))
	done
	echo "$label alternating, $runs runs each: before $((a / runs / 1000000)) ms, ours $((b / runs / 1000000)) ms"
}
if [[ -n ${BEFORE:-} ]]; then
	alternate "(c)" "$BEFORE $common --add-modules < $cache/all.list" "$native $common --add-modules < $cache/all.list"
	alternate "(d)" "$BEFORE $common --add-kernel ${targets[0]}" "$native $common --add-kernel ${targets[0]}"
fi

# The largest resident set of the command and its children (depmod's, when it runs).
peak() { # label, then the command
	local label=$1
	shift
	eval "$reset"
	/usr/bin/time -f "$label: %M KiB peak, %e s" "$@" >/dev/null
}
peak "(a) ours" sh -c "$native $common --add-modules < $cache/one.list"
peak "(a) reference" sh -c "$reference $common --add-modules < $cache/one.list"
peak "(c) ours --dry-run" sh -c "$native $common --dry-run --add-modules < $cache/all.list"
peak "(c) ours" sh -c "$native $common --add-modules < $cache/all.list"
peak "(d) ours --dry-run" sh -c "$native $common --dry-run --add-kernel ${targets[0]}"
peak "(d) ours" sh -c "$native $common --add-kernel ${targets[0]}"
eval "$reset"
