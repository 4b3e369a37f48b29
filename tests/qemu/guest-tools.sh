# SPDX-License-Identifier: BSD-3-Clause
#
# The devbind and hugepages CLIs on the guest's real sysfs, in both
# configurations (uio: no IOMMU; vfio: intel-iommu). guest-tests.sh runs it
# first, before its own binds and driver suites; it can also run alone:
#   run-guest BUILD_DIR uio|vfio tests/qemu/guest-tools.sh
#
#  1. devbind list, --json and --all: both controllers on nvme with the
#     block devices the kernel made for them (matched by serial number),
#     every PCI function with its ids and names (numbers: the guest has no
#     pci.ids), IOMMU groups as sysfs has them.
#  2. Per controller, twice: bind the configuration's user-space driver,
#     upcie-identify opens it, restore gives it back to nvme and its block
#     devices come back (bounded wait). unbind leaves it on no driver,
#     restore recovers it. uio: vfio-pci without an IOMMU group is refused
#     (exit 2) and the controller stays on nvme.
#  3. Safety on controller B: an ext2 filesystem at the start of its
#     namespace, mounted; bind and unbind exit 3 naming the mount and change
#     nothing; after umount, --dry-run prints the writes and changes
#     nothing, the bind works, restore brings the filesystem back intact.
#  3b. A dd holding B's namespace open: list names its pid and command,
#     bind and unbind exit 3; after it exits B is free again.
#  4. hugepages: info shows the boot's pool; setup --count, clear; bad
#     inputs (--count 0, a page size the kernel cannot give); the pool is
#     restored.
#  4c. noiommu configuration: devbind noiommu off makes vfio-pci refuse B
#     (no IOMMU group, exit 2, naming --noiommu); bind --noiommu turns the
#     mode on with its warning and binds; status shows the no-IOMMU group.
#  4b. devbind status (+ --json); bind --user nobody (vfio: the group node
#     is nobody's and upcie-perf runs as nobody; no-IOMMU: refused as
#     needing root; uio: refused as needing
#     root); hugepages mount --user; persist writes the rule and the unit,
#     whose commands (what boot runs) bind A; unpersist removes them.
#  5. Bad input: an address that does not exist, an unknown driver.
#
# Leaves every controller on nvme with driver_override cleared. Writes only
# the first 4 MiB of controller B's namespace (the filesystem), away from
# the regions at the end of each namespace that guest-tests.sh keeps.
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
A=$UPCIE_CTRL_A
B=$UPCIE_CTRL_B
MNT=/mnt/upcie-tools
nctrl=$(echo $UPCIE_CTRLS | wc -w)
FS_KB=4096
HP2M=/sys/kernel/mm/hugepages/hugepages-2048kB

if ! command -v devbind >/dev/null || ! command -v hugepages >/dev/null; then
	t_skip "devbind and hugepages CLIs" "not in this build"
	exit 0
fi

# --- helpers --------------------------------------------------------------

bad() {
	echo "  !! $*"
	return 1
}

now() { cut -d' ' -f1 /proc/uptime; }

# Serial number of a controller while nvme owns it.
serial_of() {
	for _c in /sys/bus/pci/devices/$1/nvme/nvme*; do
		[ -e "$_c/serial" ] && { tr -d ' ' <"$_c/serial"; return 0; }
	done
	return 1
}

# Block devices (namespaces) the kernel made for a controller, one per line,
# sorted; by serial number (with or without native multipath).
blocks_of() {
	eval "_ser=\$serial_$(label_of "$1")"
	for _b in /sys/block/nvme*; do
		[ -e "$_b/device/serial" ] || continue
		[ "$(tr -d ' ' <"$_b/device/serial")" = "$_ser" ] || continue
		[ -b "/dev/${_b##*/}" ] && echo "${_b##*/}"
	done | sort
}

label_of() {
	case "$1" in
	"$A") echo A ;;
	"$B") echo B ;;
	*) echo X ;;
	esac
}

override_of() {
	_o=$(cat "/sys/bus/pci/devices/$1/driver_override" 2>/dev/null)
	[ "$_o" = "(null)" ] && _o=""
	echo "$_o"
}

# Wait (20 s at most) until a controller has as many block devices as at
# the start (the names may change); remember the new names.
wait_blocks() {
	_l=$(label_of "$1")
	eval "_want=\$blocks_$_l"
	_t0=$(now)
	_i=0
	while [ $_i -lt 200 ]; do
		_got=$(blocks_of "$1" | tr '\n' ' ')
		if [ "$(echo $_got | wc -w)" = "$(echo $_want | wc -w)" ]; then
			echo "  block devices present after $(echo "$(now) $_t0" | awk '{printf "%.1f", $1-$2}')s: $_got"
			eval "blocks_$_l=\$_got"
			return 0
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	bad "block devices after 20 s: '$_got', expected '$_want'"
}

# Rows of a devbind list table: "BDF vvvv:dddd ...".
table_rows() {
	awk '$2 ~ /^[0-9a-f][0-9a-f][0-9a-f][0-9a-f]:[0-9a-f][0-9a-f][0-9a-f][0-9a-f]$/' "$1" | wc -l
}

