# SPDX-License-Identifier: BSD-3-Clause
# Guest script: does upcie-perf at QD 1 run slower after the kernel's nvme
# driver has done I/O on the controller? (BENCHMARKS.md, "QD 1 after the
# kernel's nvme driver".) Controller A, nsid 2 (4 KiB LBAs), 4 KiB randread,
# one queue, QD 1, 3 s runs. Run it with
#   qemu/run-guest BUILD_DIR vfio bench/guest-after-kernel.sh
# (or uio); fio is in the guest when the build has the fio engine.
#
# The kernel's nvme driver takes every controller at boot, so no run sees a
# controller the kernel never touched. What differs is the step just before
# a pair of runs, alternated within the boot so that drifts over the boot
# (the first runs after boot were often the slowest) fall on both sides:
#   warm      two runs, first thing after boot, not compared
#   bindonly  A to nvme (it probes: identify, queues, shadow doorbells;
#             no I/O), back to the user-space driver, then two runs
#   afterfio  A to nvme, fio io_uring 4 KiB randread QD 1 then QD 32 (1 s
#             ramp, 2 s each, O_DIRECT), back, then two runs
# three rounds of bindonly + afterfio. Each run's JSON is printed between
#   UPCIE-AK-BEGIN <phase> <round> <n>  and  UPCIE-AK-END <phase> <round> <n> rc=<rc>
# and each fio run as one line
#   UPCIE-AK-FIO <round> <qd> rc=<rc> <fio terse v3 line>
# Compare a round's bindonly and afterfio runs: iops, lat_ns.p50 (hardly
# moved by host preemption, unlike iops) and cq_doorbells_per_io.
. "$UPCIE_GUEST_LIB"

A=$UPCIE_CTRL_A
drv=$(upcie_user_driver)
secs=3

perf_runs() {
	_i=0
	while [ $_i -lt 2 ]; do
		_i=$((_i + 1))
		echo "UPCIE-AK-BEGIN $1 $2 $_i"
		upcie-perf --device "$A" --ns 2 --rw randread --bs 4096 --qd 1 --time "$secs" \
			--no-progress --json
		_rc=$?
		echo "UPCIE-AK-END $1 $2 $_i rc=$_rc"
		if [ $_rc -eq 0 ]; then
			t_pass "$1 round $2 run $_i"
		else
			t_fail "$1 round $2 run $_i" "exit $_rc"
		fi
	done
}

to_user() {
	upcie_bind "$A" "$drv" || {
		t_fail "bind $A to $drv"
		t_done
	}
}

to_nvme() {
	upcie_bind "$A" nvme || {
		t_fail "bind $A to nvme"
		t_done
	}
	dev=$(upcie_blockdev "$A" 2) || {
		t_fail "no block device for $A nsid 2"
		t_done
	}
}

kernel_fio() {
	for _qd in 1 32; do
		fio --name=ak --thread --time_based --runtime=2 --ramp_time=1 --size=64m \
			--norandommap --randrepeat=0 --output-format=terse --terse-version=3 \
			--rw=randread --bs=4k --iodepth="$_qd" --direct=1 --ioengine=io_uring \
			--filename="$dev" >/tmp/ak-fio.out 2>/tmp/ak-fio.err
		_rc=$?
		echo "UPCIE-AK-FIO $1 $_qd rc=$_rc $(grep '^3;' /tmp/ak-fio.out | head -n 1)"
		[ $_rc -eq 0 ] || sed 's/^/    /' /tmp/ak-fio.err | head -n 5
	done
}

if ! command -v fio >/dev/null; then
	t_skip "after-kernel runs" "no fio in the guest (build with the fio engine)"
	t_done
fi
to_user
perf_runs warm 0
for r in 1 2 3; do
	to_nvme
	to_user
	perf_runs bindonly "$r"
	to_nvme
	kernel_fio "$r"
	to_user
	perf_runs afterfio "$r"
done
upcie_bind "$A" nvme
t_done
