# SPDX-License-Identifier: BSD-3-Clause
#
# Helpers for guest-side test scripts (busybox sh). Source it with
#   . "$UPCIE_GUEST_LIB"
#
# Environment set by the guest /init:
#   UPCIE_CONFIG    uio | vfio (the library backend the configuration tests)
#   UPCIE_VFIO_IOMMU  noiommu in the 'noiommu' configuration (vfio's
#                   no-IOMMU mode; every library call opts in to it)
#   UPCIE_CTRL_<L>  BDF of controller <L> of the topology (see the table in
#                   topology.py and qemu/README.md): A (2 namespaces,
#                   512 B and 4 KiB LBAs), B (small MDTS, 2 I/O queue pairs),
#                   C and D (behind one PCI bridge: one IOMMU group under
#                   vfio), E (hot-pluggable, behind a pcie-root-port)
#   UPCIE_CTRLS     all NVMe controllers, bus order
#   UPCIE_TOPO_*    the topology itself (/upcie/qemu/topology.env):
#                   UPCIE_TOPO_LABELS, UPCIE_TOPO_HOTPLUG (labels that can
#                   be unplugged), UPCIE_TOPO_XCHECK_NS, UPCIE_TOPO_<L>_SERIAL,
#                   _QID (QEMU id), _NS ("nsid:lba ..."), _BRIDGE, options
#   UPCIE_RESULTS   file the PASS/FAIL/SKIP records go to (counted by /init)
#
# Results are TAP on stdout: "ok N - name", "not ok N - name # why",
# "ok N - name # SKIP why"; N counts across every script of the boot.
#
# Functions:
#   upcie_bind <bdf> <driver>   bind a PCI function to a driver ("" unbinds)
#   upcie_hugepages <n>         set the 2 MiB hugepage pool to n pages
#   upcie_driver <bdf>          print the driver it is bound to ("" if none)
#   upcie_user_driver           uio_pci_generic or vfio-pci, for UPCIE_CONFIG
#   upcie_noiommu               true in vfio's no-IOMMU mode (physical
#                               addresses, hugepages, root; no IOMMU groups
#                               but the ones vfio makes, one per device)
#   upcie_bdf <label>           BDF of controller <label> (A, B, ...)
#   upcie_blockdev <bdf> <nsid> its block device under nvme (waits up to 20 s)
#   upcie_unplug <label> [s]    the host removes the controller (QEMU
#                               device_del); waits up to s seconds (default
#                               30) until its BDF leaves /sys/bus/pci/devices
#   upcie_replug <label> [s]    the host adds it back (device_add, same slot
#                               and BDF); waits up to s seconds (default 30)
#                               for it to reappear
#   upcie_host_request device_del|device_add <label>
#                               only ask (no wait), e.g. while a program
#                               that uses the controller runs
#   upcie_wait_gone <bdf> <s>, upcie_wait_present <bdf> <s>
#                               bounded waits; print the time taken
#   t_pass/t_fail/t_skip <name> [why]  record a result
#   t_run <name> <cmd...>       run cmd; pass when it exits 0
#   t_run_fail <name> <pattern> <cmd...>  pass when cmd exits non-zero and
#                               its output matches the grep -E pattern
#   t_done                      exit 0 (results decide the verdict)

[ -n "${UPCIE_TOPO_LABELS:-}" ] || . /upcie/qemu/topology.env

upcie_driver() {
	if [ -e "/sys/bus/pci/devices/$1/driver" ]; then
		basename "$(readlink "/sys/bus/pci/devices/$1/driver")"
	fi
}

# Bind with the project's devbind CLI when the guest has it (and
# UPCIE_GUEST_RAW_BIND is not 1); else the raw sysfs steps
# (driver_override, unbind, drivers_probe; never new_id).
upcie_bind() {
	if [ "${UPCIE_GUEST_RAW_BIND:-0}" != 1 ] && command -v devbind >/dev/null; then
		if [ -z "$2" ]; then
			devbind unbind "$1" >/dev/null || return 1
		else
			devbind bind "$2" "$1" >/dev/null || return 1
		fi
		[ -z "$2" ] || [ "$(upcie_driver "$1")" = "$2" ] || {
			echo "upcie_bind: devbind left $1 on '$(upcie_driver "$1")', not $2" >&2
			return 1
		}
		return 0
	fi
	upcie_bind_raw "$@"
}

