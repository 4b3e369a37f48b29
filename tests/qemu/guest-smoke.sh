# SPDX-License-Identifier: BSD-3-Clause
# Smoke test of the guest harness: bind controller A to the user-space
# driver of this configuration and check its device node appears.
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
echo "controllers: $UPCIE_CTRLS; A=$UPCIE_CTRL_A B=$UPCIE_CTRL_B"
for c in $UPCIE_CTRLS; do
	echo "$c: driver=$(upcie_driver "$c") iommu_group=$(basename "$(readlink /sys/bus/pci/devices/$c/iommu_group 2>/dev/null)" 2>/dev/null)"
done
ls /dev/nvme* 2>/dev/null | tr '\n' ' '
echo

[ -n "$UPCIE_CTRL_A" ] && t_pass "controller A found" || t_fail "controller A found"
[ -n "$UPCIE_CTRL_B" ] && t_pass "controller B found" || t_fail "controller B found"

t_run "bind A to $drv" upcie_bind "$UPCIE_CTRL_A" "$drv"
case "$UPCIE_CONFIG" in
uio)
	t_run "/dev/uio0 exists" ls -l /dev/uio0
	;;
vfio)
	g=$(basename "$(readlink "/sys/bus/pci/devices/$UPCIE_CTRL_A/iommu_group")")
	t_run "/dev/vfio/$g exists" ls -l "/dev/vfio/$g" /dev/vfio/vfio
	;;
esac
t_run "bind A back to nvme" upcie_bind "$UPCIE_CTRL_A" nvme

# A file system on a kernel-owned namespace (for safety tests: a mounted
# namespace must not be taken away). Uses B's namespace; its last 2 MiB
# (the cross-check regions of guest-tests.sh) stay clear of ext2 metadata.
fs_check() {
	dev=$(ls /dev/nvme*n1 | tail -n1)
	mke2fs -q -F "$dev" 30720 && mkdir -p /mnt/t && mount -t ext2 "$dev" /mnt/t &&
		echo hello >/mnt/t/f && grep -q hello /mnt/t/f && grep " /mnt/t " /proc/mounts &&
		umount /mnt/t
}
t_run "mke2fs + mount ext2 on a namespace" fs_check
t_done
