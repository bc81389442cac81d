#!/usr/bin/env bash
# Builds the tool's own RPM the way Kylin and openEuler build packages: the sources and the
# vendored crates as two tarballs, then rpmbuild with no network (cargo --offline).
#
#   scripts/build-rpm.sh TOPDIR     rpmbuild's top directory (made if missing); prints the
#                                   path of the binary RPM on the last line
#
# Source0 holds the files git tracks, as they are in the work tree. Source1 is made by
# `cargo vendor`, which needs crates.io; the build itself does not. Build dependencies are not
# checked (--nodeps): on Debian, rpm's database knows no cargo. %check is left out
# (--without check): the test suite runs in cargo test, and the RPM build stays one compile.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
topdir=${1:?usage: $0 TOPDIR}
mkdir -p "$topdir"
topdir=$(cd "$topdir" && pwd)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$top/Cargo.toml" | head -n1)
name=weak-modules-$version
mkdir -p "$topdir"/{SOURCES,BUILD,RPMS,SRPMS,SPECS}

git -C "$top" ls-files -z |
	tar -C "$top" --null -T - --transform "s|^|$name/|" -czf "$topdir/SOURCES/$name.tar.gz"

vendor=$topdir/vendor-work
rm -rf "$vendor" && mkdir -p "$vendor"
(cd "$top" && cargo vendor --locked --quiet "$vendor/vendor" >/dev/null)
tar -C "$vendor" -cf - vendor | xz -T0 -1 >"$topdir/SOURCES/$name-vendor.tar.xz"
rm -rf "$vendor"

rpmbuild -bb --nodeps --without check --define "_topdir $topdir" "$top/packaging/weak-modules.spec" >"$topdir/rpmbuild.log" 2>&1 ||
	{ tail -n 50 "$topdir/rpmbuild.log" >&2; echo "build-rpm.sh: rpmbuild failed, log in $topdir/rpmbuild.log" >&2; exit 1; }
find "$topdir/RPMS" -name "$name-*.rpm" | sort | tail -n1
