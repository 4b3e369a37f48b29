#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# upcie-qd-loop's command line: --help and -h print the usage and exit 0,
# bad arguments exit 1 with the usage, a controller that is not there
# exits 2 naming it. Prints TAP.
#   tests/qd-loop-args.sh UPCIE_QD_LOOP
prog=${1:?usage: qd-loop-args.sh UPCIE_QD_LOOP}
. "$(dirname "$0")/lib/tap.sh"
t() {
	want=$1 text=$2 desc=$3
	shift 3
	# shellcheck disable=SC2086 # a cross build's wrapper (qemu-user) is words
	out=$(${MESON_EXE_WRAPPER:-} "$prog" "$@" 2>&1)
	rc=$?
	if [ "$rc" = "$want" ] && printf '%s\n' "$out" | grep -qF -- "$text"; then
		tap_ok "$desc (exit $rc)"
	else
		tap_fail "$desc" "exit $rc (want $want), output: $(printf '%s' "$out" | head -n 3 | tr '\n' ' ')"
	fi
}
t 0 "usage: upcie-qd-loop DEVICE" "--help prints the usage" --help
t 0 "usage: upcie-qd-loop DEVICE" "-h prints the usage" -h
t 1 "usage: upcie-qd-loop DEVICE" "no arguments: the usage"
t 1 "usage: upcie-qd-loop DEVICE" "an unknown option: the usage" --bogus
t 1 "QD" "a bad depth names QD" sim 0
t 2 "0000:ff:1f.7" "a missing controller is named" 0000:ff:1f.7 1 1
tap_done
