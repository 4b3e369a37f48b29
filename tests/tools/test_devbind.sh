#!/bin/sh
# devbind against fake sysfs and proc trees; no root needed.
#
# usage: test_devbind.sh DEVBIND INSTALLED_PATH
#
# The fake tree (see mktree) has five PCI functions:
#   0000:01:00.0  NVMe 8086:0953  nvme  group 7   nvme0n1p1 mounted on /boot
#   0000:02:00.0  NVMe 144d:a808  nvme  group 8   nvme1n1 held by dm-0 (vg-data)
#   0000:02:00.1  Eth  8086:1533  igb   group 8   (not NVMe; shares the group)
#   0000:03:00.0  NVMe 1b36:0010  nvme  group 9   nvme2n1 in /proc/swaps
#   0000:04:00.0  NVMe 1b36:0010  nvme  group 10  not in use
#
# Later sections add processes under the fake /proc: a mount in another
# mount namespace, and fd links or maps that drive a device through uio or
# vfio. --dev-root points the exclusive-open check at a fake /dev.
#
# A fake tree has no kernel: writing drivers_probe binds nothing. devbind
# waits for the driver's side of the bind, bus/pci/drivers/DRIVER/BDF (the
# link the kernel adds when a device binds), so a test that expects a bind
# to succeed seeds that link first (seed_bind); one that leaves it out
# checks the bounded wait and its error.

