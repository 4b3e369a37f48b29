# SPDX-License-Identifier: BSD-3-Clause
#
# Registered memory (upcie_dma_register) on controller A through this
# boot's user-space driver. Called by guest-tests.sh; runs alone too:
#   qemu/run-guest BUILD uio|vfio tests/qemu/guest-reg.sh
#
# upcie-reg-io (reg_io.c: its header lists the checks) registers two
# buffers of one kind, does verified I/O from and into them (a page, a PRP
# list, a split transfer above MDTS, a scatter list over both), and checks
# that unregister is refused while a read is in flight and accepted after.
# Each of its checks becomes a TAP line here.
#   both configurations: hugetlb memory (2 MiB hugepages) works;
#   vfio: ordinary mmap memory and malloc memory work too (IOMMU map);
#   uio: ordinary mmap memory and malloc memory are refused (exit 3), and
#        the message says why: bus addresses are physical, only hugepages
#        are contiguous; it names the way out (hugepages or vfio-pci).
# Then the dma_reg CUnit suite runs on A (guest-tests.sh runs every suite
# on each controller too; alone, this script runs it here).
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
A=$UPCIE_CTRL_A
name="reg/$UPCIE_CONFIG on A"
before=$(upcie_driver "$A")

if ! t_run "$name: bind A to $drv" upcie_bind "$A" "$drv"; then
	exit 0
fi
# The heap (8 MiB) and two 4 MiB buffers, with room to spare.
hp=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
[ "$hp" -ge 32 ] || upcie_hugepages 32

# reg_io <kind>: its PASS/FAIL lines as TAP; its exit status returned.
reg_io() {
	echo "---- $name: upcie-reg-io --mem $1 $A"
	timeout 120 upcie-reg-io --mem "$1" "$A" >/tmp/reg-io.out 2>/tmp/reg-io.err
	_rc=$?
	sed 's/^/    /' /tmp/reg-io.err
	grep '^PASS \|^FAIL ' /tmp/reg-io.out >/tmp/reg-io.res
	while IFS= read -r line; do
		case "$line" in
		PASS\ *) t_pass "$name, $1 memory: ${line#PASS }" ;;
		FAIL\ *)
			l=${line#FAIL }
			t_fail "$name, $1 memory: ${l%% # *}" "${l#* # }"
			;;
		esac
	done </tmp/reg-io.res
	return $_rc
}

reg_io hugetlb
rc=$?
[ $rc -eq 0 ] || t_fail "$name: upcie-reg-io --mem hugetlb" "exit $rc"
for kind in anon malloc; do
	reg_io "$kind"
	rc=$?
	if [ "$UPCIE_CONFIG" = vfio ] && ! upcie_noiommu; then
		[ $rc -eq 0 ] || t_fail "$name: upcie-reg-io --mem $kind" "exit $rc"
	elif [ $rc -eq 3 ] && grep -q "only hugepage-backed memory" /tmp/reg-io.err &&
		grep -q "vfio-pci" /tmp/reg-io.err; then
		t_pass "$name: $kind memory refused under uio, saying why (not hugepages) and what to do"
	else
		t_fail "$name: $kind memory refused under uio" "exit $rc, expected 3 with the reason"
	fi
done

if [ "${UPCIE_REG_SUITE:-1}" = 1 ] && [ -x /upcie/tests/unit/test_dma_reg ]; then
	echo "---- $name: the dma_reg suite"
	UPCIE_TEST_DEVICE=$A timeout 150 /upcie/tests/unit/test_dma_reg >/tmp/reg-suite.out 2>&1
	rc=$?
	awk '/Test: / || /^ +[0-9]+\. / || /SKIP/ || $1 == "tests"' /tmp/reg-suite.out | sed 's/^ */    /'
	if [ $rc -eq 0 ] && ! grep -q SKIP /tmp/reg-suite.out; then
		t_pass "$name: dma_reg suite, nothing skipped"
	else
		t_fail "$name: dma_reg suite" "exit $rc$(grep -q SKIP /tmp/reg-suite.out && echo ', skips')"
	fi
fi
[ "$hp" -ge 32 ] || upcie_hugepages "$hp"
# Back to the driver it had (guest-tests.sh wants A on $drv after this).
[ "$before" = "$drv" ] || t_run "$name: bind A back to ${before:-nvme}" upcie_bind "$A" "${before:-nvme}"
t_done
