#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The README's command for the engine's options (fio --enghelp=...), run
# as written, with the engine built here: Debian's fio must list the
# engine's options. Prints TAP.
#   tests/fio/enghelp.sh ENGINE.so README.md
engine=${1:?usage: enghelp.sh ENGINE.so README.md}
readme=${2:?usage: enghelp.sh ENGINE.so README.md}
fio=${FIO:-fio}
cmd=$(grep -o 'fio --enghelp=[^` ]*' "$readme" | head -n 1)
if [ -z "$cmd" ]; then
	echo "not ok 1 - the README shows no 'fio --enghelp=...' command"
	echo "1..1"
	exit 1
fi
# The README's path is the build tree's: $PWD/build/fio/libupcie-fio.so.
arg=$(printf '%s' "${cmd#fio --enghelp=}" | sed "s|[^=]*libupcie-fio\.so|$engine|")
out=$("$fio" --enghelp="$arg" 2>&1)
if printf '%s\n' "$out" | grep -q '^nsid  *:' && printf '%s\n' "$out" | grep -q '^completion  *:'; then
	echo "ok 1 - '$cmd' lists the engine's options (nsid, completion)"
	echo "1..1"
	exit 0
fi
echo "not ok 1 - '$cmd' (run as fio --enghelp=$arg) does not list the engine's options:"
printf '%s\n' "$out" | head -n 5 | sed 's/^/#   /'
echo "1..1"
exit 1