# The state a controller must be in when nvme owns it.
on_nvme() {
	_d=$(upcie_driver "$1")
	[ "$_d" = nvme ] || bad "$1 is on '${_d:-no driver}', not nvme" || return 1
	[ -z "$(override_of "$1")" ] || bad "$1: driver_override is still '$(override_of "$1")'"
}

# Flatten JSON to "path<TAB>value" lines (devices.0.bdf<TAB>0000:00:01.0;
# strings unquoted, empty containers as {} and []). Exits 1 on malformed
# input, so it doubles as a well-formedness check.
json_flat() {
	awk '
	function path(   p, k) {
		p = ""
		for (k = 1; k <= d; k++)
			p = p (k > 1 ? "." : "") (typ[k] == "{" ? key[k] : idx[k])
		return p
	}
	function value(v) {
		if (d > 0) {
			if (typ[d] == "{" && !haskey[d]) { err = "value without a key"; return }
			cnt[d]++
			haskey[d] = 0
		}
		print path() "\t" v
	}
	function fail(msg) { print "json_flat: " msg " at offset " i | "cat >&2"; exit 1 }
	{ buf = buf $0 "\n" }
	END {
		n = length(buf); d = 0; i = 1; top = 0
		while (i <= n) {
			c = substr(buf, i, 1)
			if (c == " " || c == "\t" || c == "\n" || c == "\r" || c == ":") { i++; continue }
			if (c == "{" || c == "[") {
				if (d > 0) {
					if (typ[d] == "{" && !haskey[d]) fail("object without a key")
					cnt[d]++; haskey[d] = 0
				}
				top++
				d++; typ[d] = c; key[d] = ""; idx[d] = 0; cnt[d] = 0; haskey[d] = 0
				i++; continue
			}
			if (c == "}" || c == "]") {
				if (d == 0 || (c == "}") != (typ[d] == "{")) fail("unbalanced " c)
				if (typ[d] == "{" && haskey[d]) fail("key without a value")
				# An empty container: its own path (the key or index of
				# its parent still holds it) with {} or [].
				e = !cnt[d]
				d--
				if (e) print path() "\t" (c == "}" ? "{}" : "[]")
				i++; continue
			}
			if (c == ",") {
				if (d == 0) fail("stray comma")
				if (typ[d] == "[") idx[d]++
				i++; continue
			}
			if (c == "\"") {
				s = ""; i++
				while (i <= n) {
					c = substr(buf, i, 1)
					if (c == "\\") { s = s substr(buf, i, 2); i += 2; continue }
					if (c == "\"") break
					s = s c; i++
				}
				if (i > n) fail("unterminated string")
				i++
				if (d > 0 && typ[d] == "{" && !haskey[d]) { key[d] = s; haskey[d] = 1; continue }
				value(s)
				if (err) fail(err)
				continue
			}
			if (substr(buf, i) ~ /^(-?[0-9][0-9.eE+-]*|true|false|null)/) {
				match(substr(buf, i), /^(-?[0-9][0-9.eE+-]*|true|false|null)/)
				value(substr(buf, i, RLENGTH))
				if (err) fail(err)
				i += RLENGTH; continue
			}
			fail("unexpected character \"" c "\"")
		}
		if (d != 0) fail("unclosed container")
		if (top == 0) fail("no JSON value")
	}'
}

# jget <flat file> <path>: the value at path ("" if absent, status 1).
jget() {
	awk -F '\t' -v p="$2" '$1 == p { print $2; f = 1; exit } END { exit !f }' "$1"
}

# Index of the device with this bdf in a flattened devbind list --json.
jdev() {
	awk -F '\t' -v b="$2" '$2 == b && $1 ~ /^devices\.[0-9]+\.bdf$/ {
		split($1, p, "."); print p[2]; f = 1; exit } END { exit !f }' "$1"
}

# --- state at the start ---------------------------------------------------

echo "== devbind and hugepages CLIs, configuration $UPCIE_CONFIG: A=$A B=$B, user-space driver $drv"
for c in A B; do
	eval "bdf=\$$c"
	s=$(serial_of "$bdf") || s=""
	eval "serial_$c=\$s"
	bl=$(blocks_of "$bdf" | tr '\n' ' ')
	eval "blocks_$c=\$bl"
	echo "controller $c $bdf: serial $s, block devices $bl"
done
start_ok=1
for c in A B; do
	eval "bdf=\$$c; s=\$serial_$c; bl=\$blocks_$c"
	if [ -z "$bdf" ] || [ -z "$s" ] || [ -z "$bl" ] || ! on_nvme "$bdf"; then
		start_ok=0
	fi
done
if [ $start_ok = 1 ]; then
	t_pass "tools: both controllers start on nvme with their block devices"
else
	t_fail "tools: both controllers start on nvme with their block devices"
	exit 0
fi

# --- 1. list --------------------------------------------------------------

