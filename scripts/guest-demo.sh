# SPDX-License-Identifier: BSD-3-Clause
# Guest side of scripts/demo (busybox sh): bind controller A for this
# configuration's backend, identify it, run short perf workloads, and print
# one "DEMO: <backend> ..." line per workload for the host to collect.
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
A=$UPCIE_CTRL_A
echo "hugepages: $(hugepages info 2>/dev/null | head -n 4 | tr '\n' ' ')"
t_run "bind $A to $drv (devbind)" upcie_bind "$A" "$drv"
t_run "upcie-identify $A" upcie-identify "$A"

# Top-level JSON fields of upcie-perf sit on their own lines, two spaces in.
field() {
	sed -n "s/^  \"$1\": \([0-9.]*\).*/\1/p" /tmp/perf.json | head -n 1
}
# A percentile of the run's lat_ns object (one member per line).
lat() {
	awk -v k="\"$1\":" '/^  "lat_ns": \{/ { on = 1; next }
		on && /^  \}/ { exit }
		on && $1 == k { sub(/,$/, "", $2); print $2; exit }' /tmp/perf.json
}

for w in "randread 1" "randread 32" "randwrite 32"; do
	rw=${w% *}
	qd=${w#* }
	name="upcie-perf $rw 4KiB qd$qd"
	if upcie-perf --device "$A" --ns 1 --rw "$rw" --bs 4096 --qd "$qd" --time 3 --json \
		>/tmp/perf.json 2>/tmp/perf.err; then
		iops=$(field iops)
		echo "DEMO: $UPCIE_CONFIG $rw 4KiB qd$qd: $(printf '%.0f' "$iops") IOPS," \
			"lat p50 $(lat p50) ns p99 $(lat p99) ns," \
			"doorbell writes/IO $(field doorbells_per_io)"
		t_pass "$name"
	else
		cat /tmp/perf.err
		t_fail "$name"
	fi
done
t_run "give $A back to nvme" upcie_bind "$A" nvme
t_done
