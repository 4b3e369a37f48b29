#!/bin/busybox sh
# SPDX-License-Identifier: BSD-3-Clause
#
# /init of the test guest (copied into the initramfs by run-guest).
#
# Brings up a minimal system (busybox, the kernel modules run-guest copied
# in), reserves hugepages, finds the NVMe controllers of the topology
# (/upcie/qemu/topology.env, generated from topology.py), runs the guest-side
# script /upcie/guest-script.sh under a timeout, prints a summary and powers
# off. The host side (run-guest) parses these lines:
#
#   UPCIE-GUEST-BEGIN
#   ... output of the guest script: TAP test lines (ok N - ..., not ok N - ...)
#   1..N                                (the TAP plan)
#   UPCIE-GUEST-SUMMARY: <N> passed, <M> failed, <K> skipped
#   UPCIE-GUEST-RESULT: <rc>            (0: script exited 0 and nothing failed)
#
# Kernel command line parameters it reads:
#   upcie.config=uio|vfio   upcie.timeout=<s>   upcie.hugepages=<n 2 MiB pages>
#   upcie.verbose=1         (do not silence kernel messages on the console)
#   upcie.env.UPCIE_<X>=<v> (exported to the guest script)

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /run /mnt
/bin/busybox --install -s
export PATH=/upcie/bin:/sbin:/usr/sbin:/bin:/usr/bin
export LD_LIBRARY_PATH=/upcie/lib
export HOME=/root
mkdir -p /root
# The topology: UPCIE_TOPO_* (labels, serial numbers, namespaces, modules).
set -a
. /upcie/qemu/topology.env
set +a

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /dev/hugepages
mount -t hugetlbfs hugetlbfs /dev/hugepages

UPCIE_CONFIG=unknown
timeout_s=300
nr_huge=128
verbose=0
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	upcie.config=*) UPCIE_CONFIG=${arg#upcie.config=} ;;
	upcie.timeout=*) timeout_s=${arg#upcie.timeout=} ;;
	upcie.hugepages=*) nr_huge=${arg#upcie.hugepages=} ;;
	upcie.verbose=*) verbose=${arg#upcie.verbose=} ;;
	upcie.env.UPCIE_*=*)
		kv=${arg#upcie.env.}
		export "${kv%%=*}=${kv#*=}"
		;;
	esac
done
export UPCIE_CONFIG
[ "$verbose" = 1 ] || echo 1 >/proc/sys/kernel/printk

t0=$(cut -d' ' -f1 /proc/uptime)
log() { echo "guest-init: $*"; }

# Kernel modules: the CRC helpers nothing requests by name first (see
# QEMU.md), then the drivers. The kernel nvme driver binds the controllers
# at boot, as on a real machine; tests rebind them.
load_modules() {
	for m in $UPCIE_TOPO_MODULES; do
		case "$m" in
		*\?) modprobe "${m%\?}" 2>/dev/null ;; # optional: built into another on some kernels
		*) modprobe "$m" 2>/tmp/modprobe.err || log "modprobe $m failed: $(cat /tmp/modprobe.err)" ;;
		esac
	done
}

# Reserve 2 MiB hugepages for the DMA heap: the project's hugepages CLI
# when the build has it, else sysfs.
reserve_hugepages() {
	if command -v hugepages >/dev/null; then
		hugepages setup --count "$1" --size 2M >/dev/null || log "hugepages setup failed"
	else
		echo "$1" >/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
	fi
	got=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
	[ "$got" = "$1" ] || log "asked for $1 hugepages, got $got"
}