list_table_check() {
	devbind list >/tmp/list.out 2>/tmp/list.err || bad "exit $?" || return 1
	cat /tmp/list.out
	[ ! -s /tmp/list.err ] || { cat /tmp/list.err; bad "stderr is not empty"; } || return 1
	for c in A B; do
		eval "bdf=\$$c; want=\$blocks_$c"
		want=$(echo $want | tr ' ' ',')
		set -- $(awk -v b="$bdf" '$1 == b' /tmp/list.out)
		[ $# -ge 8 ] || bad "no row for $c ($bdf)" || return 1
		[ "$3" = nvme ] || bad "$c: driver column '$3', not nvme" || return 1
		[ "$6" = "$want" ] || bad "$c: block column '$6', expected '$want'" || return 1
		[ "$7" = no ] || bad "$c: in-use column '$7', expected no" || return 1
	done
	n=$(table_rows /tmp/list.out)
	[ "$n" = "$nctrl" ] || bad "$n controller rows, expected $nctrl"
}

iommu_group_of() {
	if [ -e "/sys/bus/pci/devices/$1/iommu_group" ]; then
		basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"
	else
		echo null
	fi
}

list_json_check() {
	devbind list --json >/tmp/list.json 2>/tmp/list.err || bad "exit $?" || return 1
	[ ! -s /tmp/list.err ] || { cat /tmp/list.err; bad "stderr is not empty"; } || return 1
	json_flat </tmp/list.json >/tmp/list.flat || bad "not well-formed JSON" || return 1
	n=$(grep -c '^devices\.[0-9]*\.bdf	' /tmp/list.flat)
	[ "$n" = "$nctrl" ] || bad "$n devices, expected $nctrl" || return 1
	for c in A B; do
		eval "bdf=\$$c; want=\$blocks_$c"
		i=$(jdev /tmp/list.flat "$bdf") || bad "no entry for $c ($bdf)" || return 1
		got=$(awk -F '\t' -v p="devices.$i.block_devices." 'index($1, p) == 1 { print $2 }' /tmp/list.flat |
			sort | tr '\n' ' ')
		[ "$(jget /tmp/list.flat "devices.$i.driver")" = nvme ] || bad "$c: driver is not nvme" || return 1
		[ "$(jget /tmp/list.flat "devices.$i.nvme")" = true ] || bad "$c: nvme is not true" || return 1
		[ "$(jget /tmp/list.flat "devices.$i.class")" = 010802 ] || bad "$c: class is not 010802" || return 1
		[ "$(jget /tmp/list.flat "devices.$i.driver_override")" = null ] || bad "$c: driver_override is set" || return 1
		[ "$got" = "$want" ] || bad "$c: block devices '$got', expected '$want'" || return 1
		[ "$(jget /tmp/list.flat "devices.$i.in_use")" = false ] || bad "$c: in use" || return 1
		g=$(iommu_group_of "$bdf")
		[ "$(jget /tmp/list.flat "devices.$i.iommu_group")" = "$g" ] ||
			bad "$c: iommu_group is not $g (sysfs)" || return 1
		echo "  $c $bdf: driver nvme, block_devices $(echo $got), in_use false, iommu_group $g"
	done
	for d in uio_pci_generic vfio-pci; do
		[ "$(jget /tmp/list.flat "drivers.$d.loaded")" = true ] || bad "$d not shown loaded" || return 1
	done
}

# Names come from pci.ids; without it (the guest's case) libpci spells out
# the numbers: "Class 0108: Vendor 1b36 Device 0010".
pci_ids=""
for f in /usr/share/misc/pci.ids /usr/share/hwdata/pci.ids /usr/share/misc/pci.ids.gz \
	/usr/share/hwdata/pci.ids.gz /usr/share/pci.ids; do
	[ -e "$f" ] && pci_ids=$f
done

list_all_check() {
	devbind list --all >/tmp/all.out 2>/tmp/all.err || bad "exit $?" || return 1
	cat /tmp/all.out
	[ ! -s /tmp/all.err ] || { cat /tmp/all.err; bad "stderr is not empty"; } || return 1
	echo "  pci.ids: ${pci_ids:-absent, expecting numeric names}"
	nfun=0
	for dev in /sys/bus/pci/devices/*; do
		bdf=${dev##*/}
		v=$(sed 's/^0x//' "$dev/vendor")
		d=$(sed 's/^0x//' "$dev/device")
		cl=$(sed 's/^0x//' "$dev/class" | cut -c1-4)
		row=$(awk -v b="$bdf" '$1 == b' /tmp/all.out)
		[ -n "$row" ] || bad "no row for $bdf" || return 1
		set -- $row
		[ "$2" = "$v:$d" ] || bad "$bdf: id '$2', sysfs says $v:$d" || return 1
		[ $# -ge 8 ] || bad "$bdf: no name" || return 1
		if [ -z "$pci_ids" ]; then
			case "$row" in
			*"Class $cl: Vendor $v Device $d") ;;
			*) bad "$bdf: name is not 'Class $cl: Vendor $v Device $d'" || return 1 ;;
			esac
		fi
		nfun=$((nfun + 1))
	done
	n=$(table_rows /tmp/all.out)
	[ "$n" = "$nfun" ] || bad "$n rows, sysfs has $nfun PCI functions" || return 1
	devbind list --all --json >/tmp/all.json 2>&1 || bad "--json: exit $?" || return 1
	json_flat </tmp/all.json >/tmp/all.flat || bad "--all --json: not well-formed JSON" || return 1
	n=$(grep -c '^devices\.[0-9]*\.bdf	' /tmp/all.flat)
	[ "$n" = "$nfun" ] || bad "--all --json: $n devices, sysfs has $nfun" || return 1
	echo "  --all --json: $n devices, vendor and device names: $(grep -c '^devices\.[0-9]*\.vendor	.' /tmp/all.flat), $(grep -c '^devices\.[0-9]*\.device	.' /tmp/all.flat)"
	[ "$(grep -c '^devices\.[0-9]*\.device	.' /tmp/all.flat)" = "$nfun" ] || bad "device names missing"
}

