# SPDX-License-Identifier: BSD-3-Clause
# Guest side of bench/run --matrix: "who waits for whom" on controller A
# (nsid 2, 4 KiB LBAs), 4 KiB randread at QD 1, 4 and 32, one queue, one
# polling thread. In one boot:
#   1. the kernel's nvme driver with fio io_uring (interrupts), then with
#      io_uring --hipri after reloading nvme with poll_queues=1;
#   2. A bound to this configuration's user-space driver, then rounds of
#      upcie-perf variants, interleaved (every variant once per QD per
#      round), each a short run.
# Two rounds of everything (fio too), 2 s runs.
# The variants (label: program and options; UPCIE_MX_VARIANTS picks them,
# the default list is below: base-nodbbuf, batch-lazy and cb-sleepN only
# when asked for):
#   base           the upcie-perf landed before this experiment, with the
#                  library it was built with (static), as it runs by default
#   base-nodbbuf   the same with --no-dbbuf
#   batch          upcie-perf --loop batch: new commands after each poll, one
#                  ring per group (the CQ head doorbell goes out first)
#   batch-lazy     --loop batch --lazy-cq (the SQ tail goes out first, the
#                  CQ head with it)
#   cb             --loop callback: the callback submits, the poll publishes
#                  it before the CQ head
#   cb-lazy        --loop callback --lazy-cq
#   cb-nodbbuf     --loop callback --no-dbbuf
#   cb-noprog      --loop callback --no-progress-thread (no 20 ms wake-ups)
#   cb-q256        --loop callback --queue-size 256
#   cb-cqsq        --loop callback --cq-size QD+1: the CQ as deep as the SQ
#                  (the library's CQ before it took a page of entries)
#   cb-sleepN      --loop callback --idle-sleep N: sleep N us after an empty
#                  poll
#   base-x4, cb-x4 the ceiling: base and cb with four times the commands in
#                  flight (--qd 4*QD), at QD 32 only: what the emulated
#                  controller gives when it is never short of work
# Every run prints one JSON object between
#   UPCIE-MX-BEGIN <variant> <qd>  and  UPCIE-MX-END <variant> <qd> rc=<rc>
# and fio runs one line
#   UPCIE-MX-FIO <engine> <qd> rc=<rc> <fio terse v3 line>
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
A=$UPCIE_CTRL_A
secs=2
rounds=2
QDS="1 4 32"
# UPCIE_MX_VARIANTS: another list, comma-separated (it reaches the guest
# through the kernel command line).
VARIANTS=$(echo "${UPCIE_MX_VARIANTS:-base batch cb cb-cqsq cb-lazy cb-nodbbuf cb-noprog cb-q256 base-x4 cb-x4}" | tr ',' ' ')

fio_run() {
	_e=$1
	_qd=$2
	shift 2
	_b=$((_qd < 8 ? _qd : 8))
	fio --name=mx --thread --time_based --runtime="$secs" --ramp_time=1 --size=64m \
		--norandommap --randrepeat=0 --output-format=terse --terse-version=3 \
		--rw=randread --bs=4k --iodepth="$_qd" --iodepth_batch_submit="$_b" \
		--iodepth_batch_complete_min=1 --direct=1 "$@" >/tmp/fio.out 2>/tmp/fio.err
	_rc=$?
	echo "UPCIE-MX-FIO $_e $_qd rc=$_rc $(grep '^3;' /tmp/fio.out | head -n 1)"
	[ $_rc -eq 0 ] || sed 's/^/    /' /tmp/fio.err | head -n 5
}

if command -v fio >/dev/null && dev=$(upcie_blockdev "$A" 2); then
	for r in $(seq "$rounds"); do
		for qd in $QDS; do
			fio_run io_uring "$qd" --ioengine=io_uring --filename="$dev"
		done
	done
	if rmmod nvme && modprobe nvme poll_queues=1 && dev=$(upcie_blockdev "$A" 2); then
		echo "nvme reloaded: $(cat /sys/module/nvme/parameters/poll_queues) poll queues"
		for r in $(seq "$rounds"); do
			for qd in $QDS; do
				fio_run io_uring-hipri "$qd" --ioengine=io_uring --hipri \
					--filename="$dev"
			done
		done
	else
		echo "nvme with poll_queues=1: not available, no hipri runs"
	fi
else
	echo "no fio in the guest or no block device for A nsid 2: no kernel runs"
fi

if ! upcie_bind "$A" "$drv"; then
	t_fail "bind $A to $drv"
	t_done
fi

# variant <name>: the program and options of a variant.
variant() {
	case $1 in
	base | base-x4) echo "upcie-perf-base" ;;
	base-nodbbuf) echo "upcie-perf-base --no-dbbuf" ;;
	batch) echo "upcie-perf --loop batch" ;;
	batch-lazy) echo "upcie-perf --loop batch --lazy-cq" ;;
	cb | cb-x4) echo "upcie-perf --loop callback" ;;
	cb-lazy) echo "upcie-perf --loop callback --lazy-cq" ;;
	cb-nodbbuf) echo "upcie-perf --loop callback --no-dbbuf" ;;
	cb-noprog) echo "upcie-perf --loop callback --no-progress-thread" ;;
	cb-q256) echo "upcie-perf --loop callback --queue-size 256" ;;
	cb-cqsq) echo "upcie-perf --loop callback --cq-size $((qd + 1))" ;;
	cb-sleep*) echo "upcie-perf --loop callback --idle-sleep ${1#cb-sleep}" ;;
	esac
}

r=0
while [ $r -lt "$rounds" ]; do
	r=$((r + 1))
	for qd in $QDS; do
		for v in $VARIANTS; do
			# shellcheck disable=SC2046
			set -- $(variant "$v")
			prog=$1
			shift
			case "$v" in
			*-x4)
				[ "$qd" -eq 32 ] || continue
				set -- "$@" --qd $((qd * 4))
				;;
			esac
			name=$prog
			prog=$(command -v "$prog") || {
				t_skip "$v qd$qd" "no $name in the guest"
				continue
			}
			# The others keep main's 20 ms wake-ups: the baseline has them
			# always; today's upcie-perf only with a status interval (one
			# that never fires in a 2 s run).
			case "$v" in
			*-noprog) ;;
			base*) set -- "$@" --no-progress ;;
			*) set -- "$@" --no-progress --status-interval 3600 ;;
			esac
			echo "UPCIE-MX-BEGIN $v $qd"
			"$prog" --device "$A" --ns 2 --rw randread --bs 4096 --qd "$qd" \
				--time "$secs" --json "$@"
			rc=$?
			echo "UPCIE-MX-END $v $qd rc=$rc"
			if [ $rc -eq 0 ]; then
				t_pass "$v qd$qd round $r"
			else
				t_fail "$v qd$qd round $r" "exit $rc"
			fi
		done
	done
done
upcie_bind "$A" nvme
t_done