# NVMe controllers are class 0x010802. Name them by the serial numbers of
# the topology (readable once the kernel nvme driver bound them):
# UPCIE_CTRL_<label> is the BDF; fall back to bus order.
find_controllers() {
	UPCIE_CTRLS=""
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/class")" = 0x010802 ] && UPCIE_CTRLS="$UPCIE_CTRLS ${d##*/}"
	done
	UPCIE_CTRLS=${UPCIE_CTRLS# }
	n=$(echo $UPCIE_CTRLS | wc -w)
	# Wait (bounded) for the nvme driver to publish the serial numbers.
	i=0
	while [ $i -lt 100 ]; do
		c=$(ls -d /sys/class/nvme/nvme*/serial 2>/dev/null | wc -l)
		[ "$c" -ge "$n" ] && break
		sleep 0.1
		i=$((i + 1))
	done
	for l in $UPCIE_TOPO_LABELS; do
		eval "UPCIE_CTRL_$l="
	done
	for s in /sys/class/nvme/nvme*; do
		[ -e "$s/serial" ] || continue
		read -r ser <"$s/serial"
		for l in $UPCIE_TOPO_LABELS; do
			eval "[ \"\$UPCIE_TOPO_${l}_SERIAL\" = \"$ser\" ]" &&
				eval "UPCIE_CTRL_$l=$(basename "$(readlink "$s/device")")"
		done
	done
	how="by serial number"
	for l in $UPCIE_TOPO_LABELS; do
		eval "[ -n \"\$UPCIE_CTRL_$l\" ]" || how="by bus order (serial numbers not readable)"
	done
	set -- $UPCIE_CTRLS
	ids=""
	for l in $UPCIE_TOPO_LABELS; do
		[ "$how" = "by serial number" ] || eval "UPCIE_CTRL_$l=\${1:-}"
		[ $# -eq 0 ] || shift
		export "UPCIE_CTRL_$l"
		eval "ids=\"\$ids $l=\$UPCIE_CTRL_$l\""
	done
	export UPCIE_CTRLS
}

load_modules
reserve_hugepages "$nr_huge"
find_controllers

export UPCIE_GUEST_LIB=/upcie/qemu/guest-lib.sh
export UPCIE_RESULTS=/tmp/upcie-results
: >"$UPCIE_RESULTS"

t1=$(cut -d' ' -f1 /proc/uptime)
log "config=$UPCIE_CONFIG kernel=$(uname -r) ready at ${t1}s (setup $(echo "$t1 $t0" | awk '{printf "%.1f", $1-$2}')s)"
log "controllers: $UPCIE_CTRLS (${ids# }, $how)"
log "hugepages: $(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages) x 2 MiB$(command -v hugepages >/dev/null && echo ' (hugepages CLI)'); binding with $(command -v devbind >/dev/null && [ "${UPCIE_GUEST_RAW_BIND:-0}" != 1 ] && echo devbind || echo 'raw sysfs')"

echo "UPCIE-GUEST-BEGIN"
cd /tmp
timeout -s KILL "$timeout_s" sh /upcie/guest-script.sh
rc=$?
sync
if [ $rc -eq 137 ]; then
	TAP_RESULTS=$UPCIE_RESULTS
	. /upcie/qemu/tap.sh
	tap_fail "the guest script finished within ${timeout_s}s"
fi
passed=$(grep -c '^PASS' "$UPCIE_RESULTS")
failed=$(grep -c '^FAIL' "$UPCIE_RESULTS")
skipped=$(grep -c '^SKIP' "$UPCIE_RESULTS")
if [ $rc -ne 0 ] && [ "$failed" -eq 0 ]; then
	echo "FAIL guest-script-exit" >>"$UPCIE_RESULTS"
	echo "not ok $(wc -l <"$UPCIE_RESULTS") - the guest script exited with 0 (it exited with $rc)"
	failed=1
fi
echo "1..$(wc -l <"$UPCIE_RESULTS")"
[ "$failed" -eq 0 ] || { [ $rc -ne 0 ] || rc=1; }
t2=$(cut -d' ' -f1 /proc/uptime)
echo "UPCIE-GUEST-SUMMARY: $passed passed, $failed failed, $skipped skipped (tests ran $(echo "$t2 $t1" | awk '{printf "%.1f", $1-$2}')s)"
echo "UPCIE-GUEST-RESULT: $rc"
sync
poweroff -f