t_run "devbind list: A and B on nvme with their block devices" list_table_check
t_run "devbind list --json: well-formed, A and B on nvme, blocks, IOMMU groups" list_json_check
t_run "devbind list --all (+ --json): every PCI function with ids and names" list_all_check

# --- 2. bind, identify, restore -------------------------------------------

bind_check() { # bind_check <driver> <bdf>
	devbind bind "$1" "$2" || bad "exit $?" || return 1
	_d=$(upcie_driver "$2")
	[ "$_d" = "$1" ] || bad "on '${_d:-no driver}', not $1" || return 1
	[ "$(override_of "$2")" = "$1" ] || bad "driver_override is '$(override_of "$2")', not $1" || return 1
	_b=$(blocks_of "$2" | tr '\n' ' ')
	[ -z "$_b" ] || bad "block devices still there: $_b"
}

identify_check() { # identify_check <bdf>
	eval "_ser=\$serial_$(label_of "$1")"
	upcie-identify "$1" >/tmp/id.out 2>&1 || { tail -n 5 /tmp/id.out; bad "exit $?"; } || return 1
	echo "  $(grep -E "backend:|sn:" /tmp/id.out | sed 's/ *#.*//; s/^ *//' | tr '\n' ' ')"
	grep -q "backend: $UPCIE_CONFIG\$" /tmp/id.out || bad "backend is not $UPCIE_CONFIG" || return 1
	grep -q "sn: \"$_ser\"" /tmp/id.out || bad "serial is not $_ser"
}

restore_check() { # restore_check <bdf>
	devbind restore "$1" || bad "exit $?" || return 1
	on_nvme "$1" && wait_blocks "$1"
}

unbind_check() { # unbind_check <bdf>
	devbind unbind "$1" || bad "exit $?" || return 1
	_d=$(upcie_driver "$1")
	[ -z "$_d" ] || bad "still on $_d" || return 1
	[ -z "$(override_of "$1")" ] || bad "driver_override is '$(override_of "$1")'" || return 1
	_b=$(blocks_of "$1" | tr '\n' ' ')
	[ -z "$_b" ] || bad "block devices still there: $_b" || return 1
	_d=$(devbind list | awk -v b="$1" '$1 == b { print $3 }')
	[ "$_d" = - ] || bad "devbind list shows driver '$_d', not -"
}

noiommu_tools() {
	# vfio's no-IOMMU mode through devbind: off, vfio-pci is refused for a
	# device without an IOMMU group (naming --noiommu); bind --noiommu turns
	# it on (with its warning) and binds; status shows the no-IOMMU group.
	noiommu_cycle() {
		devbind noiommu off || bad "noiommu off: exit $?" || return 1
		devbind noiommu | grep -q "mode: off" || bad "the mode is not off" || return 1
		devbind bind vfio-pci "$B" >/tmp/nb.out 2>&1
		_rc=$?
		cat /tmp/nb.out
		[ $_rc -eq 2 ] || bad "bind with the mode off: exit $_rc, expected 2" || return 1
		grep -q "devbind bind --noiommu vfio-pci" /tmp/nb.out || bad "no --noiommu advice" || return 1
		on_nvme "$B" && wait_blocks "$B" || return 1
		devbind bind --noiommu vfio-pci "$B" >/tmp/nb.out 2>&1 || { cat /tmp/nb.out; bad "bind --noiommu: exit $?"; } || return 1
		cat /tmp/nb.out
		grep -q "no-IOMMU mode is unsafe" /tmp/nb.out || bad "no warning" || return 1
		[ "$(upcie_driver "$B")" = vfio-pci ] || bad "B is on '$(upcie_driver "$B")'" || return 1
		_g=$(iommu_group_of "$B")
		[ -c "/dev/vfio/noiommu-$_g" ] || bad "no /dev/vfio/noiommu-$_g" || return 1
		devbind status >/tmp/nb.out 2>&1
		grep -E "^$B +vfio-pci +yes, as root \(vfio no-IOMMU, unsafe\)" /tmp/nb.out || bad "status: B not ready as no-IOMMU" || return 1
		grep -q "$B: cdev none, the library would use noiommu" /tmp/nb.out || bad "status: not noiommu" || return 1
		identify_check "$B"
	}
	t_run "vfio no-IOMMU: devbind noiommu off refuses vfio-pci, bind --noiommu binds, status shows it" \
		noiommu_cycle
	t_run "devbind restore B after no-IOMMU" restore_check "$B"
}

