# SPDX-License-Identifier: BSD-3-Clause
#
# Hot-unplug with the host's help (run by guest-tests.sh; alone:
#   run-guest BUILD_DIR uio|vfio tests/qemu/guest-hotplug.sh).
# The hot-pluggable controller (UPCIE_TOPO_HOTPLUG: E, behind a
# pcie-root-port) starts on the kernel's nvme driver. upcie_unplug asks the
# host for QEMU's device_del: the guest kernel lets it go, the PCI function,
# the nvme controller and its block device disappear, and the guest still
# does I/O on A. upcie_replug asks for device_add: it comes back at the
# same BDF and nvme takes it again. Leaves it on nvme.
. "$UPCIE_GUEST_LIB"

A=$UPCIE_CTRL_A
HP=${UPCIE_TOPO_HOTPLUG%% *}
HPB=$(upcie_bdf "$HP")

# The block device of the hot-pluggable controller's namespace 1 is there.
hp_blockdev() {
	upcie_blockdev "$HPB" 1
}

# Gone: no PCI function, no nvme controller with its serial, no block device.
hp_gone() {
	upcie_unplug "$HP" 60 || return 1
	eval "_ser=\$UPCIE_TOPO_${HP}_SERIAL"
	for _c in /sys/class/nvme/nvme*; do
		[ -e "$_c/serial" ] || continue
		read -r _s <"$_c/serial"
		[ "$_s" != "$_ser" ] || { echo "nvme controller $_c ($_ser) still there"; return 1; }
	done
	[ ! -e "$hp_dev" ] || { echo "$hp_dev still there"; return 1; }
}

# The guest goes on: the kernel reads controller A, the PCI bus lists the rest.
guest_alive() {
	_dev=$(upcie_blockdev "$A" 1) || { echo "no block device on A"; return 1; }
	dd if="$_dev" of=/dev/null bs=4096 count=16 iflag=direct 2>&1 || return 1
	echo "controllers now: $(for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/class")" = 0x010802 ] && echo "${d##*/}"; done | tr '\n' ' ')"
}

hp_back() {
	upcie_replug "$HP" 60 || return 1
	upcie_blockdev "$HPB" 1
}

# A script before this one may have left it on another driver.
if [ -n "$HPB" ] && [ "$(upcie_driver "$HPB")" != nvme ]; then
	echo "---- $HP ($HPB) is on '$(upcie_driver "$HPB")': binding it to nvme first"
	upcie_bind "$HPB" nvme || true
fi

if [ -z "$HP" ] || [ -z "$HPB" ]; then
	t_fail "hot-unplug of a controller on nvme" "no hot-pluggable controller in this guest"
elif [ "$(upcie_driver "$HPB")" != nvme ] || ! hp_dev=$(hp_blockdev); then
	t_fail "hot-unplug: $HP ($HPB) starts on nvme with a block device" "driver '$(upcie_driver "$HPB")'"
else
	echo "---- hot-unplug: $HP at $HPB on nvme, $hp_dev"
	t_run "hot-unplug $HP on nvme (device_del from the host): device and $hp_dev gone" hp_gone &&
		t_run "guest alive after the unplug: kernel reads A" guest_alive
	t_run "replug $HP (device_add from the host): back at $HPB, nvme binds it" hp_back
fi
t_done