DEVBIND=${1:?usage: test_devbind.sh DEVBIND [INSTALLED_PATH]}
# Where meson installs devbind: what persist's unit must run.
INSTALLED_DEVBIND=${2:-}
T=$(mktemp -d "${TMPDIR:-/tmp}/devbind-test.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
. "$(dirname "$0")/lib.sh"
DEVBIND=$(wrap_exe "$DEVBIND")

S=$T/tree/sys
P=$T/tree/proc
M=$T/tree/modules

mkdriver() {
	mkdir -p "$S/bus/pci/drivers/$1"
	: >"$S/bus/pci/drivers/$1/bind"
	: >"$S/bus/pci/drivers/$1/unbind"
}

# mkdev BDF VENDOR DEVICE CLASS DRIVER GROUP
mkdev() {
	d=$S/devices/pci0000:00/$1
	mkdir -p "$d" "$S/kernel/iommu_groups/$6/devices"
	echo "$2" >"$d/vendor"
	echo "$3" >"$d/device"
	echo "$4" >"$d/class"
	echo 0 >"$d/numa_node"
	echo "(null)" >"$d/driver_override"
	# 64 bytes of config space; COMMAND (offset 4) = 0x0002: memory space on,
	# bus master off.
	printf '\000\000\000\000\002\000\000\000' >"$d/config"
	dd if=/dev/zero bs=56 count=1 2>/dev/null >>"$d/config"
	ln -s "../../../devices/pci0000:00/$1" "$S/bus/pci/devices/$1"
	ln -s "../../../../devices/pci0000:00/$1" "$S/kernel/iommu_groups/$6/devices/$1"
	ln -s "../../../kernel/iommu_groups/$6" "$d/iommu_group"
	if [ -n "$5" ]; then
		ln -s "../../../bus/pci/drivers/$5" "$d/driver"
		ln -s "../../../../devices/pci0000:00/$1" "$S/bus/pci/drivers/$5/$1"
	fi
}

# mkns BDF CTRL NS DEVNO [PART PARTDEVNO]
mkns() {
	ns=$S/devices/pci0000:00/$1/nvme/$2/$3
	mkdir -p "$ns/holders"
	echo "$4" >"$ns/dev"
	ln -s "../devices/pci0000:00/$1/nvme/$2/$3" "$S/block/$3"
	if [ -n "$5" ]; then
		mkdir -p "$ns/$5/holders"
		echo 1 >"$ns/$5/partition"
		echo "$6" >"$ns/$5/dev"
	fi
}

mktree() {
	rm -rf "$T/tree"
	mkdir -p "$S/bus/pci/devices" "$S/block" "$S/module" "$P" "$M"
	: >"$S/bus/pci/drivers_probe"
	mkdriver nvme
	mkdriver igb
	mkdriver vfio-pci
	mkdir -p "$S/module/vfio_pci"
	mkdev 0000:01:00.0 0x8086 0x0953 0x010802 nvme 7
	mkdev 0000:02:00.0 0x144d 0xa808 0x010802 nvme 8
	mkdev 0000:02:00.1 0x8086 0x1533 0x020000 igb 8
	mkdev 0000:03:00.0 0x1b36 0x0010 0x010802 nvme 9
	mkdev 0000:04:00.0 0x1b36 0x0010 0x010802 nvme 10
	mkns 0000:01:00.0 nvme0 nvme0n1 259:0 nvme0n1p1 259:1
	mkns 0000:02:00.0 nvme1 nvme1n1 259:2
	mkns 0000:03:00.0 nvme2 nvme2n1 259:3
	mkns 0000:04:00.0 nvme3 nvme3n1 259:4
	mkdir -p "$S/devices/virtual/block/dm-0/dm"
	echo vg-data >"$S/devices/virtual/block/dm-0/dm/name"
	ln -s ../devices/virtual/block/dm-0 "$S/block/dm-0"
	ln -s ../../../../../../virtual/block/dm-0 \
		"$S/devices/pci0000:00/0000:02:00.0/nvme/nvme1/nvme1n1/holders/dm-0"
	cat >"$P/mounts" <<-EOF
		/dev/vda / ext4 rw,relatime 0 0
		/dev/nvme0n1p1 /boot ext4 rw,relatime 0 0
		tmpfs /run tmpfs rw 0 0
	EOF
	cat >"$P/swaps" <<-EOF
		Filename				Type		Size		Used		Priority
		/dev/nvme2n1                            partition	1048572		0		-2
	EOF
	echo "kernel/drivers/uio/uio_pci_generic.ko.xz: kernel/drivers/uio/uio.ko.xz" >"$M/modules.dep"
	echo "kernel/drivers/vfio/pci/vfio-pci.ko.xz: kernel/drivers/vfio/vfio.ko.xz" >>"$M/modules.dep"
	echo "kernel/drivers/nvme/host/nvme.ko" >"$M/modules.builtin"
}

# A bind the fake kernel "performs": the link under the driver.
seed_bind() {
	ln -s "../../../../devices/pci0000:00/$2" "$S/bus/pci/drivers/$1/$2"
}

# Move a device to DRIVER in the fake tree, as an earlier bind would have.
move_to() {
	rm -f "$S/devices/pci0000:00/$2/driver"
	find "$S/bus/pci/drivers" -name "$2" -exec rm -f {} +
	ln -s "../../../bus/pci/drivers/$1" "$S/devices/pci0000:00/$2/driver"
	seed_bind "$1" "$2"
	echo "$1" >"$S/devices/pci0000:00/$2/driver_override"
}

cfg_cmd() {
	od -An -tx1 -j4 -N1 "$S/devices/pci0000:00/$1/config" | tr -d ' \n'
}

db() {
	"$DEVBIND" --sysfs-root "$S" --proc-root "$P" --modules-dir "$M" "$@"
}

echo "# list"
mktree
expect_rc 0 "list" db list
expect_text "BDF" "list prints a table header"
expect_text "0000:01:00.0" "list shows 01:00.0"
expect_text "0000:04:00.0" "list shows 04:00.0"
if grep -q '^0000:02:00\.1 ' "$T/out"; then fail "list shows the non-NVMe function"; else ok "list hides the non-NVMe function"; fi
expect_text "0000:01:00.0: in use: nvme0n1p1 is mounted on /boot" "mounted partition detected"
expect_text "0000:02:00.0: in use: nvme1n1 is held by dm-0 (vg-data)" "holder detected"
expect_text "0000:03:00.0: in use: nvme2n1 is in use as swap" "swap detected"
no_text "0000:04:00.0: in use" "the free controller is not in use"
expect_text "0000:02:00.0: IOMMU group 8 also holds 0000:02:00.1 (igb)" "group members listed"
expect_text "vfio-pci         loaded" "vfio-pci shown loaded"
expect_text "uio_pci_generic  available" "uio_pci_generic shown available"
expect_text "RLIMIT_MEMLOCK:" "memlock shown"
if [ -r /usr/share/misc/pci.ids ] || [ -r /usr/share/hwdata/pci.ids ]; then
	expect_text "Intel Corporation" "vendor names from the PCI ID database"
	expect_text "Non-Volatile memory controller" "class names from the PCI ID database"
else
	skip "names: no pci.ids on this machine"
fi

expect_rc 0 "list --all" db list --all
expect_text "0000:02:00.1" "list --all shows the non-NVMe function"

expect_rc 0 "list --json" db list --json
expect_json "$T/list.json" "list --json"
json_check "$T/list.json" "[x['bdf'] for x in d['devices']] == ['0000:01:00.0','0000:02:00.0','0000:03:00.0','0000:04:00.0']" "JSON lists the four NVMe functions"
json_check "$T/list.json" "d['devices'][0]['in_use'] and any('/boot' in r for r in d['devices'][0]['in_use_reasons'])" "JSON: 01:00.0 in use with the mount"
json_check "$T/list.json" "d['devices'][0]['block_devices'] == ['nvme0n1']" "JSON: block devices"
json_check "$T/list.json" "d['devices'][1]['iommu_group'] == 8 and d['devices'][1]['iommu_group_members'] == [{'bdf': '0000:02:00.1', 'driver': 'igb'}]" "JSON: group members with drivers"
json_check "$T/list.json" "d['devices'][3]['in_use'] is False and d['devices'][3]['driver'] == 'nvme' and d['devices'][3]['numa_node'] == 0" "JSON: free controller"
json_check "$T/list.json" "d['devices'][0]['vendor_id'] == '8086' and d['devices'][0]['class'] == '010802'" "JSON: ids"
json_check "$T/list.json" "d['drivers']['vfio-pci']['loaded'] and d['drivers']['uio_pci_generic']['available'] and not d['drivers']['uio_pci_generic']['loaded']" "JSON: driver states"
json_check "$T/list.json" "'soft_bytes' in d['memlock']" "JSON: memlock"
expect_rc 0 "list --all --json" db list --all --json
cp "$T/out" "$T/all.json"
json_check "$T/all.json" "len(d['devices']) == 5 and d['devices'][2]['nvme'] is False" "JSON --all has the non-NVMe function"

# Names from the system are bytes, not always UTF-8 (a mount point in
# Latin-1): the JSON stays valid UTF-8, the bad bytes become U+FFFD.
mktree
printf '/dev/nvme0n1p1 /mnt/caf\351\377 ext4 rw 0 0\n' >>"$P/mounts"
sed -i '\#/boot#d' "$P/mounts"
expect_rc 0 "list --json with a non-UTF-8 mount point" db list --json
expect_json "$T/latin1.json" "list --json with a non-UTF-8 mount point"
json_check "$T/latin1.json" "d['devices'][0]['in_use_reasons'] == ['nvme0n1p1 is mounted on /mnt/caf\ufffd\ufffd']" "JSON: the bad bytes are U+FFFD"

echo "# refusals (exit 3, nothing written)"
mktree
before=$(snapshot "$T/tree")
expect_rc 3 "bind a controller with a mounted partition" db bind vfio-pci 0000:01:00.0
expect_text "nvme0n1p1 is mounted on /boot" "refusal names the mount"
expect_text "--force" "refusal says how to override"
expect_rc 3 "bind a controller under dm-0" db bind vfio-pci 02:00.0
expect_text "held by dm-0" "refusal names the holder"
expect_rc 3 "bind a controller used as swap" db bind uio_pci_generic 0000:03:00.0
expect_text "swap" "refusal names swap"
expect_rc 3 "unbind a controller in use" db unbind 0000:01:00.0
expect_rc 3 "dry-run still refuses" db --dry-run bind vfio-pci 0000:01:00.0
if [ "$before" = "$(snapshot "$T/tree")" ]; then ok "refusals changed nothing"; else fail "refusals changed the tree"; fi

echo "# dry run"
mktree
mkdriver uio_pci_generic
before=$(snapshot "$T/tree")
expect_rc 0 "dry-run bind" db --dry-run bind vfio-pci 0000:04:00.0
expect_text "dry-run: write \"0000:04:00.0\" to $S/bus/pci/devices/0000:04:00.0/driver/unbind" "dry-run shows the unbind write"
expect_text "dry-run: write \"vfio-pci\" to $S/bus/pci/devices/0000:04:00.0/driver_override" "dry-run shows the override write"
expect_text "dry-run: write \"0000:04:00.0\" to $S/bus/pci/drivers_probe" "dry-run shows the probe write"
expect_rc 0 "dry-run bind uio_pci_generic" db --dry-run bind uio_pci_generic 0000:04:00.0
expect_text "dry-run: write 0x0006 at offset 0x4 of $S/bus/pci/devices/0000:04:00.0/config" "dry-run shows the COMMAND write"
expect_rc 0 "dry-run forced bind of an in-use controller" db --dry-run --force bind vfio-pci 0000:03:00.0
if [ "$before" = "$(snapshot "$T/tree")" ]; then ok "dry-run binds changed nothing"; else fail "a dry-run bind changed the tree"; fi
move_to vfio-pci 0000:04:00.0
before=$(snapshot "$T/tree")
expect_rc 0 "dry-run restore" db --dry-run restore 0000:04:00.0
expect_text "dry-run: write \"\\n\" to $S/bus/pci/devices/0000:04:00.0/driver_override" "dry-run shows the override clear"
expect_rc 0 "dry-run unbind" db --dry-run unbind 04:00.0
if [ "$before" = "$(snapshot "$T/tree")" ]; then ok "dry-run restore and unbind changed nothing"; else fail "a dry-run restore or unbind changed the tree"; fi

echo "# a refusal does not block the other devices"
mktree
seed_bind vfio-pci 0000:04:00.0
expect_rc 3 "bind an in-use and a free controller together" db bind vfio-pci 0000:01:00.0 0000:04:00.0
expect_text "0000:01:00.0: refusing, the device is in use: nvme0n1p1 is mounted on /boot" "the in-use one is refused"
expect_text "0000:04:00.0: nvme -> vfio-pci" "the free one is bound"
expect_file "$S/bus/pci/drivers_probe" "0000:04:00.0" "the free one was probed"
expect_file "$S/devices/pci0000:00/0000:01:00.0/driver_override" "(null)" "the refused one is untouched"
mktree
seed_bind vfio-pci 0000:04:00.0
expect_rc 3 "bind all-nvme while some are in use" db bind vfio-pci all-nvme
for b in 0000:01:00.0 0000:02:00.0 0000:03:00.0; do
	expect_text "$b: refusing" "all-nvme reports the refusal of $b"
done
expect_text "0000:04:00.0: nvme -> vfio-pci" "all-nvme binds the free controller"
expect_file "$S/devices/pci0000:00/0000:03:00.0/driver_override" "(null)" "the swap controller is untouched"
mktree
seed_bind vfio-pci 0000:04:00.0
expect_rc 3 "bind by vendor:device matching an in-use and a free controller" db bind vfio-pci 1b36:0010
expect_text "0000:03:00.0: refusing" "the in-use match is refused"
expect_text "0000:04:00.0: nvme -> vfio-pci" "the free match is bound"
mktree
move_to vfio-pci 0000:04:00.0
move_to vfio-pci 0000:03:00.0
sed -i '/nvme2n1/d' "$P/swaps"
mkdir -p "$P/777/fd"
echo spdk_tgt >"$P/777/comm"
ln -s /dev/vfio/10 "$P/777/fd/5"
expect_rc 3 "unbind a held and a free device together" db unbind 0000:04:00.0 0000:03:00.0
expect_text "0000:04:00.0: refusing" "the held one is refused"
expect_text "0000:03:00.0: unbound from vfio-pci" "the free one is unbound"
seed_bind nvme 0000:03:00.0
expect_rc 3 "restore a held and a free device together" db restore 0000:04:00.0 0000:03:00.0
expect_text "0000:03:00.0: vfio-pci -> nvme" "restore goes on with the free one"

echo "# network interfaces in use (non-NVMe functions)"
# mknet BDF IFACE OPERSTATE FLAGS: a netdev under the function, as the
# kernel's net class shows it.
mknet() {
	n=$S/devices/pci0000:00/$1/net/$2
	mkdir -p "$n" "$S/class/net"
	echo "$3" >"$n/operstate"
	echo "$4" >"$n/flags"
	ln -s "../../devices/pci0000:00/$1/net/$2" "$S/class/net/$2"
}
route_hdr='Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT'
mktree
mkdir -p "$P/net"
echo "$route_hdr" >"$P/net/route"
mknet 0000:02:00.1 eth0 down 0x1002
expect_rc 0 "list --all with a down interface" db list --all
no_text "0000:02:00.1: in use" "a down interface without routes is not in use"
seed_bind vfio-pci 0000:02:00.1
expect_rc 0 "bind the function of a down interface" db bind vfio-pci 0000:02:00.1
mktree
mkdir -p "$P/net"
echo "$route_hdr" >"$P/net/route"
mknet 0000:02:00.1 eth0 up 0x1003
expect_rc 0 "list --all with an interface up" db list --all
expect_text "0000:02:00.1: in use: network interface eth0 is up" "an interface that is up is in use"
before=$(snapshot "$T/tree")
expect_rc 3 "bind the function of an interface that is up" db bind vfio-pci 0000:02:00.1
expect_text "0000:02:00.1: refusing, the device is in use: network interface eth0 is up" "the refusal names the interface"
one_line_err "interface up"
expect_rc 3 "dry-run refuses it too" db --dry-run bind vfio-pci 0000:02:00.1
if [ "$before" = "$(snapshot "$T/tree")" ]; then ok "the refusals changed nothing"; else fail "the refusals changed the tree"; fi
seed_bind vfio-pci 0000:02:00.1
expect_rc 0 "--force binds it" db --force bind vfio-pci 0000:02:00.1
expect_text "going ahead because of --force" "--force warns"
mktree
mkdir -p "$P/net"
mknet 0000:02:00.1 enp2s0f1 down 0x1002
printf '%s\n%s\n' "$route_hdr" "enp2s0f1	0002A8C0	00000000	0001	0	0	0	00FFFFFF	0	0	0" >"$P/net/route"
expect_rc 3 "bind the function of an interface with an IPv4 route" db bind vfio-pci 0000:02:00.1
expect_text "network interface enp2s0f1 has routes" "the route is named"
printf '%s\n' "$route_hdr" >"$P/net/route"
echo "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 enp2s0f1" >"$P/net/ipv6_route"
expect_rc 3 "bind the function of an interface with an IPv6 route" db bind vfio-pci 0000:02:00.1
expect_text "network interface enp2s0f1 has routes" "the IPv6 route is named"
expect_rc 0 "list --all --json" db list --all --json
cp "$T/out" "$T/net.json"
json_check "$T/net.json" "[x for x in d['devices'] if x['bdf'] == '0000:02:00.1'][0]['in_use'] and [x for x in d['devices'] if x['bdf'] == '0000:02:00.1'][0]['network_interfaces'] == ['enp2s0f1']" "JSON: the interface and in_use"

echo "# dry run reports what the real run would hit"
mktree
rm -rf "$S/bus/pci/drivers/vfio-pci" "$S/module/vfio_pci"
before=$(snapshot "$S")
expect_rc 0 "dry-run bind with vfio-pci loadable but not loaded" db --dry-run bind vfio-pci 0000:04:00.0
expect_text "dry-run: run \"modprobe vfio-pci\"" "dry run shows the modprobe"
expect_text "dry-run: write \"vfio-pci\" to $S/bus/pci/devices/0000:04:00.0/driver_override" "and the writes after it"
echo "kernel/drivers/uio/uio_pci_generic.ko.xz: kernel/drivers/uio/uio.ko.xz" >"$M/modules.dep"
expect_rc 2 "dry-run bind with no vfio-pci module" db --dry-run bind vfio-pci 0000:04:00.0
expect_text "vfio-pci is not loaded and no module for it is in $M" "dry run says the driver cannot be loaded"
if [ "$before" != "$(snapshot "$S")" ]; then fail "the dry runs changed the tree"; else ok "the dry runs changed nothing"; fi
mktree
rm "$S/devices/pci0000:00/0000:04:00.0/iommu_group"
expect_rc 2 "dry-run vfio-pci bind of a device without an IOMMU group" db --dry-run bind vfio-pci 0000:04:00.0
expect_text "0000:04:00.0: no IOMMU group, so vfio-pci cannot take it" "dry run reports the missing IOMMU group"
seed_bind vfio-pci 0000:02:00.1
expect_rc 3 "dry-run of several devices reports each problem" db --dry-run bind vfio-pci 0000:01:00.0 0000:04:00.0
expect_text "0000:01:00.0: refusing" "the device in use"
expect_text "0000:04:00.0: no IOMMU group" "and the one without a group"
expect_rc 0 "dry-run uio_pci_generic needs no IOMMU group" db --dry-run bind uio_pci_generic 0000:04:00.0

echo "# bind vfio-pci"
mktree
seed_bind vfio-pci 0000:04:00.0
expect_rc 0 "bind vfio-pci 04:00.0" db bind vfio-pci 04:00.0
expect_text "0000:04:00.0: nvme -> vfio-pci" "bind reports the move"
expect_file "$S/bus/pci/drivers/nvme/unbind" "0000:04:00.0" "unbound from nvme"
expect_file "$S/devices/pci0000:00/0000:04:00.0/driver_override" "vfio-pci" "driver_override set"
expect_file "$S/bus/pci/drivers_probe" "0000:04:00.0" "drivers_probe written"
expect_file "$S/bus/pci/drivers/vfio-pci/bind" "" "bind file untouched (driver_override, not bind/new_id)"
[ "$(cfg_cmd 0000:04:00.0)" = "02" ] && ok "vfio-pci leaves COMMAND alone" || fail "vfio-pci changed COMMAND to $(cfg_cmd 0000:04:00.0)"
[ ! -e "$S/bus/pci/drivers/vfio-pci/new_id" ] && ok "new_id never written" || fail "new_id written"

echo "# bind uio_pci_generic"
mktree
expect_rc 2 "bind to a driver missing from the fake tree" db bind uio_pci_generic 0000:04:00.0
expect_text "uio_pci_generic is not registered" "says the driver is missing"
one_line_err "missing driver"
mkdriver uio_pci_generic
seed_bind uio_pci_generic 0000:04:00.0
expect_rc 0 "bind uio_pci_generic 04:00.0" db bind uio_pci_generic 0000:04:00.0
expect_file "$S/devices/pci0000:00/0000:04:00.0/driver_override" "uio_pci_generic" "driver_override set"
[ "$(cfg_cmd 0000:04:00.0)" = "06" ] && ok "bus mastering enabled (COMMAND 0x0006)" || fail "COMMAND is $(cfg_cmd 0000:04:00.0), want 06"

echo "# bounded wait"
mktree
expect_rc 2 "bind that never shows" db --timeout 0 bind vfio-pci 0000:04:00.0
expect_text "0000:04:00.0: not bound to vfio-pci" "the wait's error names the device"
expect_text "put it back on nvme" "a failed bind is rolled back to the old driver"
expect_file "$S/devices/pci0000:00/0000:04:00.0/driver_override" "" "rollback cleared driver_override"

echo "# --force and group viability"
mktree
seed_bind vfio-pci 0000:02:00.0
expect_rc 0 "bind an in-use controller with --force" db --force bind vfio-pci 0000:02:00.0
expect_text "going ahead because of --force" "force warns"
expect_text "IOMMU group 8 also holds 0000:02:00.1, bound to igb" "group viability warning lists the member"
expect_file "$S/bus/pci/drivers_probe" "0000:02:00.0" "forced bind wrote drivers_probe"

echo "# unbind"
mktree
move_to vfio-pci 0000:04:00.0
expect_rc 0 "unbind 04:00.0" db unbind 0000:04:00.0
expect_text "0000:04:00.0: unbound from vfio-pci" "unbind reports"
expect_file "$S/bus/pci/drivers/vfio-pci/unbind" "0000:04:00.0" "unbound from vfio-pci"
expect_file "$S/devices/pci0000:00/0000:04:00.0/driver_override" "" "driver_override cleared with a newline"
expect_file "$S/bus/pci/drivers_probe" "" "unbind does not probe"

echo "# restore"
mktree
move_to vfio-pci 0000:04:00.0
seed_bind nvme 0000:04:00.0
expect_rc 0 "restore 04:00.0" db restore 0000:04:00.0
expect_text "0000:04:00.0: vfio-pci -> nvme" "restore reports the kernel driver"
expect_file "$S/bus/pci/drivers/vfio-pci/unbind" "0000:04:00.0" "unbound from vfio-pci"
expect_file "$S/devices/pci0000:00/0000:04:00.0/driver_override" "" "driver_override cleared"
expect_file "$S/bus/pci/drivers_probe" "0000:04:00.0" "drivers_probe written"
expect_rc 0 "restore a controller already on nvme" db restore 0000:01:00.0
expect_text "already on kernel driver nvme" "restore leaves kernel-driven devices"
mktree
mkdriver uio_pci_generic
move_to uio_pci_generic 0000:04:00.0
expect_rc 2 "restore that no kernel driver takes" db --timeout 0 restore 0000:04:00.0
expect_text "0000:04:00.0: no kernel driver took the device" "restore's wait names the device"

echo "# mounts in other mount namespaces"
mktree
mkdir -p "$P/self/ns" "$P/4242/ns"
ln -s "mnt:[4026531841]" "$P/self/ns/mnt"
ln -s "mnt:[4026531841]" "$P/4242/ns/mnt"
echo containerd >"$P/4242/comm"
echo "36 25 259:4 / /srv rw,relatime - ext4 /dev/nvme3n1 rw" >"$P/4242/mountinfo"
expect_rc 0 "list with a process in our own mount namespace" db list
no_text "0000:04:00.0: in use" "our own namespace's table is not read again"
rm "$P/4242/ns/mnt"
ln -s "mnt:[4026532999]" "$P/4242/ns/mnt"
expect_rc 0 "list with a mount in another namespace" db list
expect_text "0000:04:00.0: in use: nvme3n1 is mounted on /srv in another mount namespace (pid 4242, containerd)" "mount in another namespace found by major:minor"
before=$(snapshot "$T/tree")
expect_rc 3 "bind a controller mounted in another namespace" db bind vfio-pci 0000:04:00.0
expect_text "in another mount namespace" "refusal names the other namespace"
if [ "$before" = "$(snapshot "$T/tree")" ]; then ok "the refusal changed nothing"; else fail "the refusal changed the tree"; fi

echo "# exclusive open (--dev-root)"
mktree
mkdir -p "$T/dev"
: >"$T/dev/nvme3n1"
seed_bind vfio-pci 0000:04:00.0
expect_rc 0 "a node that opens is not busy" db --dev-root "$T/dev" bind vfio-pci 0000:04:00.0
mktree
rm -rf "$T/dev"
mkdir -p "$T/dev"
seed_bind vfio-pci 0000:04:00.0
expect_rc 0 "a missing node is not busy" db --dev-root "$T/dev" bind vfio-pci 0000:04:00.0
# EBUSY needs a real block device held exclusively: an idle loop device
# (no backing file) that a helper opens with O_EXCL, the way a mount, a
# btrfs or RAID member, or mkfs holds a disk. The fake /dev links to it.
loopdev=
for l in /sys/block/loop*; do
	[ -e "$l" ] && [ ! -e "$l/loop/backing_file" ] && [ -b "/dev/${l##*/}" ] || continue
	loopdev=/dev/${l##*/}
	break
done
if [ "$(id -u)" -ne 0 ]; then
	skip "busy block device: not root"
elif ! command -v python3 >/dev/null 2>&1; then
	skip "busy block device: no python3 to hold a device with O_EXCL"
elif [ -z "$loopdev" ]; then
	skip "busy block device: no idle loop device"
else
	python3 -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL)
print("held", flush=True)
time.sleep(60)' "$loopdev" >"$T/held" 2>&1 &
	holder=$!
	i=0
	while [ $i -lt 50 ] && ! grep -q held "$T/held" 2>/dev/null && kill -0 "$holder" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	if ! grep -q held "$T/held"; then
		skip "busy block device: cannot hold $loopdev: $(cat "$T/held")"
	else
		mktree
		ln -s "$loopdev" "$T/dev/nvme3n1"
		before=$(snapshot "$T/tree")
		expect_rc 3 "bind a controller whose disk is held exclusively" db --dev-root "$T/dev" bind vfio-pci 0000:04:00.0
		expect_text "nvme3n1 is busy (open exclusively: mounted, a RAID/LVM/btrfs member or a running program)" "refusal says the disk is busy"
		if [ "$before" = "$(snapshot "$T/tree")" ]; then ok "the refusal changed nothing"; else fail "the refusal changed the tree"; fi
		expect_rc 0 "list shows it" db --dev-root "$T/dev" list
		expect_text "0000:04:00.0: in use: nvme3n1 is busy" "list names the busy disk"
		expect_rc 0 "without --dev-root a fake tree opens no nodes" db list
		no_text "0000:04:00.0: in use" "no node opened without --dev-root"
	fi
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
fi
rm -rf "$T/dev"

echo "# processes driving a device (uio, vfio)"
# mkuser PID COMM TARGET: a process with fd 5 linked to TARGET.
mkuser() {
	mkdir -p "$P/$1/fd"
	echo "$2" >"$P/$1/comm"
	ln -s "$3" "$P/$1/fd/5"
}
mktree
move_to vfio-pci 0000:04:00.0
mkuser 777 spdk_tgt /dev/vfio/10
mkuser 778 bash /dev/pts/0
mkuser 779 other /dev/vfio/11
expect_rc 0 "list a vfio device a process holds" db list
expect_text "0000:04:00.0: in use: pid 777 (spdk_tgt) has /dev/vfio/10 open" "list names the process"
no_text "pid 779" "another group's holder is not counted"
before=$(snapshot "$T/tree")
expect_rc 3 "unbind a vfio device a process holds" db unbind 0000:04:00.0
expect_text "0000:04:00.0: refusing, the device is in use: pid 777 (spdk_tgt) has /dev/vfio/10 open (stop that process first, or pass --force)" "unbind refusal names pid and command"
one_line_err "vfio user"
expect_rc 3 "restore a vfio device a process holds" db restore 0000:04:00.0
expect_text "pid 777 (spdk_tgt)" "restore refusal names the process"
expect_rc 3 "bind nvme a vfio device a process holds" db bind nvme 0000:04:00.0
expect_rc 3 "dry-run restore still refuses" db --dry-run restore 0000:04:00.0
if [ "$before" = "$(snapshot "$T/tree")" ]; then ok "the refusals changed nothing"; else fail "the refusals changed the tree"; fi
expect_rc 0 "bind vfio-pci to a device already on it" db bind vfio-pci 0000:04:00.0
expect_text "already bound to vfio-pci" "a device already on the driver is left alone"
expect_rc 0 "restore of a device on nvme ignores others' vfio users" db restore 0000:01:00.0
expect_rc 0 "unbind with --force" db --force unbind 0000:04:00.0
expect_text "going ahead because of --force" "--force warns about the process"
expect_file "$S/bus/pci/drivers/vfio-pci/unbind" "0000:04:00.0" "forced unbind written"

mktree
move_to vfio-pci 0000:04:00.0
mkdir -p "$S/devices/pci0000:00/0000:04:00.0/vfio-dev/vfio0"
mkuser 780 qemu /dev/vfio/devices/vfio0
expect_rc 3 "restore a vfio device opened through its cdev" db restore 0000:04:00.0
expect_text "pid 780 (qemu) has /dev/vfio/devices/vfio0 open" "vfio cdev user named"

mktree
mkdriver uio_pci_generic
move_to uio_pci_generic 0000:04:00.0
mkdir -p "$S/devices/pci0000:00/0000:04:00.0/uio/uio3"
mkuser 781 dpdk /dev/uio3
mkuser 782 other /dev/uio4
expect_rc 3 "restore a uio device a process holds" db restore 0000:04:00.0
expect_text "pid 781 (dpdk) has /dev/uio3 open" "uio user named"
no_text "pid 782" "another uio device's holder is not counted"
expect_rc 3 "unbind a uio device a process holds" db unbind 0000:04:00.0
rm -rf "$P/781"
# libupcie's uio backend maps the BAR file and closes it: /proc/PID/maps.
R=$(cd "$S/devices/pci0000:00/0000:04:00.0" && pwd -P)
mkdir -p "$P/783/fd"
echo nvme_app >"$P/783/comm"
echo "7f0000000000-7f0000004000 rw-s 00000000 00:15 1234                       $R/resource0" >"$P/783/maps"
expect_rc 3 "restore a uio device whose BAR a process maps" db restore 0000:04:00.0
expect_text "pid 783 (nvme_app) has $R/resource0 mapped" "BAR mapping named"
rm -rf "$P/783"
seed_bind nvme 0000:04:00.0
expect_rc 0 "restore once the process is gone" db restore 0000:04:00.0

echo "# processes holding a block device or partition open"
mktree
mkuser 790 dd /dev/nvme3n1
mkuser 791 bash /dev/nvme30n1
expect_rc 0 "list a controller whose namespace a process holds" db list
expect_text "0000:04:00.0: in use: pid 790 (dd) has /dev/nvme3n1 open" "list names the holder's pid and command"
no_text "pid 791" "a node of another disk is not counted"
before=$(snapshot "$T/tree")
expect_rc 3 "bind a controller whose namespace a process holds" db bind vfio-pci 0000:04:00.0
expect_text "0000:04:00.0: refusing, the device is in use: pid 790 (dd) has /dev/nvme3n1 open" "refusal names pid and command"
one_line_err "block device holder"
expect_rc 3 "unbind it" db unbind 0000:04:00.0
if [ "$before" = "$(snapshot "$T/tree")" ]; then ok "the refusals changed nothing"; else fail "the refusals changed the tree"; fi
seed_bind vfio-pci 0000:04:00.0
expect_rc 0 "bind it with --force" db --force bind vfio-pci 0000:04:00.0
expect_text "warning: 0000:04:00.0: in use (pid 790 (dd) has /dev/nvme3n1 open); going ahead because of --force" "--force warns naming the holder"
mktree
sed -i '/nvme0n1p1/d' "$P/mounts"
mkuser 792 postgres /dev/nvme0n1p1
expect_rc 3 "bind a controller whose partition a process holds" db bind vfio-pci 0000:01:00.0
expect_text "pid 792 (postgres) has /dev/nvme0n1p1 open" "partition holder named"
mktree
expect_rc 0 "list with no holders" db list
no_text "in use: pid" "no holder without an fd"

echo "# status"
mktree
mkdir -p "$S/kernel/mm/hugepages/hugepages-2048kB" "$S/devices/system/node/node0/hugepages/hugepages-2048kB"
echo 64 >"$S/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
echo 60 >"$S/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"
echo 64 >"$S/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"
echo 60 >"$S/devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages"
move_to vfio-pci 0000:04:00.0
mkdir -p "$T/dev/vfio" "$T/etc/security"
: >"$T/dev/vfio/10"
chmod 600 "$T/dev/vfio/10"
expect_rc 0 "status" db --dev-root "$T/dev" status
expect_text "0000:01:00.0  nvme      no: on nvme" "a controller on nvme is not ready"
expect_text "0000:04:00.0  vfio-pci  yes (vfio)" "a controller on vfio-pci with its group node is ready"
expect_text "$T/dev/vfio/10 $(id -un):$(id -gn) 0600" "the group node's owner and mode shown"
expect_text "2M    0     60    64" "hugepages free per node"
expect_text "RLIMIT_MEMLOCK" "status shows the memlock limit"
expect_rc 0 "status --json" db --dev-root "$T/dev" status --json
expect_json "$T/status.json" "status --json"
json_check "$T/status.json" "[c['user_space_ready'] for c in d['controllers']] == [False, False, False, True]" "JSON: only 04:00.0 is ready"
json_check "$T/status.json" "d['controllers'][3]['vfio_group_dev']['mode'] == 0o600 and d['controllers'][3]['iommu_group'] == 10" "JSON: group node mode and IOMMU group"
json_check "$T/status.json" "{'size_kb': 2048, 'node': 0, 'total': 64, 'free': 60} in d['hugepages'] and d['hugepage_pool_bytes'] == 64 * 2 << 20" "JSON: hugepages per node and the pool"
# iommufd: no cdev and no /dev/iommu yet: type1; then both, and no-IOMMU mode.
expect_rc 0 "status without a cdev" db --dev-root "$T/dev" status
expect_text "vfio: iommufd (/dev/iommu): no; no-IOMMU mode: not in this kernel" "status: no iommufd, no no-IOMMU mode"
expect_text "  0000:04:00.0: cdev none, the library would use type1" "status: type1 without a cdev"
json_check "$T/status.json" "d['vfio'] == {'iommufd': False, 'noiommu_mode': None} and d['controllers'][3]['vfio_iommu'] == 'type1' and d['controllers'][3]['vfio_cdev'] is None and d['controllers'][0]['vfio_iommu'] is None" "JSON: vfio interfaces without iommufd"
mkdir -p "$S/devices/pci0000:00/0000:04:00.0/vfio-dev/vfio0" "$S/module/vfio/parameters" "$T/dev/vfio/devices"
echo N >"$S/module/vfio/parameters/enable_unsafe_noiommu_mode"
: >"$T/dev/iommu"
: >"$T/dev/vfio/devices/vfio0"
expect_rc 0 "status with a cdev and /dev/iommu" db --dev-root "$T/dev" status
expect_text "vfio: iommufd (/dev/iommu): yes; no-IOMMU mode: off" "status: iommufd there, no-IOMMU mode off"
expect_text "  0000:04:00.0: cdev vfio0, the library would use iommufd" "status: iommufd with a cdev"
expect_rc 0 "status --json with a cdev" db --dev-root "$T/dev" status --json
expect_json "$T/status-cdev.json" "status --json with a cdev"
json_check "$T/status-cdev.json" "d['vfio'] == {'iommufd': True, 'noiommu_mode': 'off'} and d['controllers'][3]['vfio_iommu'] == 'iommufd' and d['controllers'][3]['vfio_cdev'] == 'vfio0'" "JSON: iommufd with a cdev"
expect_rc 0 "status in a fake tree without --dev-root" db status
expect_text "vfio: iommufd (/dev/iommu): not checked (a fake tree: give --dev-root)" "status: /dev not checked"
rm -f "$T/dev/iommu"

echo "# noiommu"
# vfio's no-IOMMU mode: shown, set on and off (with the warning), refused
# where the kernel has none; bind --noiommu turns it on before binding; a
# device in a no-IOMMU group shows as such in status.
NP=$S/module/vfio/parameters/enable_unsafe_noiommu_mode
expect_rc 0 "noiommu shows the mode" db noiommu
expect_text "vfio no-IOMMU mode: off" "noiommu: off"
expect_rc 0 "noiommu on" db noiommu on
expect_text "warning: vfio's no-IOMMU mode is unsafe" "noiommu on warns"
expect_text "can DMA anywhere in memory" "the warning says what can go wrong"
expect_text "UPCIE_VFIO_IOMMU=noiommu" "the warning names the library's opt-in"
if [ "$(cat "$NP")" = Y ]; then ok "noiommu on wrote Y"; else fail "the parameter reads '$(cat "$NP")'"; fi
expect_rc 0 "noiommu on again" db noiommu on
expect_text "vfio no-IOMMU mode: already on" "noiommu on twice: already on"
expect_rc 0 "noiommu off --dry-run" db --dry-run noiommu off
expect_text "dry-run: write \"N\" to $NP" "the dry run shows the write"
if [ "$(cat "$NP")" = Y ]; then ok "the dry run wrote nothing"; else fail "the dry run wrote '$(cat "$NP")'"; fi
expect_rc 0 "noiommu off" db noiommu off
if [ "$(cat "$NP")" = N ]; then ok "noiommu off wrote N"; else fail "the parameter reads '$(cat "$NP")'"; fi
mkdir -p "$S/class/iommu/dmar0"
expect_rc 0 "noiommu on with an IOMMU" db noiommu on
expect_text "devices with an IOMMU group keep it" "noiommu on says an IOMMU keeps its devices"
rmdir "$S/class/iommu/dmar0"
expect_rc 1 "noiommu with a bad argument" db noiommu maybe
expect_text "noiommu takes 'on', 'off' or nothing, not 'maybe'" "the usage error names the argument"
expect_rc 1 "--noiommu on another command" db --noiommu unbind 0000:04:00.0
expect_text "--noiommu applies to bind vfio-pci, not to unbind" "--noiommu elsewhere names the command"
expect_rc 1 "--noiommu with uio_pci_generic" db bind --noiommu uio_pci_generic 0000:04:00.0
expect_text "--noiommu is vfio's no-IOMMU mode" "--noiommu names what it is for"
# A device in a no-IOMMU group (what vfio-pci made when it bound it).
echo "vfio-noiommu" >"$S/kernel/iommu_groups/10/name"
# (sysfs has vfio-dev/vfio0 for it, as Linux 6.12 does, but no cdev node)
: >"$T/dev/vfio/noiommu-10"
expect_rc 0 "status with a no-IOMMU group" db --dev-root "$T/dev" status
expect_text "0000:04:00.0  vfio-pci  yes, as root (vfio no-IOMMU, unsafe)" "status: ready as root, unsafe"
expect_text "no-IOMMU mode: on" "status: the mode is on"
expect_text "0000:04:00.0: cdev none, the library would use noiommu (physical addresses, unsafe: only for a program that opts in, UPCIE_VFIO_IOMMU=noiommu)" "status: the interface and the opt-in"
expect_rc 0 "status --json with a no-IOMMU group" db --dev-root "$T/dev" status --json
expect_json "$T/status-noiommu.json" "status --json with a no-IOMMU group"
json_check "$T/status-noiommu.json" "d['vfio']['noiommu_mode'] == 'on' and d['controllers'][3]['vfio_iommu'] == 'noiommu' and d['controllers'][3]['vfio_group_dev']['path'].endswith('/vfio/noiommu-10')" "JSON: the no-IOMMU group and interface"
rm -f "$S/kernel/iommu_groups/10/name" "$T/dev/vfio/noiommu-10"
# No parameter: a kernel without the mode (or vfio not loaded).
mv "$NP" "$T/np.saved"
expect_rc 0 "noiommu without the parameter" db noiommu
expect_text "vfio no-IOMMU mode: not in this kernel" "noiommu: not in this kernel"
expect_rc 2 "noiommu on without the parameter" db noiommu on
expect_text "CONFIG_VFIO_NOIOMMU" "noiommu on names the kernel option"
mv "$T/np.saved" "$NP"
echo N >"$NP"
rm "$S/devices/pci0000:00/0000:04:00.0/iommu_group"
move_to nvme 0000:04:00.0
expect_rc 2 "vfio-pci bind without an IOMMU group, mode off" db --dry-run bind vfio-pci 0000:04:00.0
expect_text "devbind bind --noiommu vfio-pci 0000:04:00.0" "the refusal names the no-IOMMU way"
seed_bind vfio-pci 0000:04:00.0
expect_rc 0 "bind --noiommu vfio-pci without an IOMMU group" db bind --noiommu vfio-pci 0000:04:00.0
expect_text "vfio no-IOMMU mode: on" "bind --noiommu turned the mode on"
expect_text "0000:04:00.0: nvme -> vfio-pci" "and bound the device"
if [ "$(cat "$NP")" = Y ]; then ok "bind --noiommu wrote Y"; else fail "the parameter reads '$(cat "$NP")'"; fi
ln -s "../../../kernel/iommu_groups/10" "$S/devices/pci0000:00/0000:04:00.0/iommu_group"
move_to vfio-pci 0000:04:00.0 2>/dev/null
echo N >"$NP"

if [ "$(id -u)" -eq 0 ]; then
	expect_rc 0 "status --user nobody" db --dev-root "$T/dev" --etc-root "$T/etc" status --user nobody
	expect_text "no: nobody cannot open $T/dev/vfio/10" "status says who cannot open the group node"
	expect_text "nobody may lock 8M" "status warns about nobody's memlock limit"
	expect_text "'nobody - memlock unlimited' in $T/etc/security/limits.d/upcie.conf" "the warning says how to raise it"

	echo "# bind --user"
	seed_bind vfio-pci 0000:04:00.0 2>/dev/null
	expect_rc 0 "bind --user nobody vfio-pci" db --dev-root "$T/dev" --etc-root "$T/etc" bind --user nobody vfio-pci 0000:04:00.0
	if [ "$(stat -c %U "$T/dev/vfio/10")" = nobody ]; then ok "the group node is nobody's"; else fail "the group node is $(stat -c %U "$T/dev/vfio/10")'s"; fi
	expect_text "$T/dev/vfio/10 is nobody's now (IOMMU group 10)" "bind --user says so"
	if [ "$(stat -c %U "$T/dev/vfio/devices/vfio0")" = nobody ]; then fail "the cdev went to nobody without /dev/iommu"; else ok "no /dev/iommu: the cdev stays as it is"; fi
	expect_text "warning: nobody may lock 8M of memory (RLIMIT_MEMLOCK, not set in limits.conf: the default) but the hugepage pool holds 128M" "bind --user checks memlock against the pool"
	echo "@nogroup hard memlock 262144" >"$T/etc/security/limits.conf"
	echo "nobody soft memlock 131072" >>"$T/etc/security/limits.conf"
	mkdir -p "$T/etc/security/limits.d"
	echo "* - memlock 64" >"$T/etc/security/limits.d/10-default.conf"
	expect_rc 0 "status --user nobody with limits.conf" db --dev-root "$T/dev" --etc-root "$T/etc" status --user nobody
	expect_text "0000:04:00.0  vfio-pci  yes (vfio)" "nobody may open the group node now"
	expect_text "nobody: RLIMIT_MEMLOCK 128M ($T/etc/security/limits.conf:2) covers the hugepage pool (128M)" "user line beats group and * lines"
	expect_rc 0 "status --user nobody --json" db --dev-root "$T/dev" --etc-root "$T/etc" status --user nobody --json
	expect_json "$T/status-user.json" "status --user --json"
	json_check "$T/status-user.json" "d['user']['name'] == 'nobody' and d['user']['memlock_soft_bytes'] == 128 << 20 and d['user']['memlock_hard_bytes'] == 256 << 20" "JSON: nobody's soft and hard memlock"
	expect_rc 0 "bind --user --dry-run" db --dev-root "$T/dev" --dry-run bind --user root vfio-pci 0000:04:00.0
	expect_text "dry-run: chown root:root $T/dev/vfio/10" "dry run shows the chown"
	: >"$T/dev/iommu"
	expect_rc 0 "bind --user --dry-run with iommufd" db --dev-root "$T/dev" --dry-run bind --user root vfio-pci 0000:04:00.0
	expect_text "dry-run: chown root:root $T/dev/vfio/devices/vfio0" "dry run shows the cdev's chown"
	expect_text "dry-run: chown root:root $T/dev/iommu" "dry run shows /dev/iommu's chown"
	seed_bind vfio-pci 0000:04:00.0 2>/dev/null
	expect_rc 0 "bind --user nobody with iommufd" db --dev-root "$T/dev" --etc-root "$T/etc" bind --user nobody vfio-pci 0000:04:00.0
	if [ "$(stat -c %U "$T/dev/vfio/devices/vfio0"):$(stat -c %U "$T/dev/iommu")" = nobody:nobody ]; then ok "the cdev and /dev/iommu are nobody's"; else fail "cdev and /dev/iommu owners: $(stat -c %U "$T/dev/vfio/devices/vfio0"):$(stat -c %U "$T/dev/iommu")"; fi
	expect_text "$T/dev/vfio/devices/vfio0 is nobody's now (the device's VFIO cdev)" "bind --user names the cdev"
	rm -f "$T/dev/iommu"
	if [ "$(stat -c %U "$T/dev/vfio/10")" = nobody ]; then ok "the dry run chowned nothing"; else fail "the dry run chowned the node"; fi
else
	skip "status/bind --user: not root (chown)"
fi
mktree
mkdriver uio_pci_generic
seed_bind uio_pci_generic 0000:04:00.0
expect_rc 0 "bind --user nobody uio_pci_generic" db bind --user nobody uio_pci_generic 0000:04:00.0
expect_text "nobody cannot use it without root" "uio says it needs root"
expect_rc 1 "bind --user to nvme" db bind --user nobody nvme 0000:04:00.0
expect_rc 1 "--user with an unknown user" db bind --user no-such-user-here vfio-pci 0000:04:00.0
expect_text "no user 'no-such-user-here'" "unknown user named"
expect_rc 1 "--user on unbind" db unbind --user nobody 0000:04:00.0

echo "# persist and unpersist"
mktree
E=$T/etc
rm -rf "$E"
expect_rc 1 "persist on a fake tree without --etc-root" db persist vfio-pci 0000:04:00.0
expect_rc 0 "persist --dry-run" db --etc-root "$E" --dry-run persist vfio-pci 0000:04:00.0
expect_text 'ACTION=="add", SUBSYSTEM=="pci", KERNEL=="0000:04:00.0", ATTR{driver_override}="vfio-pci"' "dry run shows the udev rule"
expect_text "bind vfio-pci 0000:04:00.0" "dry run shows the unit's bind"
if [ -e "$E" ]; then fail "the dry run wrote files"; else ok "the dry run wrote nothing"; fi
expect_rc 0 "persist vfio-pci 04:00.0" db --etc-root "$E" persist vfio-pci 04:00.0
expect_rc 0 "persist --user nobody uio_pci_generic 02:00.0" db --etc-root "$E" persist --user nobody uio_pci_generic 0000:02:00.0
expect_file "$E/upcie/devbind.d/pci-0000:04:00.0" "vfio-pci" "one file per device (driverctl's layout)"
expect_file "$E/upcie/devbind.d/pci-0000:02:00.0" "uio_pci_generic nobody" "the user is kept"
if grep -q 'KERNEL=="0000:02:00.0", ATTR{driver_override}="uio_pci_generic"' "$E/udev/rules.d/70-upcie-devbind.rules" &&
	grep -q 'KERNEL=="0000:04:00.0", ATTR{driver_override}="vfio-pci"' "$E/udev/rules.d/70-upcie-devbind.rules"; then
	ok "the udev rule holds both devices"
else
	fail "the udev rule: $(cat "$E/udev/rules.d/70-upcie-devbind.rules")"
fi
U=$E/systemd/system/upcie-devbind.service
if grep -q "^ExecStart=.*devbind bind vfio-pci 0000:04:00.0$" "$U" && grep -q "^ExecStart=.*devbind bind --user nobody uio_pci_generic 0000:02:00.0$" "$U"; then
	ok "the unit binds both at boot"
else
	fail "the unit: $(cat "$U")"
fi
if [ "$(readlink "$E/systemd/system/multi-user.target.wants/upcie-devbind.service")" = ../upcie-devbind.service ]; then ok "the unit is enabled"; else fail "the unit is not enabled"; fi
expect_text "in use now" "persisting a device in use warns"
exe=$(sed -n 's/^ExecStart=\([^ ]*\) bind .*/\1/p' "$U" | sort -u)
if [ "$exe" = "$INSTALLED_DEVBIND" ]; then
	ok "the unit runs the installed devbind ($INSTALLED_DEVBIND)"
else
	fail "the unit runs '$exe', want the installed '$INSTALLED_DEVBIND' (not the binary that wrote it)"
fi
expect_rc 0 "list-persisted" db --etc-root "$E" list-persisted
expect_text "0000:02:00.0  uio_pci_generic  nobody  nvme" "list-persisted shows a device, its driver, user and current driver"
expect_text "0000:04:00.0  vfio-pci         -       nvme" "list-persisted shows the other device"
expect_rc 0 "list-persisted --json" db --etc-root "$E" list-persisted --json
expect_json "$T/persisted.json" "list-persisted --json"
json_check "$T/persisted.json" "d['persisted'] == [{'bdf': '0000:02:00.0', 'driver': 'uio_pci_generic', 'user': 'nobody', 'current_driver': 'nvme', 'present': True}, {'bdf': '0000:04:00.0', 'driver': 'vfio-pci', 'user': None, 'current_driver': 'nvme', 'present': True}]" "JSON: both entries"
expect_rc 1 "list-persisted takes no device" db --etc-root "$E" list-persisted 0000:04:00.0
expect_rc 0 "persist 04:00.0 again on uio" db --etc-root "$E" persist uio_pci_generic 0000:04:00.0
expect_file "$E/upcie/devbind.d/pci-0000:04:00.0" "uio_pci_generic" "persist again replaces the driver"
if [ "$(grep -c 'KERNEL=="0000:04:00.0"' "$E/udev/rules.d/70-upcie-devbind.rules")" = 1 ]; then ok "one rule per device"; else fail "duplicate rules"; fi
expect_rc 1 "persist nvme" db --etc-root "$E" persist nvme 0000:04:00.0
expect_rc 1 "unpersist a malformed address" db --etc-root "$E" unpersist 04:00
expect_rc 0 "unpersist 04:00.0" db --etc-root "$E" unpersist 04:00.0
if [ ! -e "$E/upcie/devbind.d/pci-0000:04:00.0" ] && ! grep -q 0000:04:00.0 "$E/udev/rules.d/70-upcie-devbind.rules" "$U"; then
	ok "unpersist drops the device everywhere"
else
	fail "unpersist left 04:00.0 behind"
fi
expect_rc 0 "unpersist a device not persisted" db --etc-root "$E" unpersist 0000:09:00.0
expect_text "0000:09:00.0: not persisted" "unpersist names what was not persisted"
expect_rc 0 "unpersist all" db --etc-root "$E" unpersist all
left=$(find "$E" -type f -o -type l)
if [ -z "$left" ]; then ok "unpersist all removes every file"; else fail "left behind: $left"; fi
expect_rc 0 "list-persisted with nothing persisted" db --etc-root "$E" list-persisted
expect_text "no persisted bindings" "list-persisted says there are none"

echo "# allow and deny lists for all-nvme"
mktree
seed_bind vfio-pci 0000:04:00.0
expect_rc 0 "bind all-nvme with the in-use controllers denied" db --deny 0000:01:00.0,02:00.0,0000:03:00.0 --allow 0000:04:00.0 bind vfio-pci all-nvme
expect_text "0000:04:00.0: nvme -> vfio-pci" "the allowed controller is bound"
expect_text "0000:01:00.0: skipped (--deny)" "a denied controller is named"
no_text "refusing" "denied controllers are not even checked"
mktree
seed_bind vfio-pci 0000:04:00.0
expect_rc 0 "bind all-nvme with --allow" db --allow 04:00.0 bind vfio-pci all-nvme
expect_text "0000:04:00.0: nvme -> vfio-pci" "--allow binds what it names"
expect_text "0000:03:00.0: skipped (not in --allow)" "--allow skips the rest"
mktree
seed_bind vfio-pci 0000:04:00.0
expect_rc 0 "bind all-nvme with UPCIE_DEVBIND_DENY" env UPCIE_DEVBIND_DENY="0000:01:00.0 0000:02:00.0,0000:03:00.0" "$DEVBIND" --sysfs-root "$S" --proc-root "$P" --modules-dir "$M" bind vfio-pci all-nvme
expect_text "0000:01:00.0: skipped (UPCIE_DEVBIND_DENY)" "the variable's deny list applies"
mktree
seed_bind vfio-pci 0000:04:00.0
expect_rc 0 "bind all-nvme with UPCIE_DEVBIND_ALLOW" env UPCIE_DEVBIND_ALLOW=0000:04:00.0 "$DEVBIND" --sysfs-root "$S" --proc-root "$P" --modules-dir "$M" bind vfio-pci all-nvme
expect_text "0000:01:00.0: skipped (not in UPCIE_DEVBIND_ALLOW)" "the variable's allow list applies"
before=$(snapshot "$T/tree")
expect_rc 2 "all-nvme with everything denied" db --deny 1b36:0010,8086:0953,144d:a808 bind vfio-pci all-nvme
expect_text "every NVMe controller" "says nothing was left"
expect_rc 1 "a malformed --deny entry" db --deny 04:00 bind vfio-pci all-nvme
expect_text "--deny: '04:00' is not a PCI address or vendor:device" "the malformed entry is named"
one_line_err "malformed --deny"
expect_rc 1 "a malformed UPCIE_DEVBIND_ALLOW entry" env UPCIE_DEVBIND_ALLOW=bogus "$DEVBIND" --sysfs-root "$S" --proc-root "$P" --modules-dir "$M" bind vfio-pci all-nvme
expect_text "UPCIE_DEVBIND_ALLOW: 'bogus' is not a PCI address or vendor:device" "the variable is named"
expect_rc 3 "a device named outright is not filtered" db --deny 0000:01:00.0 bind vfio-pci 0000:01:00.0
expect_rc 1 "--deny on list" db --deny 0000:01:00.0 list
expect_text "--allow and --deny pick devices for bind" "says where --deny applies"
if [ "$before" = "$(snapshot "$T/tree")" ]; then ok "those changed nothing"; else fail "those changed the tree"; fi

echo "# bad input"
mktree
before=$(snapshot "$T/tree")
expect_rc 1 "no command" db
expect_rc 1 "unknown command" db frobnicate
expect_rc 1 "unknown option" db --bogus list
expect_text "unknown option '--bogus'" "unknown long option named"
expect_rc 1 "unknown short option" db -x list
expect_text "unknown option '-x'" "unknown short option named, not as missing a value"
no_text "needs a value" "unknown short option is not a missing value"
expect_rc 1 "option without its value" db list --timeout
expect_text "option '--timeout' needs a value" "missing value named"
expect_rc 1 "value to an option without one" db --force=yes list
expect_text "option '--force' takes no value" "value to a flag named"
expect_rc 1 "list with an argument" db list 0000:01:00.0
expect_rc 1 "--json on bind" db --json bind vfio-pci 0000:04:00.0
expect_rc 1 "bind without a driver" db bind
expect_rc 1 "bind without a device" db bind vfio-pci
expect_rc 1 "unknown driver" db bind e1000e 0000:04:00.0
expect_text "unknown driver 'e1000e'" "unknown driver named"
one_line_err "unknown driver"
expect_rc 1 "malformed BDF (no function)" db bind vfio-pci 04:00
expect_text "malformed device '04:00'" "malformed BDF named"
one_line_err "malformed BDF"
expect_rc 1 "malformed BDF (not hex)" db bind vfio-pci zz:00.0
expect_rc 1 "malformed BDF (function 9)" db bind vfio-pci 0000:04:00.9
expect_rc 1 "malformed vendor:device" db unbind 8086:95
expect_rc 1 "malformed timeout" db --timeout soon bind vfio-pci 0000:04:00.0
expect_rc 2 "unknown device" db bind vfio-pci 0000:09:00.0
expect_text "no PCI device 0000:09:00.0" "unknown device named"
one_line_err "unknown device"
expect_rc 2 "unknown vendor:device" db restore dead:beef
expect_text "no PCI device matches 'dead:beef'" "unmatched vendor:device named"
expect_rc 2 "missing sysfs root" "$DEVBIND" --sysfs-root "$T/nonexistent" list
if [ "$before" = "$(snapshot "$T/tree")" ]; then ok "bad input changed nothing"; else fail "bad input changed the tree"; fi

# Not root: writes to the real /sys are refused before anything is read or
# written. As root, drop to nobody when the binary is reachable.
if [ "$(id -u)" -ne 0 ]; then
	expect_rc 2 "bind as non-root on the real /sys" "$DEVBIND" bind vfio-pci 0000:00:00.0
	expect_text "needs root" "non-root error says to run as root"
	one_line_err "not root"
elif nobody_can_run "$DEVBIND"; then
	expect_rc 2 "bind as nobody on the real /sys" as_nobody "$DEVBIND" bind vfio-pci 0000:00:00.0
	expect_text "needs root" "non-root error says to run as root"
	one_line_err "not root"
else
	skip "not-root check: running as root and cannot run $DEVBIND as nobody"
fi

# modprobe failing (a module it cannot find), on the real /sys but safely:
# only when the driver is not registered, so devbind stops at the modprobe
# step, and with a stand-in modprobe that always fails.
real_dev=$(ls /sys/bus/pci/devices 2>/dev/null | head -n 1)
if [ "$(id -u)" -ne 0 ]; then
	skip "modprobe failure: not root"
elif [ -e /sys/bus/pci/drivers/vfio-pci ] || [ -z "$real_dev" ]; then
	skip "modprobe failure: vfio-pci is registered here (or no PCI device), so the test could bind for real"
else
	mkdir -p "$T/bin"
	printf '#!/bin/sh\necho "modprobe: FATAL: Module $1 not found" >&2\nexit 1\n' >"$T/bin/modprobe"
	chmod +x "$T/bin/modprobe"
	expect_rc 2 "driver module missing (modprobe fails)" env PATH="$T/bin:$PATH" "$DEVBIND" bind vfio-pci "$real_dev"
	expect_text "driver module vfio-pci is missing" "missing module named"
	expect_text "CONFIG_VFIO_PCI" "missing module error says what to do"
	expect_rc 2 "no modprobe at all" env PATH="$T/empty" "$DEVBIND" bind vfio-pci "$real_dev"
	expect_text "cannot run modprobe" "missing modprobe named"
fi

expect_rc 0 "--help" db --help
expect_text "Exit status: 0 ok, 1 usage error, 2 device or system error" "--help documents exit codes"

finish