# The 6.12 guests in scripts/test (UPCIE_GUEST_612_SCOPE=interface): the
# CLIs are checked on the 6.1 guests; here only what differs, vfio's
# no-IOMMU mode through devbind.
if [ "${UPCIE_GUEST_SCOPE:-full}" = interface ]; then
	upcie_noiommu && noiommu_tools
	t_skip "guest-tools.sh: the other CLI checks" \
		"UPCIE_GUEST_SCOPE=interface (they run on the Debian 6.1 guests)"
	exit 0
fi

for c in A B; do
	eval "bdf=\$$c"
	for round in 1 2; do
		if t_run "devbind bind $drv $c (round $round)" bind_check "$drv" "$bdf"; then
			t_run "upcie-identify $c on $drv (round $round)" identify_check "$bdf"
		fi
		t_run "devbind restore $c: nvme and block devices back (round $round)" restore_check "$bdf"
	done
	t_run "devbind unbind $c: no driver, no block devices" unbind_check "$bdf"
	t_run "devbind restore $c from no driver" restore_check "$bdf"
done
t_rc "devbind bind nvme B while on nvme: nothing to do" 0 "already bound to nvme" devbind bind nvme "$B"
t_rc "devbind restore B while on nvme: nothing to do" 0 "already on kernel driver nvme" devbind restore "$B"

if [ "$UPCIE_CONFIG" = uio ]; then
	# No IOMMU: vfio-pci cannot take a device (Debian's kernel has no
	# unsafe no-IOMMU mode); devbind must say so and leave it on nvme.
	vfio_refused() {
		[ ! -e "/sys/bus/pci/devices/$B/iommu_group" ] || bad "B has an IOMMU group" || return 1
		devbind bind vfio-pci "$B"
		_rc=$?
		[ $_rc -eq 2 ] || bad "exit $_rc, expected 2" || return 1
		on_nvme "$B" && wait_blocks "$B"
	}
	t_run "uio: devbind bind vfio-pci without an IOMMU group: exit 2, B stays on nvme" vfio_refused ||
		devbind restore "$B" >/dev/null 2>&1
fi
upcie_noiommu && noiommu_tools

# --- 3. safety: a mounted filesystem on B -----------------------------------

bdev=$(blocks_of "$B" | head -n1)
mkfs_mount() {
	[ -n "$bdev" ] || bad "B has no block device" || return 1
	mke2fs -F -L upcie-tools "/dev/$bdev" "$FS_KB" >/tmp/mkfs.out 2>&1 ||
		{ cat /tmp/mkfs.out; bad "mke2fs exit $?"; } || return 1
	grep -E "inodes|blocks per group" /tmp/mkfs.out
	mkdir -p "$MNT"
	mount -t ext2 "/dev/$bdev" "$MNT" || bad "mount exit $?" || return 1
	echo "upcie-tools $UPCIE_CONFIG" >"$MNT/stamp" && sync
	grep " $MNT " /proc/mounts
}

unchanged_B() {
	on_nvme "$B" || return 1
	[ "$(blocks_of "$B" | head -n1)" = "$bdev" ] || bad "block device changed" || return 1
	grep -q "^/dev/$bdev $MNT " /proc/mounts || bad "no longer mounted"
}

# refused <devbind args...>: devbind's exit status (3) when it left B as it
# was; 1 when it changed something.
refused() {
	devbind "$@"
	_rc=$?
	unchanged_B || return 1
	return $_rc
}

if t_run "ext2 on B ($bdev, first $FS_KB KiB), mounted on $MNT" mkfs_mount; then
	t_rc "devbind list: B in use, naming the mount" 0 "^$B: in use: $bdev is mounted on $MNT\$" devbind list
	t_rc "devbind bind $drv B while mounted: refused (3), names the mount" 3 \
		"$B: refusing.*$bdev is mounted on $MNT" refused bind "$drv" "$B"
	t_rc "devbind unbind B while mounted: refused (3)" 3 "$bdev is mounted on $MNT" refused unbind "$B"
	t_rc "devbind --dry-run bind B while mounted: refused (3) too" 3 "refusing" refused --dry-run bind "$drv" "$B"

	dry_run() {
		umount "$MNT" || bad "umount exit $?" || return 1
		devbind --dry-run bind "$drv" "$B" >/tmp/dry.out 2>&1 || { cat /tmp/dry.out; bad "exit $?"; } || return 1
		cat /tmp/dry.out
		for w in "write \"$B\" to /sys/bus/pci/devices/$B/driver/unbind" \
			"write \"$drv\" to /sys/bus/pci/devices/$B/driver_override" \
			"write \"$B\" to /sys/bus/pci/drivers_probe"; do
			grep -qF "dry-run: $w" /tmp/dry.out || bad "missing: dry-run: $w" || return 1
		done
		on_nvme "$B" || return 1
		[ "$(blocks_of "$B" | head -n1)" = "$bdev" ] || bad "block device gone"
	}
	t_run "umount; devbind --dry-run bind $drv B: prints the writes, changes nothing" dry_run
	grep -q " $MNT " /proc/mounts && umount "$MNT"
	if t_run "devbind bind $drv B after umount" bind_check "$drv" "$B"; then
		t_run "upcie-identify B on $drv after umount" identify_check "$B"
	fi
	fs_back() {
		restore_check "$B" || return 1
		bdev=$(blocks_of "$B" | head -n1)
		mount -t ext2 -o ro "/dev/$bdev" "$MNT" || bad "mount exit $?" || return 1
		_s=$(cat "$MNT/stamp")
		umount "$MNT"
		[ "$_s" = "upcie-tools $UPCIE_CONFIG" ] || bad "stamp file reads '$_s'"
	}
	t_run "devbind restore B: nvme, and the filesystem mounts with its file" fs_back
	grep -q " $MNT " /proc/mounts && umount "$MNT"
