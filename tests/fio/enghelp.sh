#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The README's command for the engine's options (fio --enghelp=...), run
# as written, with the engine built here: Debian's fio must list the
# engine's options. Prints TAP.
#   tests/fio/enghelp.sh ENGINE.so README.md
engine=${1:?usage: enghelp.sh ENGINE.so README.md}
readme=${2:?usage: enghelp.sh ENGINE.so README.md}
fio=${FIO:-fio}
. "$(dirname "$0")/../lib/tap.sh"
cmd=$(grep -o 'fio --enghelp=[^` ]*' "$readme" | head -n 1)
if [ -z "$cmd" ]; then
	tap_fail "the README shows a 'fio --enghelp=...' command" "none found"
	tap_done
	exit 1
fi
# The README's path is the build tree's: $PWD/build/fio/libupcie-fio.so.
arg=$(printf '%s' "${cmd#fio --enghelp=}" | sed "s|[^=]*libupcie-fio\.so|$engine|")
out=$("$fio" --enghelp="$arg" 2>&1)
if printf '%s\n' "$out" | grep -q '^nsid  *:' && printf '%s\n' "$out" | grep -q '^completion  *:'; then
	tap_ok "'$cmd' lists the engine's options (nsid, completion)"
	tap_done
	exit 0
fi
tap_fail "'$cmd' lists the engine's options" "run as fio --enghelp=$arg"
tap_diag "$(printf '%s\n' "$out" | head -n 5)"
tap_done
