#!/usr/bin/env bash
# Runs every test. The integration tests run Debian's real depmod, pack initramfs images with
# cpio, kill the binary at chosen system calls with strace, build and install packages with the
# real rpmbuild and rpm (whose brp scripts use file), and render the manual with man; on a
# machine without them, they are installed first (Debian/Ubuntu, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in depmod:kmod cpio:cpio xz:xz-utils zstd:zstd strace:strace rpmbuild:rpm file:file man:man-db; do
	command -v "${tool%%:*}" >/dev/null || [ -x "/sbin/${tool%%:*}" ] || missing+=("${tool#*:}")
done
if ((${#missing[@]})); then
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		echo "test.sh: please install: ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# A mirror caught mid-sync fails the update; the lists already here may still do.
	apt-get update -q || echo "warning: apt-get update failed, installing from the current lists" >&2
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

cargo test "$@"