fi

# --- 3b. safety: a process holding B's namespace open ----------------------

# dd opens its input (the namespace) first, then blocks opening its output,
# a FIFO nobody reads: a plain open, no O_EXCL, no mount, only the fd.
bdev=$(blocks_of "$B" | head -n1)
ddpid=
dd_hold() {
	[ -n "$bdev" ] || bad "B has no block device" || return 1
	rm -f /tmp/ddfifo && mkfifo /tmp/ddfifo || bad "mkfifo" || return 1
	dd if="/dev/$bdev" of=/tmp/ddfifo bs=4096 count=1 2>/dev/null &
	ddpid=$!
	_i=0
	while [ $_i -lt 100 ]; do
		ls -l "/proc/$ddpid/fd" 2>/dev/null | grep -q "/dev/$bdev" && {
			echo "  dd (pid $ddpid) holds /dev/$bdev open"
			return 0
		}
		sleep 0.1
		_i=$((_i + 1))
	done
	bad "dd did not open /dev/$bdev"
}

# held_refused <devbind args...>: devbind's exit status when B stayed on nvme.
held_refused() {
	devbind "$@"
	_rc=$?
	on_nvme "$B" || return 1
	[ "$(blocks_of "$B" | head -n1)" = "$bdev" ] || bad "block device changed" || return 1
	return $_rc
}

if t_run "dd holds B's namespace ($bdev) open" dd_hold; then
	t_rc "devbind list: B in use, naming dd's pid" 0 \
		"^$B: in use: pid $ddpid \(dd\) has /dev/$bdev open\$" devbind list
	t_rc "devbind bind $drv B while dd holds it: refused (3), names pid and command" 3 \
		"$B: refusing.*pid $ddpid \(dd\) has /dev/$bdev open.*--force" held_refused bind "$drv" "$B"
	t_rc "devbind unbind B while dd holds it: refused (3)" 3 "pid $ddpid \(dd\)" held_refused unbind "$B"
	kill "$ddpid" 2>/dev/null
	wait "$ddpid" 2>/dev/null
	t_rc "devbind list after dd exits: B not in use" 0 "" sh -c "! devbind list | grep '^$B: in use'"
fi
rm -f /tmp/ddfifo

# --- 4. hugepages ------------------------------------------------------------

