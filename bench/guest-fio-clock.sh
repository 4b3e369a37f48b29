# SPDX-License-Identifier: BSD-3-Clause
# fio's own clock in the QEMU guest (README, "Polling or interrupts"): on
# controller A nsid 2, 4 KiB randread at QD 1, upcie-perf polled and --irq,
# then Debian's fio with the libupcie engine, completion=poll and irq, each
# with fio's default clock and with --clocksource=cpu (the TSC), and the
# engine's wait counters (wait_stats=1). One boot:
#   qemu/run-guest BUILD vfio bench/guest-fio-clock.sh
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
A=$UPCIE_CTRL_A
engine=/upcie/fio/libupcie-fio.so
upcie_bind "$A" "$drv" || {
	t_fail "bind $A to $drv"
	t_done
}
echo "clocksource: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
for opts in "" "--irq"; do
	echo "== upcie-perf ${opts:-polled}"
	# shellcheck disable=SC2086
	upcie-perf --device "$A" --ns 2 --rw randread --bs 4096 --qd 1 --time 2 --no-progress \
		$opts 2>&1 | grep -E "iops:|cpu_us_per_io|wait:" | head -n 3
done
if command -v fio >/dev/null && [ -e "$engine" ]; then
	for m in poll irq; do
		for cs in "" --clocksource=cpu; do
			echo "== fio completion=$m ${cs:-default clock}"
			# shellcheck disable=SC2086
			fio --name=x --thread --time_based --runtime=2 --ramp_time=1 --size=64m \
				--norandommap --randrepeat=0 --rw=randread --bs=4k --iodepth=1 \
				--ioengine="external:$engine" --filename="$(echo "$A" | tr : .)" \
				--nsid=2 --completion=$m --wait_stats=1 $cs --output-format=terse \
				--terse-version=3 2>&1 |
				awk -F';' 'NF > 50 { print "iops=" $8, "usr=" $88, "sys=" $89; next } { print }'
		done
	done
	t_pass "fio's clock measured on $A ($drv)"
else
	t_skip "fio's clock on $A" "no fio or no engine in the guest"
fi
upcie_bind "$A" nvme
t_done
