#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The README's API example, built against an installed copy of the library
# (headers, pkg-config file, shared library) and run on the sim: it must
# read a block and return 1. Prints TAP (one check).
#   tests/readme-example.sh BUILD_DIR
set -euo pipefail
build=$1
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

DESTDIR=$tmp/root meson install -C "$build" --no-rebuild >&2
pcdir=$(dirname "$(find "$tmp/root" -name libupcie.pc | head -n 1)")
python3 - "$top/README.md" "$tmp/example.c" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
code = re.findall(r"```c\n(.*?)```", text, re.S)[0]
code += '\n#include <stdio.h>\nint main(void)\n{\n\tprintf("%d\\n", read_first_block("sim"));\n\treturn 0;\n}\n'
open(sys.argv[2], "w").write(code)
PY
flags=$(PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$tmp/root pkg-config --cflags --libs libupcie)
cc -std=c11 -Wall -Wextra -Werror "$tmp/example.c" $flags -o "$tmp/example" >&2
libdir=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir libupcie)
out=$(LD_LIBRARY_PATH=$tmp/root$libdir "$tmp/example")
. "$(dirname "$0")/lib/tap.sh"
if [ "$out" = 1 ]; then
	tap_ok "README example, installed and built with pkg-config, reads a block on sim"
else
	tap_fail "README example on sim printed '$out', expected 1"
fi
tap_done