upcie_bind_raw() {
	_dev=/sys/bus/pci/devices/$1
	[ -e "$_dev" ] || { echo "upcie_bind: no device $1" >&2; return 1; }
	if [ "$(upcie_driver "$1")" = "$2" ] && [ -n "$2" ]; then
		return 0
	fi
	echo "$2" >"$_dev/driver_override" || return 1
	if [ -e "$_dev/driver" ]; then
		echo "$1" >"$_dev/driver/unbind" || return 1
	fi
	if [ -z "$2" ]; then
		return 0
	fi
	echo "$1" >/sys/bus/pci/drivers_probe
	_cur=$(upcie_driver "$1")
	if [ "$_cur" != "$2" ]; then
		echo "upcie_bind: $1 is bound to '${_cur}', not $2" >&2
		return 1
	fi
	return 0
}

# Set the 2 MiB hugepage pool (the hugepages CLI when present).
upcie_hugepages() {
	if command -v hugepages >/dev/null; then
		if [ "$1" = 0 ]; then
			hugepages clear --size 2M >/dev/null
		else
			hugepages setup --count "$1" --size 2M >/dev/null
		fi
		return
	fi
	echo "$1" >/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
}

upcie_user_driver() {
	case "$UPCIE_CONFIG" in
	vfio) echo vfio-pci ;;
	*) echo uio_pci_generic ;;
	esac
}

upcie_noiommu() {
	[ "${UPCIE_VFIO_IOMMU:-}" = noiommu ]
}

# The results: the project's TAP helper (tests/lib/tap.sh, copied beside
# this file), numbered over the whole boot through UPCIE_RESULTS.
TAP_RESULTS=$UPCIE_RESULTS
# shellcheck source=../tests/lib/tap.sh
. "$(dirname "$UPCIE_GUEST_LIB")/tap.sh"
t_pass() { tap_ok "$1"; }
t_fail() { tap_fail "$1" "${2:-}"; }
t_skip() { tap_skip "$1" "${2:-}"; }

# upcie_blockdev <bdf> <nsid>: block device of a namespace under the kernel nvme driver, by controller
# serial number and nsid (works with and without native multipath).
# Waits up to 20 s for it to appear after a rebind.
upcie_blockdev() {
	_serial=""
	for _c in /sys/class/nvme/nvme*; do
		[ "$(basename "$(readlink "$_c/device" 2>/dev/null)")" = "$1" ] &&
			_serial=$(cat "$_c/serial")
	done
	_i=0
	while [ $_i -lt 200 ]; do
		for _b in /sys/block/nvme*n*; do
			[ -e "$_b/nsid" ] || continue
			[ "$(cat "$_b/nsid")" = "$2" ] || continue
			_s=$(cat "$_b/device/serial" 2>/dev/null)
			if [ -n "$_serial" ] && [ "$_s" = "$_serial" ] && [ -b "/dev/${_b##*/}" ]; then
				echo "/dev/${_b##*/}"
				return 0
			fi
		done
		sleep 0.1
		_i=$((_i + 1))
		if [ -z "$_serial" ]; then
			for _c in /sys/class/nvme/nvme*; do
				[ "$(basename "$(readlink "$_c/device" 2>/dev/null)")" = "$1" ] &&
					_serial=$(cat "$_c/serial")
			done
		fi
	done
	return 1
}

# --- controllers and hot-plug -----------------------------------------------

upcie_bdf() {
	eval "echo \"\${UPCIE_CTRL_$1:-}\""
}

# Uptime in 1/100 s (busybox date has no sub-second format).
upcie_csecs() {
	read -r _up _idle </proc/uptime
	echo "${_up%.*}${_up#*.}"
}

