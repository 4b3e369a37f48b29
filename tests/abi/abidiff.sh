#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# libupcie's ABI against the dump kept in the repository (abigail-tools), as
# TAP (meson suite abi):
#   tests/abi/abidiff.sh BUILD_DIR            compare; fail on a removed or
#                                             changed function, variable or
#                                             public type
#   tests/abi/abidiff.sh BUILD_DIR --update   rewrite the dump (after an intended
#                                        change: new symbols in a new version
#                                        node of lib/libupcie.map, or a new
#                                        soversion for a break)
#
# The dump is abi/libupcie.so.<soversion>.abi, made by abidw from the
# library's debug information, limited to the installed headers. Added
# functions pass (they are compatible) and are listed.
set -uo pipefail
build=${1:?usage: tests/abi/abidiff.sh BUILD_DIR [--update]}
top=$(cd "$(dirname "$0")/../.." && pwd)
so=$(readlink -f "$build/lib/libupcie.so") || { echo "Bail out! no $build/lib/libupcie.so"; exit 1; }
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
base=$top/abi/$soname.abi
. "$top/tests/lib/tap.sh"
for t in abidw abidiff; do
	command -v $t >/dev/null || tap_skip_all "$t missing: apt-get install abigail-tools"
done
# Public headers only: the installed ones, in the source and the build tree.
hdrs=(--headers-dir "$top/include/upcie" --headers-dir "$build/include/upcie")
if [ "${2:-}" = --update ]; then
	abidw "${hdrs[@]}" --no-corpus-path --no-comp-dir-path --drop-undefined-syms \
		--out-file "$base" "$so" || exit 1
	echo "wrote $base ($(grep -c '<elf-symbol name=.upcie_' "$base") exported upcie_ symbols)"
	exit 0
fi
if [ ! -f "$base" ]; then
	tap_fail "an ABI dump for $soname in abi/"
	tap_diag "  make one with: $0 $build --update"
	tap_fail "ABI of $soname" "no dump to compare with"
	tap_done
	exit 1
fi
tap_ok "an ABI dump for $soname in abi/"
out=$(abidiff --hd2 "$top/include/upcie" --hd2 "$build/include/upcie" --no-added-syms \
	--drop-private-types --suppressions "$top/abi/opaque.suppr" "$base" "$so" 2>&1)
rc=$?
abidiff --hd2 "$top/include/upcie" --hd2 "$build/include/upcie" "$base" "$so" 2>&1 |
	sed -n "s/^ *\[A\] '\(.*\)'.*/# added (compatible): \1/p"
# abidiff: bit 0 error, 1 usage, 2 change, 3 incompatible change. With added
# symbols left out, any change left is a removed or changed one.
n=$(nm -D --defined-only "$so" | awk '$2 != "A"' | grep -c ' upcie_')
if [ $rc -ne 0 ]; then
	tap_fail "ABI of $soname ($n exported upcie_ symbols) matches $(basename "$base")"
	tap_diag "$out"
	tap_diag "abidiff exit $rc. If intended: new symbols go in a new version node of"
	tap_diag "lib/libupcie.map, a break bumps the soversion in lib/meson.build; then run"
	tap_diag "$0 $build --update"
else
	tap_ok "ABI of $soname ($n exported upcie_ symbols) matches $(basename "$base")"
fi
tap_done
