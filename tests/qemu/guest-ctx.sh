# SPDX-License-Identifier: BSD-3-Clause
#
# One DMA context for two controllers (upcie_dma_ctx_create) through this
# boot's user-space driver: A and B are opened into one context and share
# one heap. Called by guest-tests.sh and guest-iommufd.sh; runs alone too:
#   qemu/run-guest BUILD uio|vfio|iommufd tests/qemu/guest-ctx.sh
#
# The dma_ctx CUnit suite on A and B (UPCIE_TEST_DEVICES): a buffer written
# through A is read back through B and the other way round, on heap memory
# and on registered memory; a heap of another context is refused; the
# heap is not destroyed under an open controller; closing A while a read
# on B is in flight leaves B's buffer mapped (the read completes with its
# data); A opened again later reaches the heap made before. Through
#   uio      physical addresses (nothing shared but the rules)
#   vfio     one type1 container holding both IOMMU groups
#   iommufd  one IOAS both cdevs are attached to (when /dev/iommu exists),
#            and type1 in the same boot
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
A=$UPCIE_CTRL_A
B=$UPCIE_CTRL_B
name="ctx/$UPCIE_CONFIG on A+B"
before_a=$(upcie_driver "$A")
before_b=$(upcie_driver "$B")
suite=/upcie/tests/unit/test_dma_ctx

if [ ! -x "$suite" ]; then
	t_skip "$name" "no $suite in this build (tests disabled?)"
	exit 0
fi
t_run "$name: bind A to $drv" upcie_bind "$A" "$drv" || exit 0
t_run "$name: bind B to $drv" upcie_bind "$B" "$drv" || exit 0
# Two 8 MiB heaps and a grown segment, a hugepage of registered memory.
hp=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
[ "$hp" -ge 32 ] || upcie_hugepages 32

# run_suite LABEL [VAR=VALUE...]: the suite on A and B, one TAP line.
run_suite() {
	_label=$1
	shift
	echo "---- $name: the dma_ctx suite ($_label)"
	env UPCIE_TEST_DEVICES="$A $B" "$@" timeout 150 "$suite" >/tmp/ctx-suite.out 2>&1
	_rc=$?
	awk '/Test: / || /^ +[0-9]+\. / || /SKIP/ || $1 == "tests" || /open:|ctrl open:|heap:|space for/' \
		/tmp/ctx-suite.out | sed 's/^ */    /'
	# The mixed-backend test needs the sim beside the device: it skips here.
	skips=$(grep SKIP /tmp/ctx-suite.out | grep -vc "the sim stands for the other backend")
	if [ $_rc -eq 0 ] && [ "$skips" -eq 0 ]; then
		t_pass "$name: dma_ctx suite through $_label, A and B in one context"
	else
		t_fail "$name: dma_ctx suite through $_label" "exit $_rc, $skips unexpected skips"
	fi
}

if [ "$drv" = vfio-pci ] && [ -e /dev/iommu ]; then
	run_suite iommufd UPCIE_VFIO_IOMMU=iommufd
	run_suite type1 UPCIE_VFIO_IOMMU=type1
elif [ "$drv" = vfio-pci ]; then
	run_suite type1
	t_skip "$name: the dma_ctx suite through iommufd" "no /dev/iommu: this kernel has no IOMMUFD"
else
	run_suite uio
fi

# C and D share an IOMMU group (vfio; behind one PCI bridge): in one
# context type1 opens the group once for both.
C=${UPCIE_CTRL_C:-}
D=${UPCIE_CTRL_D:-}
gc=$(basename "$(readlink "/sys/bus/pci/devices/$C/iommu_group" 2>/dev/null)" 2>/dev/null)
gd=$(basename "$(readlink "/sys/bus/pci/devices/$D/iommu_group" 2>/dev/null)" 2>/dev/null)
if [ "$drv" = vfio-pci ] && [ -n "$C" ] && [ -n "$D" ] && [ -n "$gc" ] && [ "$gc" = "$gd" ]; then
	before_c=$(upcie_driver "$C")
	before_d=$(upcie_driver "$D")
	if t_run "$name: bind C to $drv" upcie_bind "$C" "$drv" &&
		t_run "$name: bind D to $drv" upcie_bind "$D" "$drv"; then
		A=$C B=$D name="ctx/$UPCIE_CONFIG on C+D (IOMMU group $gc)"
		run_suite "type1, one group" UPCIE_VFIO_IOMMU=type1 UPCIE_TEST_SAME_GROUP=1
		A=$UPCIE_CTRL_A B=$UPCIE_CTRL_B name="ctx/$UPCIE_CONFIG on A+B"
	fi
	t_run "$name: bind C back to ${before_c:-nvme}" upcie_bind "$C" "${before_c:-nvme}"
	t_run "$name: bind D back to ${before_d:-nvme}" upcie_bind "$D" "${before_d:-nvme}"
elif [ "$drv" = vfio-pci ]; then
	t_skip "$name: C and D (one IOMMU group) in one context" "C='$C' D='$D' groups '$gc' '$gd'"
fi

[ "$hp" -ge 32 ] || upcie_hugepages "$hp"
[ "$before_a" = "$drv" ] || t_run "$name: bind A back to ${before_a:-nvme}" upcie_bind "$A" "${before_a:-nvme}"
[ "$before_b" = "$drv" ] || t_run "$name: bind B back to ${before_b:-nvme}" upcie_bind "$B" "${before_b:-nvme}"
t_done
