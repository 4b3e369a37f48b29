# SPDX-License-Identifier: BSD-3-Clause
#
# Controller resets under verified I/O load, on controller A (nsid 1)
# through this boot's user-space driver (uio_pci_generic or vfio-pci).
# Called by guest-tests.sh; runs alone too:
#   qemu/run-guest BUILD uio|vfio tests/qemu/guest-reset.sh
# QEMU 7.2's controller used to crash under it (SIGSEGV in
# nvme_rw_complete_cb, on vfio in 4 runs of 5): commands it fetches from a
# doorbell it deferred, inside its own reset's drain, outlive the SQ that
# the reset frees; a legal CC.EN = 0 with I/O in flight triggers it. A
# requested reset now deletes the live I/O SQs first (nvme.h,
# upcie_nvme_ctrl_reset), so the disable finds no I/O in flight.
# UPCIE_RESET_LOAD=0 skips it.
#
# upcie-reset-load (reset_load.c; its header says what it checks and which
# poll errors it accepts) runs 2 I/O threads, one qpair each at QD 16,
# doing verified reads and writes on disjoint ranges from a quarter of the
# namespace (clear of the cross-check regions at its end), while a third
# thread calls upcie_nvme_ctrl_reset() every UPCIE_RESET_PERIOD_MS (200) ms
# for UPCIE_RESET_DURATION (20) s; run-guest forwards both. Each of its
# checks becomes a TAP line here. Then:
#  - it finished within its bound (killed otherwise);
#  - the kernel logged nothing alarming meanwhile (an IOMMU fault, an oops,
#    a warning, a segfault);
#  - the controller still answers (upcie-identify A): QEMU and its
#    controller survived. Should QEMU itself die, the guest never reports
#    and the host fails the boot (run-guest: no result line).
. "$UPCIE_GUEST_LIB"

if [ "${UPCIE_RESET_LOAD:-1}" = 0 ]; then
	t_skip "reset-load/$UPCIE_CONFIG (resets under verified load)" "UPCIE_RESET_LOAD=0"
	exit 0
fi
drv=$(upcie_user_driver)
A=$UPCIE_CTRL_A
dur=${UPCIE_RESET_DURATION:-20}
per=${UPCIE_RESET_PERIOD_MS:-200}
# The load itself, plus its own bounds: prefill, drain, read-back.
limit=$((dur + 90))
name="reset-load/$UPCIE_CONFIG on A"

now() { cut -d' ' -f1 /proc/uptime; }

if ! t_run "$name: bind A to $drv" upcie_bind "$A" "$drv"; then
	exit 0
fi
klog_before=$(dmesg | wc -l)
echo "---- $name: upcie-reset-load --duration $dur --period $per $A (at most ${limit}s)"
t0=$(now)
timeout -s KILL "$limit" upcie-reset-load --duration "$dur" --period "$per" "$A" \
	>/tmp/reset-load.out 2>/tmp/reset-load.err
rc=$?
echo "    exit $rc after $(echo "$(now) $t0" | awk '{ printf "%.1f", $1 - $2 }')s"
sed 's/^/    /' /tmp/reset-load.err | head -n 60
grep -v '^PASS \|^FAIL ' /tmp/reset-load.out | sed 's/^/    /'
grep '^PASS \|^FAIL ' /tmp/reset-load.out >/tmp/reset-load.res
while IFS= read -r line; do
	case "$line" in
	PASS\ *) t_pass "$name: ${line#PASS }" ;;
	FAIL\ *)
		line=${line#FAIL }
		t_fail "$name: ${line%% # *}" "$(echo "${line#* # }" | cut -c1-300)"
		;;
	esac
done </tmp/reset-load.res
if [ "$rc" -eq 137 ]; then
	t_fail "$name: upcie-reset-load finished" "killed after ${limit}s"
elif [ ! -s /tmp/reset-load.res ]; then
	t_fail "$name: upcie-reset-load reported its checks" "exit $rc, no PASS/FAIL line"
elif [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' /tmp/reset-load.res; then
	t_fail "$name: upcie-reset-load exit status" "exit $rc with no failed check"
fi

# What the kernel said meanwhile; the alarming lines fail.
dmesg | tail -n +"$((klog_before + 1))" >/tmp/reset-load.klog
if [ -s /tmp/reset-load.klog ]; then
	echo "    kernel log during the run:"
	head -n 40 /tmp/reset-load.klog | sed 's/^/    | /'
fi
bad=$(grep -E 'DMAR|IOMMU.*[Ff]ault|[Ff]ault.*IOMMU|BUG:|WARNING:|Oops|Call Trace|segfault|general protection' \
	/tmp/reset-load.klog | head -n 1)
if [ -z "$bad" ]; then
	t_pass "$name: the kernel logged no IOMMU fault, oops, warning or segfault"
else
	t_fail "$name: the kernel logged no IOMMU fault, oops, warning or segfault" \
		"$(echo "$bad" | cut -c1-200)"
fi
# Identify's key lines only: the full output is long.
answers() {
	timeout 60 upcie-identify "$A" >/tmp/reset-load.id 2>&1
	_rc=$?
	grep -E "backend|sn:|resets|error" /tmp/reset-load.id || tail -n 5 /tmp/reset-load.id
	return $_rc
}
t_run "$name: the controller still answers afterwards (upcie-identify A)" answers
exit 0
