#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The README's API example, built against an installed copy of the library
# (headers, pkg-config file, shared library) in a staging directory, found
# the way a user of a relocated install finds it: pkg-config --define-prefix.
# Run on the sim it must read a block and return 1; given a controller that
# is not there it must return an error, not crash. Prints TAP.
#   tests/readme-example.sh BUILD_DIR
set -uo pipefail
build=$1
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib/tap.sh"

DESTDIR=$tmp/root meson install -C "$build" --no-rebuild >&2
pcdir=$(dirname "$(find "$tmp/root" -name libupcie.pc | head -n 1)")
python3 - "$top/README.md" "$tmp/example.c" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
code = re.findall(r"```c\n(.*?)```", text, re.S)[0]
code += ('\n#include <stdio.h>\nint main(int argc, char **argv)\n{\n'
         '\tprintf("%d\\n", read_first_block(argc > 1 ? argv[1] : "sim"));\n'
         '\treturn 0;\n}\n')
open(sys.argv[2], "w").write(code)
PY
pc() { PKG_CONFIG_PATH=$pcdir pkg-config --define-prefix "$@" libupcie; }
incdir=$(pc --variable=includedir)
libdir=$(pc --variable=libdir)
if [ -f "$incdir/upcie/upcie.h" ] && [ -f "$libdir/libupcie.so" ]; then
	tap_ok "pkg-config --define-prefix: includedir and libdir are where the files are"
else
	tap_fail "pkg-config --define-prefix: includedir '$incdir', libdir '$libdir'; the files are at $(find "$tmp/root" -name upcie.h -o -name libupcie.so | tr '\n' ' ')"
fi
flags=$(pc --cflags --libs)
tap_diag "pkg-config --define-prefix --cflags --libs libupcie: $flags"
if cc -std=c11 -Wall -Wextra -Werror "$tmp/example.c" $flags -o "$tmp/example" >&2; then
	tap_ok "README example builds with pkg-config --define-prefix against the installed copy"
else
	tap_fail "README example does not build with: $flags"
	tap_done
	exit 1
fi
out=$(LD_LIBRARY_PATH=$libdir "$tmp/example" sim 2>&1)
if [ "$out" = 1 ]; then
	tap_ok "README example reads a block on sim"
else
	tap_fail "README example on sim printed '$out', expected 1"
fi
# A controller that is not there: every call can fail, the example checks
# each (as its text says) and returns an error.
out=$(LD_LIBRARY_PATH=$libdir "$tmp/example" 0000:ff:1f.7 2>&1)
rc=$?
if [ "$rc" = 0 ] && [ "${out:0:1}" = - ]; then
	tap_ok "README example on a missing controller returns an error ($out)"
else
	tap_fail "README example on a missing controller: exit $rc, printed '$out' (want a negative number, no crash)"
fi
tap_done
