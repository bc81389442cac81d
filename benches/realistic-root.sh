#!/usr/bin/env bash
# Whole-tool timing on a root of real size: two Debian cloud kernels, every module of the older
# one offered to the newer one.
#
#   benches/realistic-root.sh CACHE_DIR [WEAK_MODULES_BINARY...]
#
# Builds CACHE_DIR/root once (packages fetched with `apt-get download` into CACHE_DIR/debs and
# unpacked with `dpkg-deb -x`; nothing is installed), then, for the binaries given, times two
# dry runs with hyperfine:
#   - 1 module:      --add-modules of one module of 6.1.0-50-cloud (dummy.ko)
#   - every module:  --add-kernel 6.1.0-53-cloud-amd64, offered the 1,121 modules of -50-cloud
# (RUNS=N sets hyperfine's runs per command, 20 by default.)
# The root:
#   boot/symvers-<krel>.gz                    Module.symvers of each kernel's headers package
#   lib/modules/6.1.0-50-cloud-amd64/extra/   every module of the -50-cloud image, as out-of-tree
#                                             packages would install them
#   lib/modules/6.1.0-53-cloud-amd64/kernel/  the -53-cloud image's own modules, crypto_simd.ko
#                                             left out (a stripped tree: its users must not link)
# Keep CACHE_DIR outside the repository; nothing of it is committed.
set -euo pipefail
cache=${1:?usage: $0 CACHE_DIR [WEAK_MODULES_BINARY...]}
shift
old=6.1.0-50-cloud-amd64 new=6.1.0-53-cloud-amd64
packages=(
	linux-image-$old-unsigned=6.1.176-1
	linux-headers-$old=6.1.176-1
	linux-image-$new-unsigned=6.1.187-1
	linux-headers-$new=6.1.187-1
)
root=$cache/root

deb() { # package=version -> the file apt-get download writes
	local pkg=${1%%=*} ver=${1#*=}
	printf '%s/debs/%s_%s_amd64.deb' "$cache" "$pkg" "$ver"
}

# Into a temporary name first, so that an interrupted build is not taken for a root.
build_root() {
	local spec krel unpacked=$cache/unpacked root=$cache/root.partial
	mkdir -p "$cache/debs"
	rm -rf "$root" "$unpacked" && mkdir -p "$root/boot" "$unpacked"
	for spec in "${packages[@]}"; do
		[[ -s $(deb "$spec") ]] || (cd "$cache/debs" && apt-get download -q "$spec" >/dev/null)
		dpkg-deb -x "$(deb "$spec")" "$unpacked/${spec%%=*}"
	done
	for krel in $old $new; do
		gzip -n -c "$unpacked/linux-headers-$krel/usr/src/linux-headers-$krel/Module.symvers" \
			>"$root/boot/symvers-$krel.gz"
		mkdir -p "$root/lib/modules/$krel"
	done
	cp -a "$unpacked/linux-image-$old-unsigned/lib/modules/$old/kernel" "$root/lib/modules/$old/extra"
	local image=$unpacked/linux-image-$new-unsigned/lib/modules/$new
	cp -a "$image/kernel" "$root/lib/modules/$new/kernel"
	cp "$image"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$new/"
	find "$root/lib/modules/$new/kernel" -name 'crypto_simd.ko*' -delete
	rm -rf "$unpacked"
	mv "$root" "$cache/root"
	root=$cache/root
	printf '%s modules offered, %s installed for %s\n' \
		"$(find "$root/lib/modules/$old/extra" -name '*.ko*' | wc -l)" \
		"$(find "$root/lib/modules/$new/kernel" -name '*.ko*' | wc -l)" "$new"
}

[[ -d $root ]] || build_root
(($#)) || exit 0
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
one=$(find "$root/lib/modules/$old/extra" -name 'dummy.ko*' | head -n1)
args=()
for binary in "$@"; do
	args+=(-n "$binary: 1 module" "echo $one | $binary --basedir $root --dry-run --no-initramfs --add-modules")
done
for binary in "$@"; do
	args+=(-n "$binary: every module" "$binary --basedir $root --dry-run --no-initramfs --add-kernel $new")
done
hyperfine --warmup 2 --runs "${RUNS:-20}" "${args[@]}"
