#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# no-sim.sh UPCIE_PERF UPCIE_IDENTIFY: in a build without the sim, both
# tools asked for "sim" fail with their device-open exit code (2) and a
# message that names the build option.
. "$(dirname "$0")/../lib/tap.sh"
perf=$1
identify=$2
for tool in "$perf --device sim --time 1" "$identify sim"; do
	name=$(basename "${tool%% *}")
	# shellcheck disable=SC2086
	out=$($tool 2>&1)
	rc=$?
	if [ "$rc" = 2 ] && printf '%s\n' "$out" | grep -q -- '-Dsim=false'; then
		tap_ok "$name: 'sim' refused with exit 2, naming -Dsim=false"
	else
		tap_fail "$name: 'sim' refused with exit 2, naming -Dsim=false" \
			"exit $rc: $(printf '%s' "$out" | head -c 300)"
	fi
done
tap_done
