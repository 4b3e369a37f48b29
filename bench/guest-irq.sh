# SPDX-License-Identifier: BSD-3-Clause
# Guest side of bench/run --irq: polled against interrupt-driven completion,
# on controller A (nsid 2, 4 KiB LBAs), 4 KiB randread, in one boot:
#   1. the kernel's nvme driver: fio io_uring (interrupts), then io_uring
#      --hipri after reloading nvme with poll_queues=2;
#   2. A bound to this configuration's user-space driver: upcie-perf polled,
#      --irq and --hybrid 20, then Debian's fio with the libupcie engine,
#      completion=poll, irq and hybrid;
# each at QD 1 and QD 32 with one and two jobs (fio threads; upcie-perf
# --qpairs, a thread each), and a rate-limited run (2000 IOPS in all, QD 1,
# one job) where the CPU time is the figure. Runs of 2 s (fio: 1 s ramp).
# fio reads its clock with --clocksource=cpu (the TSC), kernel and engine
# runs alike: the guest's clocksource is the emulated HPET, where each of
# fio's clock_gettime calls is a system call and an MMIO read, and fio
# reads it several times per I/O (it halved the engine's interrupt-mode
# IOPS at QD 1: 1002 against 2351 with the TSC, upcie-perf --irq 2231).
# Lines for bench/run:
#   UPCIE-IRQ-BEGIN <label> <qd> <jobs> <rate>, then upcie-perf's or fio's
#   JSON (fio: --group_reporting, one job entry for all), then
#   UPCIE-IRQ-END <label> <qd> <jobs> <rate> rc=<rc>
# <rate> is 0 for unlimited runs.
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
A=$UPCIE_CTRL_A
secs=2
RATE=2000
engine=/upcie/fio/libupcie-fio.so

# fio_run <label> <qd> <jobs> <rate> fio-options...
fio_run() {
	_l=$1 _qd=$2 _j=$3 _r=$4
	shift 4
	_b=$((_qd < 8 ? _qd : 8))
	set -- "$@" --name=irq --thread --time_based --runtime="$secs" --ramp_time=1 --size=64m \
		--norandommap --randrepeat=0 --output-format=json \
		--group_reporting --numjobs="$_j" --rw=randread --bs=4k --iodepth="$_qd" \
		--iodepth_batch_submit="$_b" --iodepth_batch_complete_min=1 --clocksource=cpu
	# fio's rate is per job: the total is RATE.
	[ "$_r" -eq 0 ] || set -- "$@" --rate_iops=$((_r / _j))
	echo "UPCIE-IRQ-BEGIN $_l $_qd $_j $_r"
	fio "$@" 2>/tmp/fio.err
	_rc=$?
	echo "UPCIE-IRQ-END $_l $_qd $_j $_r rc=$_rc"
	[ $_rc -eq 0 ] || sed 's/^/    /' /tmp/fio.err | head -n 5
}

# The grid: QD 1 and 32 with one and two jobs, then the rate-limited run.
grid() {
	for jobs in 1 2; do
		for qd in 1 32; do
			"$@" "$qd" "$jobs" 0
		done
	done
	"$@" 1 1 "$RATE"
}

kfio() { fio_run "$KLABEL" "$1" "$2" "$3" --ioengine=io_uring --direct=1 --filename="$dev" $KOPTS; }

if command -v fio >/dev/null && dev=$(upcie_blockdev "$A" 2); then
	KLABEL=io_uring KOPTS= grid kfio
	if rmmod nvme && modprobe nvme poll_queues=2 && dev=$(upcie_blockdev "$A" 2); then
		KLABEL=io_uring-hipri KOPTS=--hipri grid kfio
	else
		echo "nvme with poll_queues=2: not available, no hipri runs"
	fi
else
	echo "no fio in the guest or no block device for A nsid 2: no kernel runs"
fi

if ! upcie_bind "$A" "$drv"; then
	t_fail "bind $A to $drv"
	t_done
fi

perf_run() {
	_qd=$1 _j=$2 _r=$3
	set -- --device "$A" --ns 2 --rw randread --bs 4096 --qd "$_qd" --qpairs "$_j" \
		--time "$secs" --json --no-progress $POPTS
	[ "$_r" -eq 0 ] || set -- "$@" --rate "$_r"
	echo "UPCIE-IRQ-BEGIN $PLABEL $_qd $_j $_r"
	upcie-perf "$@"
	_rc=$?
	echo "UPCIE-IRQ-END $PLABEL $_qd $_j $_r rc=$_rc"
	if [ $_rc -eq 0 ]; then
		t_pass "$PLABEL qd$_qd jobs$_j rate$_r"
	else
		t_fail "$PLABEL qd$_qd jobs$_j rate$_r" "exit $_rc"
	fi
}

PLABEL=perf-poll POPTS= grid perf_run
PLABEL=perf-irq POPTS=--irq grid perf_run
PLABEL=perf-hybrid POPTS="--hybrid 20" grid perf_run

efio() {
	fio_run "$ELABEL" "$1" "$2" "$3" --ioengine="external:$engine" \
		--filename="$(echo "$A" | tr : .)" --nsid=2 --completion="$EMODE"
}

if command -v fio >/dev/null && [ -e "$engine" ]; then
	for EMODE in poll irq hybrid; do
		ELABEL=fio-upcie-$EMODE grid efio
	done
else
	echo "no fio or no $engine in the guest: no engine runs"
fi
upcie_bind "$A" nvme
t_done
