# SPDX-License-Identifier: BSD-3-Clause
# Guest side of bench/run: upcie-perf against controller A (nsid 2, 4 KiB
# LBAs) bound to the user-space driver of this configuration (uio or vfio).
# Each run's JSON goes to the console between
#   UPCIE-PERF-BEGIN <label>  and  UPCIE-PERF-END <label> rc=<exit code>
# where bench/run picks it up. Runs are short: the guest is emulated (TCG).
. "$UPCIE_GUEST_LIB"

secs=2
drv=$(upcie_user_driver)
bdf=$UPCIE_CTRL_A
if ! upcie_bind "$bdf" "$drv"; then
	t_fail "bind $bdf to $drv"
	t_done
fi

run() {
	label=$1
	shift
	echo "UPCIE-PERF-BEGIN $label"
	upcie-perf --device "$bdf" --ns 2 --bs 4096 --time "$secs" --no-progress --json "$@"
	rc=$?
	echo "UPCIE-PERF-END $label rc=$rc"
	if [ $rc -eq 0 ]; then
		t_pass "$label"
	else
		t_fail "$label" "exit $rc"
	fi
}

for rw in randread randwrite; do
	for qd in 1 32; do
		run "$rw qd$qd dbbuf" --rw $rw --qd $qd
		run "$rw qd$qd no-dbbuf" --rw $rw --qd $qd --no-dbbuf
	done
done
upcie_bind "$bdf" nvme
t_done