# upcie_host_request device_del|device_add <label>: a line on the console
# that the host side (run-guest) turns into the QMP command for that
# controller's QEMU device. Written to /dev/console, so it reaches the host
# even when the caller's output is captured.
upcie_host_request() {
	case " $UPCIE_TOPO_HOTPLUG " in
	*" $2 "*) ;;
	*)
		echo "upcie_host_request: controller '$2' is not hot-pluggable (those are: $UPCIE_TOPO_HOTPLUG)" >&2
		return 2
		;;
	esac
	eval "_qid=\$UPCIE_TOPO_${2}_QID"
	echo "UPCIE-HOST: $1 $_qid" >/dev/console
}

# upcie_wait_gone <bdf> <seconds>, upcie_wait_present <bdf> <seconds>
upcie_wait_gone() {
	_upcie_wait "$1" "$2" gone
}
upcie_wait_present() {
	_upcie_wait "$1" "$2" present
}
_upcie_wait() {
	_w0=$(upcie_csecs)
	_end=$((_w0 + $2 * 100))
	while :; do
		if [ -e "/sys/bus/pci/devices/$1" ]; then _st=present; else _st=gone; fi
		_now=$(upcie_csecs)
		if [ "$_st" = "$3" ]; then
			echo "$1 $3 after $(((_now - _w0) / 100)).$(((_now - _w0) % 100 / 10)) s"
			return 0
		fi
		if [ "$_now" -ge "$_end" ]; then
			echo "$1 still not $3 after $2 s" >&2
			return 1
		fi
		sleep 0.1
	done
}

# upcie_unplug <label> [seconds]: device_del through the host, then wait for
# the guest kernel to finish the removal.
upcie_unplug() {
	_bdf=$(upcie_bdf "$1")
	[ -n "$_bdf" ] || { echo "upcie_unplug: no controller '$1'" >&2; return 2; }
	upcie_host_request device_del "$1" || return 2
	upcie_wait_gone "$_bdf" "${2:-30}"
}

# upcie_replug <label> [seconds]: device_add through the host (same slot,
# so the same BDF), then wait for the device to reappear.
upcie_replug() {
	_bdf=$(upcie_bdf "$1")
	[ -n "$_bdf" ] || { echo "upcie_replug: no controller '$1'" >&2; return 2; }
	upcie_host_request device_add "$1" || return 2
	upcie_wait_present "$_bdf" "${2:-30}"
}

# Output of the command is indented under the test name.
t_run() {
	_name=$1
	shift
	echo "---- $_name: $*"
	"$@" >/tmp/t_run.out 2>&1
	_rc=$?
	sed 's/^/    /' /tmp/t_run.out
	if [ $_rc -eq 0 ]; then
		t_pass "$_name"
	else
		t_fail "$_name" "exit $_rc"
	fi
	return $_rc
}

# t_rc <name> <exit status|nonzero> <grep -E pattern or ""> <cmd...>: pass
# when cmd exits with that status (any failure for "nonzero") and its output
# (stdout and stderr) matches the pattern.
t_rc() {
	_name=$1
	_want=$2
	_pat=$3
	shift 3
	echo "---- $_name: $* (expect exit $_want${_pat:+, /$_pat/})"
	"$@" >/tmp/t_rc.out 2>&1
	_rc=$?
	sed 's/^/    /' /tmp/t_rc.out
	case "$_want" in
	nonzero) _ok=$((_rc != 0)) ;;
	*) _ok=$((_rc == _want)) ;;
	esac
	if [ "$_ok" != 1 ]; then
		t_fail "$_name" "exit $_rc, expected $_want"
		return 1
	fi
	if [ -n "$_pat" ] && ! grep -Eq -e "$_pat" /tmp/t_rc.out; then
		t_fail "$_name" "output does not match /$_pat/"
		return 1
	fi
	t_pass "$_name"
	return 0
}

# t_run_fail <name> <pattern> <cmd...>: cmd fails and its output matches.
t_run_fail() {
	_n=$1
	_p=$2
	shift 2
	t_rc "$_n" nonzero "$_p" "$@"
}

t_done() {
	exit 0
}
