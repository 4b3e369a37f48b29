# SPDX-License-Identifier: BSD-3-Clause
#
# vfio through iommufd and the device cdev (a kernel with IOMMUFD and
# VFIO_DEVICE_CDEV: the 'iommufd' configuration boots the one
# scripts/guest-kernel builds), beside type1 in the same boot:
#  - A on vfio-pci has a cdev (/dev/vfio/devices/vfioN) and /dev/iommu exists;
#  - the library takes iommufd by itself (upcie-identify says so), and
#    type1 when UPCIE_VFIO_IOMMU=type1 asks for it;
#  - verified random reads and writes through each, 0 mismatches;
#  - QD 1 and QD 32 figures through each (4 KiB randread, 3 s), printed as
#    "FIGURES iommu=... qd=... iops=..." for BENCHMARKS.md;
#  - forcing iommufd on a device the kernel gives no cdev (B, bound to
#    nvme) fails with an error that names what is missing;
#  - guest-ctx.sh: A and B in one DMA context (one IOAS, then type1).
# (guest-tests.sh's section 8 checks a group that is not viable, C with D
# on nvme, through iommufd too: the bind's EPERM names D.)
# Called by guest-tests.sh when /dev/iommu exists; runs alone too:
#   qemu/run-guest BUILD iommufd tests/qemu/guest-iommufd.sh
. "$UPCIE_GUEST_LIB"

A=$UPCIE_CTRL_A
name="iommufd on A"
if [ ! -e /dev/iommu ]; then
	t_skip "$name" "no /dev/iommu: this kernel has no IOMMUFD"
	exit 0
fi
t_run "$name: bind A to vfio-pci" upcie_bind "$A" vfio-pci || exit 0
cdev=$(ls "/sys/bus/pci/devices/$A/vfio-dev" 2>/dev/null | head -n 1)
if [ -n "$cdev" ] && [ -c "/dev/vfio/devices/$cdev" ]; then
	t_pass "$name: A has the device cdev /dev/vfio/devices/$cdev"
else
	t_fail "$name: A has a device cdev" "vfio-dev: '$cdev'"
fi

for mode in auto type1; do
	want=$mode
	[ "$mode" = auto ] && want=iommufd
	out=$(UPCIE_VFIO_IOMMU=$mode upcie-identify "$A" 2>&1)
	if echo "$out" | grep -q "vfio_iommu: $want "; then
		t_pass "$name: UPCIE_VFIO_IOMMU=$mode takes $want"
	else
		t_fail "$name: UPCIE_VFIO_IOMMU=$mode takes $want" \
			"$(echo "$out" | grep -E 'vfio_iommu|rror' | head -n 2 | tr '\n' ' ')"
	fi
	t_run "$name: verified randrw through $want" env UPCIE_VFIO_IOMMU=$want \
		upcie-perf --device "$A" --ns 1 --rw randrw --bs 4096 --qd 16 --time 2 --verify \
		--no-progress
	for qd in 1 32; do
		iops=$(UPCIE_VFIO_IOMMU=$want upcie-perf --device "$A" --ns 2 --rw randread \
			--bs 4096 --qd "$qd" --time 3 --no-progress 2>/dev/null |
			sed -n 's/^ *iops: \([0-9]*\).*/\1/p' | head -n 1)
		echo "FIGURES iommu=$want qd=$qd iops=${iops:-none}"
		if [ -n "$iops" ] && [ "$iops" -gt 0 ]; then
			t_pass "$name: randread QD $qd through $want: $iops IOPS"
		else
			t_fail "$name: randread QD $qd through $want" "no IOPS figure"
		fi
	done
done

# B on nvme: no cdev. Forcing iommufd must say what is missing. (Under
# guest-tests.sh B is on vfio-pci by now: it goes back there after.)
B=$UPCIE_CTRL_B
b_drv=$(upcie_driver "$B")
[ "$b_drv" = nvme ] || upcie_bind "$B" nvme
err=$(UPCIE_VFIO_IOMMU=iommufd upcie-identify "$B" 2>&1)
if echo "$err" | grep -qi "bound to nvme\|no VFIO device cdev"; then
	t_pass "$name: a device without a cdev is refused, saying why"
else
	t_fail "$name: a device without a cdev is refused, saying why" \
		"$(echo "$err" | head -n 2 | tr '\n' ' ')"
fi
[ -z "$b_drv" ] || [ "$b_drv" = nvme ] || t_run "$name: B back on $b_drv" upcie_bind "$B" "$b_drv"
t_run "$name: bind A back to nvme" upcie_bind "$A" nvme

# A and B in one DMA context, one IOAS both cdevs attach to (and type1 in
# the same boot): guest-ctx.sh. guest-tests.sh runs it itself (section 5h).
if [ "${UPCIE_CTX_SUITE:-1}" = 1 ]; then
	timeout 400 sh "${UPCIE_GUEST_LIB%/*}/guest-ctx.sh" ||
		t_fail "guest-ctx.sh" "exit $? (timed out after 400 s?)"
fi
