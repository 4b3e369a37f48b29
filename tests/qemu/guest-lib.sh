# SPDX-License-Identifier: BSD-3-Clause
#
# Helpers for guest-side test scripts (busybox sh). Source it with
#   . "$UPCIE_GUEST_LIB"
#
# Environment set by the guest /init:
#   UPCIE_CONFIG    uio | vfio
#   UPCIE_CTRL_A    BDF of controller A (2 namespaces: 512 B and 4 KiB LBAs)
#   UPCIE_CTRL_B    BDF of controller B (small MDTS, 2 I/O queue pairs)
#   UPCIE_CTRL_C, UPCIE_CTRL_D  BDFs of controllers C and D, behind one PCI
#                   bridge (one IOMMU group in the vfio configuration)
#   UPCIE_CTRLS     all NVMe controllers, bus order
#   UPCIE_RESULTS   file the PASS/FAIL/SKIP lines go to (counted by /init)
#
# Functions:
#   upcie_bind <bdf> <driver>   bind a PCI function to a driver ("" unbinds)
#   upcie_hugepages <n>         set the 2 MiB hugepage pool to n pages
#   upcie_driver <bdf>          print the driver it is bound to ("" if none)
#   upcie_user_driver           uio_pci_generic or vfio-pci, for UPCIE_CONFIG
#   t_pass/t_fail/t_skip <name> [why]  record a result
#   t_run <name> <cmd...>       run cmd; pass when it exits 0
#   t_run_fail <name> <pattern> <cmd...>  pass when cmd exits non-zero and
#                               its output matches the grep -E pattern
#   t_done                      exit 0 (results decide the verdict)

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

t_pass() {
	echo "PASS $1" >>"$UPCIE_RESULTS"
	echo "PASS: $1"
}
t_fail() {
	echo "FAIL $1" >>"$UPCIE_RESULTS"
	echo "FAIL: $1${2:+ ($2)}"
}
t_skip() {
	echo "SKIP $1" >>"$UPCIE_RESULTS"
	echo "SKIP: $1${2:+ ($2)}"
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
