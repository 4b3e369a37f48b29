#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# libupcie-preload.so on the sim: per-I/O time of 4 KiB O_DIRECT preads at
# QD 1 and of a malloc(64) + free pair (free looks for registrations), for
# two builds of the library taken in turns in one run, and their ratio.
#
#   bench/preload-microbench.sh BEFORE_SO AFTER_SO UPCIE_PRELOAD_CHECK [ROUNDS]
set -e
BEFORE=$1
AFTER=$2
CHECK=$3
ROUNDS=${4:-3}
[ -f "$BEFORE" ] && [ -f "$AFTER" ] && [ -x "$CHECK" ] ||
	{ echo "usage: $0 BEFORE_SO AFTER_SO UPCIE_PRELOAD_CHECK [ROUNDS]" >&2; exit 2; }
run() {
	UPCIE_PRELOAD=/dev/upcie-bench=sim/2 LD_PRELOAD=$1 "$CHECK" /dev/upcie-bench /dev/null bench
}
i=0
: >"${TMPDIR:-/tmp}/plbench.$$"
while [ $i -lt "$ROUNDS" ]; do
	run "$BEFORE" | sed 's/^/before /' >>"${TMPDIR:-/tmp}/plbench.$$"
	run "$AFTER" | sed 's/^/after /' >>"${TMPDIR:-/tmp}/plbench.$$"
	i=$((i + 1))
done
awk '{ k = $2; sub(":", "", k); v[$1 " " k] += $3; n[$1 " " k]++ }
END {
	split("pread_4k_qd1_ns malloc_free_ns", ks, " ")
	for (j = 1; j <= 2; j++) {
		b = v["before " ks[j]] / n["before " ks[j]]; a = v["after " ks[j]] / n["after " ks[j]]
		printf "%-16s before %10.1f  after %10.1f  after/before %.2f\n", ks[j], b, a, a / b
	}
}' "${TMPDIR:-/tmp}/plbench.$$"
rm -f "${TMPDIR:-/tmp}/plbench.$$"
