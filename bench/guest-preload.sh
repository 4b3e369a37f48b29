# SPDX-License-Identifier: BSD-3-Clause
# Guest side of the preload measurement (BENCHMARKS.md, "Unmodified fio
# through libupcie-preload.so"): Debian's fio, 4 KiB random reads on
# controller A nsid 2 (4 KiB LBAs), one job, QD 1 and QD 32, in one boot:
#   io_uring       the kernel's nvme driver, O_DIRECT on the block device
#   engine         libupcie's fio engine, polled (--hipri)
#   preload-reg    --ioengine=libaio through libupcie-preload.so, buffers
#                  registered (vfio) 
#   preload-bounce the same with UPCIE_PRELOAD_REGISTER=0 (copied through
#                  the DMA heap; uio always does this)
# ROUNDS rounds (default 2), each running every configuration in turn.
# One line per run: UPCIE-PRELOAD-BENCH <label> <qd> rc=<rc> iops=<read IOPS>
#   qemu/run-guest BUILD vfio bench/guest-preload.sh
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
A=$UPCIE_CTRL_A
PL=/upcie/preload/libupcie-preload.so
engine=/upcie/fio/libupcie-fio.so
secs=${UPCIE_FIO_SECS:-5}

qd_opts() {
	case $1 in
	1) echo "--iodepth=1" ;;
	32) echo "--iodepth=32 --iodepth_batch_submit=8 --iodepth_batch_complete_min=1" ;;
	esac
}

# run LABEL QD ENV... -- FIO_ARGS...
run() {
	_l=$1
	_q=$2
	shift 2
	_env=
	while [ "$1" != -- ]; do
		_env="$_env $1"
		shift
	done
	shift
	# shellcheck disable=SC2046,SC2086
	env $_env fio --name=bench --thread --time_based --runtime="$secs" --ramp_time=1 \
		--size=64m --norandommap --randrepeat=0 --rw=randread --bs=4k \
		--output-format=terse --terse-version=3 $(qd_opts "$_q") "$@" >/tmp/fio.out 2>/tmp/fio.err
	_rc=$?
	_iops=$(grep '^3;' /tmp/fio.out | head -n 1 | cut -d';' -f8)
	echo "UPCIE-PRELOAD-BENCH $_l qd$_q rc=$_rc iops=${_iops:-?}"
	[ $_rc -eq 0 ] && [ -n "$_iops" ] || sed 's/^/    /' /tmp/fio.err | head -n 5
	[ $_rc -eq 0 ] && [ -n "$_iops" ] && t_pass "$_l qd$_q" || t_fail "$_l qd$_q" "exit $_rc"
}

for round in $(seq "${ROUNDS:-2}"); do
	echo "== round $round"
	upcie_bind "$A" nvme
	if dev=$(upcie_blockdev "$A" 2); then
		for q in 1 32; do
			run io_uring $q -- --ioengine=io_uring --direct=1 --filename="$dev"
		done
	fi
	upcie_bind "$A" "$drv" || {
		t_fail "bind A to $drv" "failed"
		break
	}
	for q in 1 32; do
		if [ -f "$engine" ]; then
			run engine $q -- --ioengine="external:$engine" --filename="$(echo "$A" | tr : .)" \
				--nsid=2 --hipri
		fi
		run preload-reg $q UPCIE_PRELOAD="/dev/upcie0=$A/2" LD_PRELOAD=$PL -- \
			--ioengine=libaio --direct=1 --filename=/dev/upcie0
		run preload-bounce $q UPCIE_PRELOAD="/dev/upcie0=$A/2" LD_PRELOAD=$PL \
			UPCIE_PRELOAD_REGISTER=0 -- --ioengine=libaio --direct=1 --filename=/dev/upcie0
	done
done