boot_hp=128
for arg in $(cat /proc/cmdline); do
	case "$arg" in upcie.hugepages=*) boot_hp=${arg#upcie.hugepages=} ;; esac
done
saved_hp=$(cat $HP2M/nr_hugepages)

hp_total() { # hp_total <size>: the "all" row's TOTAL in hugepages info
	hugepages info >/tmp/hp.out 2>&1 || return 1
	awk -v s="$1" '$1 == s && $2 == "all" { print $3 }' /tmp/hp.out
}

hp_info_check() {
	hugepages info >/tmp/hp.out 2>&1 || { cat /tmp/hp.out; bad "exit $?"; } || return 1
	cat /tmp/hp.out
	set -- $(awk '$1 == "2M" && $2 == "all"' /tmp/hp.out)
	[ "$3" = "$boot_hp" ] || bad "2M total '$3', /init reserved $boot_hp" || return 1
	[ "$3" = "$saved_hp" ] || bad "2M total '$3', sysfs says $saved_hp" || return 1
	[ "$4" = "$(cat $HP2M/free_hugepages)" ] || bad "2M free '$4', sysfs says $(cat $HP2M/free_hugepages)" || return 1
	[ "$7" = /dev/hugepages ] || bad "2M mount '$7', expected /dev/hugepages" || return 1
	grep -q "^default huge page size: 2M" /tmp/hp.out || bad "default size is not 2M" || return 1
	hugepages info --json >/tmp/hp.json 2>&1 || bad "--json: exit $?" || return 1
	json_flat </tmp/hp.json >/tmp/hp.flat || bad "--json: not well-formed" || return 1
	i=$(awk -F '\t' '$1 ~ /^page_sizes\.[0-9]+\.size_kb$/ && $2 == 2048 { split($1, p, "."); print p[2] }' /tmp/hp.flat)
	[ -n "$i" ] || bad "--json: no 2048 kB size" || return 1
	[ "$(jget /tmp/hp.flat "page_sizes.$i.total")" = "$boot_hp" ] || bad "--json: total is not $boot_hp" || return 1
	[ "$(jget /tmp/hp.flat "page_sizes.$i.mount")" = /dev/hugepages ] || bad "--json: mount is not /dev/hugepages"
}

hp_setup_check() { # hp_setup_check <n>
	hugepages setup --count "$1" --size 2M || bad "exit $?" || return 1
	_t=$(hp_total 2M)
	[ "$_t" = "$1" ] || bad "info shows $_t, not $1" || return 1
	[ "$(cat $HP2M/nr_hugepages)" = "$1" ] || bad "sysfs says $(cat $HP2M/nr_hugepages)"
}

hp_clear_check() {
	hugepages clear || bad "exit $?" || return 1
	hugepages info >/tmp/hp.out 2>&1
	awk '$2 == "all"' /tmp/hp.out
	_n=$(awk '$2 == "all" && $3 != 0' /tmp/hp.out | wc -l)
	[ "$_n" = 0 ] || bad "$_n page sizes not at 0" || return 1
	[ "$(cat $HP2M/nr_hugepages)" = 0 ] || bad "sysfs says $(cat $HP2M/nr_hugepages)"
}

t_run "hugepages info (+ --json): the pool /init reserved ($boot_hp x 2M)" hp_info_check
half=$((boot_hp / 2))
[ $half -gt 0 ] || half=1
t_run "hugepages setup --count $half: info shows $half" hp_setup_check $half
t_run "hugepages clear: info shows 0 for every size" hp_clear_check
t_rc "hugepages setup --count 0: usage error (1)" 1 "--count 0" hugepages setup --count 0
if [ -d /sys/kernel/mm/hugepages/hugepages-1048576kB ]; then
	# Offered (-cpu max has pdpe1gb), but a 1 GiB guest cannot hold one.
	mem_kb=$(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo)
	if [ "$mem_kb" -lt 2097152 ]; then
		t_rc "hugepages setup --count 1 --size 1G in a ${mem_kb} kB guest: fewer granted (2)" 2 \
			"granted 0 of 1 1G pages" hugepages setup --count 1 --size 1G
	else
		t_skip "hugepages setup --size 1G fails" "the guest has ${mem_kb} kB, it may get one"
	fi
	hugepages clear --size 1G >/dev/null 2>&1
else
	t_rc "hugepages setup --size 1G without 1G pages: not offered (2)" 2 \
		"does not offer 1G pages" hugepages setup --count 1 --size 1G
fi
t_rc "hugepages setup --size 4M (neither x86 nor arm64 has 4M pages): not offered (2)" 2 \
	"does not offer 4M pages; it offers .*2M" hugepages setup --count 1 --size 4M
t_run "hugepages setup --count $saved_hp: the pool is back" hp_setup_check "$saved_hp" ||
	echo "$saved_hp" >$HP2M/nr_hugepages

# --- 4b. status, --user, persist --------------------------------------------------

# as_nobody CMD...: run CMD as nobody (uid 65534; busybox su, whose setpriv
# cannot change ids; nobody's login shell is /bin/false).
as_nobody() {
	_p=$(command -v "$1") || _p=$1
	shift
	su -s /bin/sh -c 'exec "$0" "$@"' -- nobody "$_p" "$@"
}

t_rc "devbind status: A not ready while on nvme" 0 "^$A +nvme +no: on nvme" devbind status
status_json_check() {
	devbind status --user nobody --json >/tmp/st.json 2>/tmp/st.err || bad "exit $?" || return 1
	json_flat </tmp/st.json >/tmp/st.flat || bad "not well-formed JSON" || return 1
	i=$(awk -F '\t' -v b="$A" '$2 == b && $1 ~ /^controllers\.[0-9]+\.bdf$/ { split($1, p, "."); print p[2] }' /tmp/st.flat)
	[ -n "$i" ] || bad "no entry for A" || return 1
	[ "$(jget /tmp/st.flat "controllers.$i.user_space_ready")" = false ] || bad "A ready on nvme" || return 1
	[ "$(jget /tmp/st.flat "user.name")" = nobody ] || bad "no user object" || return 1
	[ "$(jget /tmp/st.flat "hugepage_pool_bytes")" = $((saved_hp * 2097152)) ] || bad "pool is not $saved_hp x 2M" || return 1
	grep -E '^hugepages\.[0-9]+\.node	[0-9]' /tmp/st.flat >/dev/null || bad "no per-node hugepage rows"
}
t_run "devbind status --user nobody --json: A, the pool, nobody's limit" status_json_check

if upcie_noiommu; then
	t_rc "devbind bind --user nobody vfio-pci A (no-IOMMU): says it needs root" 0 \
		"nobody cannot use it without root.*no-IOMMU" devbind bind --user nobody vfio-pci "$A"
	t_rc "upcie-perf as nobody on A (vfio no-IOMMU): fails, as warned" 2 "root" \
		as_nobody upcie-perf --device "$A" --rw randread --bs 4k --qd 4 --io-count 100 --no-progress
	t_run "devbind restore A after --user" restore_check "$A"
elif [ "$UPCIE_CONFIG" = vfio ]; then
	user_bind() {
		devbind bind --user nobody vfio-pci "$A" >/tmp/ub.out 2>&1 || { cat /tmp/ub.out; bad "exit $?"; } || return 1
		cat /tmp/ub.out
		g=$(iommu_group_of "$A")
		[ "$(stat -c %u "/dev/vfio/$g")" = 65534 ] || bad "/dev/vfio/$g is uid $(stat -c %u "/dev/vfio/$g")" || return 1
		grep -q "nobody may lock" /tmp/ub.out || bad "no memlock warning for nobody (8M limit, pool $saved_hp x 2M)" || return 1
		devbind status --user nobody | grep -E "^$A +vfio-pci +yes \(vfio\)" || bad "status does not call A ready for nobody"
	}
	if t_run "devbind bind --user nobody vfio-pci A: /dev/vfio/GROUP is nobody's, memlock warned" user_bind; then
		t_rc "upcie-perf as nobody on A (vfio, no root)" 0 '"ios"' \
			as_nobody upcie-perf --device "$A" --rw randread --bs 4k --qd 4 --io-count 2000 --json --no-progress
	fi
	t_run "devbind restore A after --user" restore_check "$A"
else
	t_rc "devbind bind --user nobody uio_pci_generic A: says uio needs root" 0 \
		"nobody cannot use it without root" devbind bind --user nobody uio_pci_generic "$A"
	t_rc "upcie-perf as nobody on A (uio): fails, as warned" 2 "" \
		as_nobody upcie-perf --device "$A" --rw randread --bs 4k --qd 4 --io-count 100 --no-progress
	t_run "devbind restore A after --user" restore_check "$A"
fi

hp_user_mount() {
	hugepages mount /mnt/hp-nobody --user nobody || bad "exit $?" || return 1
	[ "$(stat -c %u /mnt/hp-nobody)" = 65534 ] || bad "mount root is uid $(stat -c %u /mnt/hp-nobody)" || return 1
	as_nobody sh -c ': >/mnt/hp-nobody/probe' || bad "nobody cannot create a file there" || return 1
	rm -f /mnt/hp-nobody/probe
	hugepages umount /mnt/hp-nobody
}
t_run "hugepages mount --user nobody: a hugetlbfs nobody owns" hp_user_mount

persist_boot() {
	rm -rf /etc/upcie /etc/udev /etc/systemd
	devbind persist --user nobody "$drv" "$A" || bad "persist exit $?" || return 1
	[ "$(cat "/etc/upcie/devbind.d/pci-$A")" = "$drv nobody" ] || bad "devbind.d: $(cat "/etc/upcie/devbind.d/pci-$A")" || return 1
	grep -q "KERNEL==\"$A\", ATTR{driver_override}=\"$drv\"" /etc/udev/rules.d/70-upcie-devbind.rules ||
		bad "no udev rule for A" || return 1
	[ -L /etc/systemd/system/multi-user.target.wants/upcie-devbind.service ] || bad "unit not enabled" || return 1
	on_nvme "$A" || bad "persist moved A now" || return 1
	# What the unit does at boot: its ExecStart lines.
	sed -n 's/^ExecStart=//p' /etc/systemd/system/upcie-devbind.service >/tmp/boot.sh
	cat /tmp/boot.sh
	# The unit runs the installed devbind, never the copy it was run from;
	# the guest has no installation, so its copy stands in at that path.
	_inst=$(awk '{ print $1; exit }' /tmp/boot.sh)
	case "$_inst" in
	/upcie/*) bad "the unit runs $_inst, not an installed devbind" || return 1 ;;
	esac
	mkdir -p "$(dirname "$_inst")" && ln -sf "$(command -v devbind)" "$_inst" ||
		bad "cannot put devbind at $_inst" || return 1
	sh /tmp/boot.sh || bad "the unit's commands exit $?" || return 1
	rm -f "$_inst"
	[ "$(upcie_driver "$A")" = "$drv" ] || bad "A on '$(upcie_driver "$A")' after the unit's commands" || return 1
	upcie-identify "$A" >/dev/null || bad "identify after the unit's bind" || return 1
	devbind unpersist all || bad "unpersist exit $?" || return 1
	[ -z "$(find /etc/upcie /etc/udev /etc/systemd -type f 2>/dev/null)" ] || bad "files left: $(find /etc/upcie /etc/udev /etc/systemd -type f)" || return 1
	restore_check "$A"
}
t_run "devbind persist $drv A: rule and unit written; the unit's bind works; unpersist removes them" persist_boot ||
	devbind restore "$A" >/dev/null 2>&1

# --- 5. bad input ---------------------------------------------------------------

t_rc "devbind bind uio_pci_generic 0000:00:1f.7 (no such function): exit 2" 2 \
	"no PCI device 0000:00:1f.7" devbind bind uio_pci_generic 0000:00:1f.7
one_line_error() {
	devbind bind nosuchdriver "$B" >/tmp/bad.out 2>&1
	_rc=$?
	cat /tmp/bad.out
	[ $_rc -ne 0 ] || bad "exit 0" || return 1
	[ "$(wc -l </tmp/bad.out)" = 1 ] || bad "$(wc -l </tmp/bad.out) lines, expected one" || return 1
	echo "  exit $_rc"
	on_nvme "$B"
}
t_run "devbind bind nosuchdriver B: non-zero, one line, B untouched" one_line_error

# --- every controller back on nvme ----------------------------------------------

all_on_nvme() {
	for _x in $UPCIE_CTRLS; do
		case "$_x" in "$A" | "$B") ;; *) continue ;; esac
		if ! on_nvme "$_x" || ! wait_blocks "$_x"; then
			devbind restore "$_x"
			return 1
		fi
	done
}
t_run "tools: every controller back on nvme with its block devices" all_on_nvme
exit 0
