# SPDX-License-Identifier: BSD-3-Clause
# Guest side of bench/run --fio: Debian's fio on controller A, nsid 2
# (4 KiB LBAs), first through the kernel's nvme driver (io_uring, then
# libaio, O_DIRECT, on the namespace's block device; then io_uring with
# hipri after reloading nvme with poll queues), then through
# libupcie's fio engine with A bound to this configuration's user-space
# driver, and upcie-perf on the same namespace with the same depth and
# doorbell batching (the library without fio). Same boot, same emulated
# controller and namespace.
# Each fio run prints one line for bench/run:
#   UPCIE-FIO <engine> <workload> rc=<rc> <fio terse v3 line>
# each upcie-perf run its JSON between
#   UPCIE-FIO-PERF-BEGIN <workload>  and  UPCIE-FIO-PERF-END <workload> rc=<rc>
# Runs are short (TCG): fio 1 s ramp, 3 s measured; upcie-perf 3 s.
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
A=$UPCIE_CTRL_A
engine=/upcie/fio/libupcie-fio.so
secs=${UPCIE_FIO_SECS:-3}

# workload name -> fio options
opts() {
	case $1 in
	randread-4k-qd1) echo "--rw=randread --bs=4k --iodepth=1" ;;
	randread-4k-qd32) echo "--rw=randread --bs=4k --iodepth=32 --iodepth_batch_submit=8 --iodepth_batch_complete_min=1" ;;
	read-128k-qd8) echo "--rw=read --bs=128k --iodepth=8" ;;
	esac
}
WORKLOADS="randread-4k-qd1 randread-4k-qd32 read-128k-qd8"

# workload name -> upcie-perf options (--batch: fio's iodepth_batch_submit)
perf_opts() {
	case $1 in
	randread-4k-qd1) echo "--rw randread --bs 4096 --qd 1 --batch 1" ;;
	randread-4k-qd32) echo "--rw randread --bs 4096 --qd 32 --batch 8" ;;
	read-128k-qd8) echo "--rw read --bs 131072 --qd 8 --batch 1" ;;
	esac
}

# run <engine label> <workload> <fio options...>
run() {
	_e=$1
	_w=$2
	shift 2
	# shellcheck disable=SC2046
	fio --name=bench --thread --time_based --runtime="$secs" --ramp_time=1 --size=64m \
		--norandommap --randrepeat=0 --output-format=terse --terse-version=3 \
		$(opts "$_w") "$@" >/tmp/fio.out 2>/tmp/fio.err
	_rc=$?
	echo "UPCIE-FIO $_e $_w rc=$_rc $(grep '^3;' /tmp/fio.out | head -n 1)"
	[ $_rc -eq 0 ] || sed 's/^/    /' /tmp/fio.err | head -n 5
}

if ! dev=$(upcie_blockdev "$A" 2); then
	t_fail "fio bench" "no block device for A nsid 2"
	t_done
fi
for w in $WORKLOADS; do
	run io_uring "$w" --ioengine=io_uring --direct=1 --filename="$dev"
	run libaio "$w" --ioengine=libaio --direct=1 --filename="$dev"
done
# Polled io_uring (hipri) needs the nvme driver's poll queues: reload it
# with poll_queues=2 (every controller goes and comes back on nvme).
if rmmod nvme && modprobe nvme poll_queues=2 && dev=$(upcie_blockdev "$A" 2); then
	echo "nvme reloaded: $(cat /sys/module/nvme/parameters/poll_queues) poll queues; $dev"
	for w in $WORKLOADS; do
		run io_uring-hipri "$w" --ioengine=io_uring --hipri --direct=1 --filename="$dev"
	done
else
	echo "nvme with poll_queues=2: not available, no hipri runs"
	dev=$(upcie_blockdev "$A" 2)
fi
if upcie_bind "$A" "$drv"; then
	for w in $WORKLOADS; do
		# Polled (--hipri), as this row always was; interrupts: bench/guest-irq.sh.
		run libupcie "$w" --ioengine="external:$engine" --filename="$(echo "$A" | tr : .)" \
			--nsid=2 --hipri
	done
	for w in $WORKLOADS; do
		echo "UPCIE-FIO-PERF-BEGIN $w"
		# shellcheck disable=SC2046
		upcie-perf --device "$A" --ns 2 --time "$secs" --no-progress --json $(perf_opts "$w")
		echo "UPCIE-FIO-PERF-END $w rc=$?"
	done
	upcie_bind "$A" nvme
	t_pass "fio bench on $UPCIE_CONFIG"
else
	t_fail "fio bench" "cannot bind A to $drv"
fi
t_done
