# SPDX-License-Identifier: BSD-3-Clause
# Guest side of bench/run: upcie-perf against controller A (nsid 2, 4 KiB
# LBAs) bound to the user-space driver of this configuration (uio or vfio).
# Each run's JSON goes to the console between
#   UPCIE-PERF-BEGIN <label>  and  UPCIE-PERF-END <label> rc=<exit code>
# where bench/run picks it up. Runs are short: the guest is emulated (TCG).
#
# First, while the kernel's nvme driver still owns controller A (it takes the
# controllers at boot), a kernel baseline on the same namespace:
#   UPCIE-KERNEL-PERF <label> ios=<n> csecs=<elapsed, 1/100 s>
#                     dev_reads=<n> dev_sectors=<n> rc=<rc>
# 4 KiB reads at QD 1 with busybox dd iflag=direct (O_DIRECT, one read()
# at a time) from the namespace's block device. bench/ executables do not
# go into the guest (run-guest copies examples/, tools/ and tests/ only), so
# there is no random-offset reader here: dd reads sequentially, wrapping
# around the namespace. upcie-perf also runs "read qd1" (sequential) for the
# like-for-like ratio. dev_reads/dev_sectors are the block device's own
# counters (/sys/block/*/stat) over the timed run: one read of 8 sectors per
# dd read shows the reads went to the device one by one (O_DIRECT: no page
# cache, no readahead, no merging).
. "$UPCIE_GUEST_LIB"

secs=2
drv=$(upcie_user_driver)
bdf=$UPCIE_CTRL_A

# kernel_read <dev> <blocks of 4 KiB>: time sequential O_DIRECT reads of
# <blocks> blocks, wrapping at the end of the device; sets ios, cs, rc.
kernel_read() {
	_left=$2
	_off=0
	rc=0
	_t0=$(upcie_csecs)
	while [ "$_left" -gt 0 ]; do
		_n=$((nblk - _off))
		[ "$_n" -le "$_left" ] || _n=$_left
		dd if="$1" of=/dev/null bs=4096 skip="$_off" count="$_n" iflag=direct \
			2>/tmp/kdd.err || { rc=$?; cat /tmp/kdd.err; break; }
		_left=$((_left - _n))
		_off=$(((_off + _n) % nblk))
	done
	cs=$(($(upcie_csecs) - _t0))
	ios=$(($2 - _left))
}

kernel_baseline() {
	label="kernel read qd1"
	if [ "$(upcie_driver "$bdf")" != nvme ]; then
		t_skip "$label" "controller A is on '$(upcie_driver "$bdf")', not nvme"
		return
	fi
	dev=$(upcie_blockdev "$bdf" 2) || {
		t_fail "$label" "no block device for controller A nsid 2"
		return
	}
	b=${dev#/dev/}
	nblk=$(($(cat "/sys/block/$b/size") * 512 / 4096))
	echo "kernel baseline: $dev, $nblk blocks of 4 KiB," \
		"lba $(cat "/sys/block/$b/queue/logical_block_size") B," \
		"scheduler $(cat "/sys/block/$b/queue/scheduler" 2>/dev/null)"
	# Warm-up and calibration: how many reads fill about $secs seconds.
	kernel_read "$dev" 1024
	if [ $rc -ne 0 ]; then
		echo "UPCIE-KERNEL-PERF $label ios=0 csecs=0 rc=$rc"
		t_fail "$label" "dd iflag=direct exit $rc"
		return
	fi
	[ "$cs" -gt 0 ] || cs=1
	n=$((ios * secs * 100 / cs))
	[ "$n" -ge 1024 ] || n=1024
	read -r r0 _ s0 _ </sys/block/$b/stat
	kernel_read "$dev" "$n"
	read -r r1 _ s1 _ </sys/block/$b/stat
	echo "UPCIE-KERNEL-PERF $label ios=$ios csecs=$cs" \
		"dev_reads=$((r1 - r0)) dev_sectors=$((s1 - s0)) rc=$rc"
	if [ $rc -eq 0 ]; then
		t_pass "$label"
	else
		t_fail "$label" "dd iflag=direct exit $rc"
	fi
}

kernel_baseline
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

run "read qd1 dbbuf" --rw read --qd 1
for rw in randread randwrite; do
	for qd in 1 32; do
		run "$rw qd$qd dbbuf" --rw $rw --qd $qd
		run "$rw qd$qd no-dbbuf" --rw $rw --qd $qd --no-dbbuf
	done
done
upcie_bind "$bdf" nvme
t_done
