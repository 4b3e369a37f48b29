# SPDX-License-Identifier: BSD-3-Clause
#
# Integration tests on QEMU's NVMe controllers, run in every x86
# configuration (uio: no IOMMU; vfio: intel-iommu; on the 6.12 kernel,
# iommufd: intel-iommu, and noiommu: vfio's no-IOMMU mode, where the
# library opts in through UPCIE_VFIO_IOMMU=noiommu). The topology is topology.py's table
# (UPCIE_TOPO_* here; qemu/README.md shows it).
#
#  0. guest-tools.sh: the devbind and hugepages CLIs (see there).
#  1. Refusals on the real path: an address that does not exist, a
#     controller still bound to nvme.
#  2. Cross-boot check: what the kernel's nvme driver wrote (dd) at the end
#     of the previous boot, read back through libupcie on this boot's
#     backend (skipped when no previous boot left a marker).
#  3. upcie-identify on both controllers; the pci layer probe.
#  4. More refusals: non-root open (EACCES and advice); uio and vfio's
#     no-IOMMU mode without hugepages (vfio: works without them); vfio
#     config: uio refuses a device behind the IOMMU; no-IOMMU: the library
#     refuses the no-IOMMU group without the opt-in, saying it is unsafe.
#  5. The driver's CUnit suites (every test binary that honours
#     UPCIE_TEST_DEVICE) against each controller.
#  5b. Debian's fio with the libupcie engine on A and B (tests/fio/fio-sim.sh;
#     skipped when fio or the engine was not staged).
#  5c. guest-failure.sh: kill -9 of upcie-perf (bus mastering off, the
#     controller usable again), a second owner refused with EBUSY, unbind
#     and hot-unplug (device_del) during upcie-perf: it exits with a
#     device-gone error, the kernel gets the device.
#  5d. guest-reset.sh: upcie_nvme_ctrl_reset() every 200 ms for 20 s on A
#     while two threads do verified reads and writes (upcie-reset-load):
#     host-aborted commands retried from their callback all succeed, 0
#     mismatches, nothing outstanding after, poll errors only during a
#     reset; the kernel logs no fault, the controller still answers.
#  5e. guest-iommufd.sh, on a kernel with /dev/iommu (the 'iommufd'
#     configuration): iommufd taken by itself, type1 on request, verified
#     I/O and QD 1 / QD 32 figures through each.
#  5f. guest-md.sh: metadata and protection information on controller F
#     (separate and extended metadata, PI types 1-3), with the kernel's
#     own integrity checks reading what the library wrote.
#  5g. guest-reg.sh: I/O on registered memory through uio and vfio
#     (upcie-reg-io), data verified; uio refuses ordinary and malloc
#     memory, saying why; unregister refused while a read is in flight.
#  5h. guest-ctx.sh: A and B in one DMA context, one heap (dma_ctx suite)
#  5i. guest-preload.sh: libupcie-preload.so under GNU dd and Debian's fio
#     (libaio and psync with verify; quick: 4 MiB) on A; the kernel reads
#     back what dd wrote through it.
#  6. libupcie writes a pattern, the controllers go back to nvme, dd reads
#     it: zero mismatching bytes.
#  7. The kernel writes a fresh pattern and a marker for the next boot.
#  8. vfio config: C and D share an IOMMU group (one PCI bridge); C on
#     vfio-pci with D on nvme is refused as not viable, naming D (nvme);
#     with D off nvme C opens. uio config: skipped (no IOMMU groups).
#  9. Hot-unplug: the host removes the hot-pluggable controller (E, behind
#     a pcie-root-port) while the kernel's nvme driver drives it; it leaves
#     /sys/bus/pci/devices, its block device goes, the guest still does
#     I/O on A; the host adds it back and nvme takes it again.
#
# UPCIE_GUEST_SCOPE=interface (the 6.12 guests under scripts/test: see
# UPCIE_GUEST_612_SCOPE in qemu/run-guest) keeps what goes through vfio's
# IOMMU interface or the kernel (identify, the driver suites on A, fio,
# failure handling and hot-unplug, registered memory, the cross-check,
# iommufd) and leaves out what the Debian 6.1 guests already check the same
# way: the CLI checks (guest-tools.sh runs only its no-IOMMU part), the
# suites on B, resets under load and metadata.
#
# Regions per namespace, counted from its end (N blocks = 1 MiB):
#   K = [nsze - N, nsze)        kernel-written, checked on the next boot
#   M = nsze - N - 1            marker block: "UPCIE-XCHECK <seed> <config>"
#   W = [nsze - 2N - 1, M)      libupcie-written, checked by dd this boot
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
A=$UPCIE_CTRL_A
B=$UPCIE_CTRL_B
REGION=1048576
SUITE_TIMEOUT=${UPCIE_SUITE_TIMEOUT:-150}
NAMESPACES=$UPCIE_TOPO_XCHECK_NS

bdf_of() {
	upcie_bdf "$1"
}

# Record the geometry of each namespace while the kernel owns it:
# geo_<ctrl>_<nsid>="lbs nsze N W M K"
read_geometry() {
	for _ns in $NAMESPACES; do
		_c=${_ns%:*}
		_n=${_ns#*:}
		_dev=$(upcie_blockdev "$(bdf_of "$_c")" "$_n") || {
			echo "no block device for controller $_c nsid $_n"
			return 1
		}
		_b=${_dev#/dev/}
		_lbs=$(cat "/sys/block/$_b/queue/logical_block_size")
		_nsze=$(($(cat "/sys/block/$_b/size") * 512 / _lbs))
		_N=$((REGION / _lbs))
		_M=$((_nsze - _N - 1))
		eval "geo_${_c}_${_n}=\"$_lbs $_nsze $_N $((_M - _N)) $_M $((_nsze - _N))\""
		echo "ns $_c:$_n $_dev: lba $_lbs B, $_nsze blocks; W=$((_M - _N)) M=$_M K=$((_nsze - _N)) (+$_N)"
	done
}

geo() { # geo <ctrl> <nsid> -> sets lbs nsze N W M K
	eval "set -- \$geo_$1_$2"
	lbs=$1 nsze=$2 N=$3 W=$4 M=$5 K=$6
}

# compare <name> <got> <expected>: zero mismatching bytes, same size.
compare() {
	_gs=$(wc -c <"$2")
	_es=$(wc -c <"$3")
	if [ "$_gs" != "$_es" ]; then
		t_fail "$1" "got $_gs bytes, expected $_es"
		return 1
	fi
	_miss=$(cmp -l "$2" "$3" 2>/dev/null | wc -l)
	if [ "$_miss" -ne 0 ]; then
		t_fail "$1" "$_miss of $_es bytes differ; first: $(cmp "$2" "$3" 2>&1 | head -n1)"
		return 1
	fi
	echo "    $_es bytes compared, 0 mismatches"
	t_pass "$1"
}

# The controllers of the cross-check namespaces (A and B).
XCTRLS=$(for _ns in $NAMESPACES; do echo "${_ns%:*}"; done | uniq | tr '\n' ' ')

bind_all() {
	for _x in $(for _c in $XCTRLS; do bdf_of "$_c"; done); do
		upcie_bind "$_x" "$1" || return 1
	done
}

# upcie-identify with its key lines only (the full output is long).
identify_brief() {
	upcie-identify "$1" >/tmp/id.out 2>&1
	_rc=$?
	grep -E "backend|sn:|mdts:|max_xfer_bytes|io_sq_granted|shadow|nsid:|lba_size: [0-9]+  #|error" /tmp/id.out ||
		cat /tmp/id.out
	return $_rc
}

new_seed() {
	echo $(((RANDOM << 16) ^ (RANDOM << 1) ^ $(date +%s)))
}

# The devbind and hugepages CLIs first (guest-tools.sh): it leaves both
# controllers on nvme, and the driver suites below overwrite its ext2 at the
# start of B's namespace.
# UPCIE_GUEST_QUICK=1 (scripts/test's default for the Arm guests) leaves out
# these CLI checks and runs the driver suites on A only: what is left proves
# the build, the page sizes and the device plumbing on another machine.
if [ "${UPCIE_GUEST_QUICK:-0}" = 1 ]; then
	t_skip "guest-tools.sh (the CLIs)" "UPCIE_GUEST_QUICK=1"
else
	timeout 180 sh "${UPCIE_GUEST_LIB%/*}/guest-tools.sh" ||
		t_fail "guest-tools.sh" "exit $? (timed out after 180 s?)"
fi
scope_interface() {
	[ "${UPCIE_GUEST_SCOPE:-full}" = interface ]
}

echo "== configuration $UPCIE_CONFIG: A=$A B=$B, user-space driver $drv"
read_geometry || t_fail "namespace geometry" "block devices missing under nvme"

# --- 1. refusals while bound to nvme ----------------------------------------
t_run_fail "open: address that does not exist" "no such PCI device" \
	upcie-identify 0000:3f:1f.7
t_run_fail "open: controller bound to nvme (devbind advice)" "devbind" upcie-identify "$A"

# --- bind for user space ------------------------------------------------------
t_run "bind A and B to $drv" bind_all "$drv" || {
	t_fail "user-space tests" "controllers could not be bound to $drv"
	t_done
}

# --- 2. cross-boot: kernel (previous boot) -> libupcie -----------------------
for ns in $NAMESPACES; do
	c=${ns%:*}
	n=${ns#*:}
	geo "$c" "$n"
	name="previous boot's kernel write read by libupcie/$UPCIE_CONFIG, $c:$n ($lbs B)"
	if ! upcie-xcheck read "$(bdf_of "$c")" "$n" "$M" 1 >/tmp/marker 2>/tmp/err; then
		cat /tmp/err
		t_fail "$name" "marker read failed"
		continue
	fi
	set -- $(tr -d '\000' </tmp/marker | head -n1)
	if [ "${1:-}" != UPCIE-XCHECK ]; then
		t_skip "$name" "no marker: no earlier boot on these images"
		continue
	fi
	echo "---- $name: seed $2, written under the $3 configuration"
	upcie-xcheck pattern "$2" "$REGION" >/tmp/expect
	if upcie-xcheck read "$(bdf_of "$c")" "$n" "$K" "$N" >/tmp/got 2>/tmp/err; then
		sed 's/^/    /' /tmp/err
		compare "$name" /tmp/got /tmp/expect
	else
		sed 's/^/    /' /tmp/err
		t_fail "$name" "libupcie read failed"
	fi
done

# --- 3. identify and the pci layer --------------------------------------------
t_run "upcie-identify A (2 namespaces)" identify_brief "$A"
t_run "upcie-identify B (mdts=2)" identify_brief "$B"
t_run "pci layer on A: BAR0, DMA, hand-made Identify" upcie-pci-probe --identify "$A"

# --- 4. refusals with the device bound --------------------------------------
t_run_fail "non-root open: EACCES with advice" "errno 13 .*run as root" \
	su -p -s /bin/sh nobody -c "exec upcie-pci-probe $A"
t_run_fail "non-root upcie-identify: advice" "run as root" \
	su -p -s /bin/sh nobody -c "exec upcie-identify $A"
saved_hp=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
upcie_hugepages 0
if [ "$UPCIE_CONFIG" = uio ]; then
	t_run_fail "uio without hugepages: refused with advice" "[Hh]uge" upcie-identify "$A"
elif upcie_noiommu; then
	t_run_fail "vfio no-IOMMU without hugepages: refused with advice" "[Hh]uge" upcie-identify "$A"
else
	t_run "vfio without hugepages: works on ordinary pages" identify_brief "$A"
fi
upcie_hugepages "$saved_hp"
if upcie_noiommu; then
	# The opt-in: without it the library refuses the no-IOMMU group and
	# says why; with it (this configuration's UPCIE_VFIO_IOMMU) it takes it.
	t_run_fail "vfio no-IOMMU group without the opt-in: refused, unsafe, how to opt in" \
		"unsafe without an IOMMU.*UPCIE_VFIO_IOMMU=noiommu" env UPCIE_VFIO_IOMMU= upcie-identify "$A"
	t_run "vfio no-IOMMU with the opt-in: upcie-identify says noiommu" \
		sh -c "upcie-identify $A | grep -E 'vfio_iommu: noiommu'"
	t_run_fail "vfio no-IOMMU forced on type1: refused" "opt in" \
		env UPCIE_VFIO_IOMMU=type1 upcie-identify "$A"
fi
if [ "$UPCIE_CONFIG" = vfio ] && ! upcie_noiommu; then
	if upcie_bind "$B" uio_pci_generic 2>/tmp/err; then
		t_run_fail "uio behind an active IOMMU: refused with advice" "iommu=pt" \
			upcie-identify "$B"
	else
		t_skip "uio behind an active IOMMU" "cannot bind uio_pci_generic: $(cat /tmp/err)"
	fi
	t_run "bind B back to vfio-pci" upcie_bind "$B" vfio-pci
	# A user who may open the group but lacks locked memory: the map
	# fails and says how many bytes it needs.
	g=$(basename "$(readlink "/sys/bus/pci/devices/$A/iommu_group")")
	# With iommufd (the 6.12 kernel) the library opens the device's cdev
	# and /dev/iommu instead of the group node: nobody gets those too.
	nodes=/dev/vfio/$g
	cdev=$(ls "/sys/bus/pci/devices/$A/vfio-dev" 2>/dev/null | head -n 1)
	[ -n "$cdev" ] && [ -e /dev/iommu ] && nodes="$nodes /dev/vfio/devices/$cdev /dev/iommu"
	chown 65534 $nodes
	t_run_fail "vfio DMA map over RLIMIT_MEMLOCK: bytes needed" "RLIMIT_MEMLOCK is 65536 bytes.*needs 2097152" \
		su -p -s /bin/sh nobody -c "ulimit -l 64; exec upcie-pci-probe $A"
	t_run "vfio as non-root with group access and 8 MiB memlock: Identify" \
		su -p -s /bin/sh nobody -c "ulimit -l 8192; exec upcie-pci-probe --identify $A"
	chown 0 $nodes
fi

# --- 5. the driver's CUnit suites against each controller --------------------
for t in /upcie/tests/unit/test_*; do
	[ -x "$t" ] || continue
	grep -q UPCIE_TEST_DEVICE "$t" 2>/dev/null || continue
	suite_ctrls=$XCTRLS
	{ [ "${UPCIE_GUEST_QUICK:-0}" = 1 ] || scope_interface; } && suite_ctrls=${XCTRLS%% *}
	for c in $suite_ctrls; do
		name="suite ${t##*/test_} on $c"
		echo "---- $name"
		UPCIE_TEST_DEVICE=$(bdf_of "$c") timeout "$SUITE_TIMEOUT" "$t" >/tmp/suite.out 2>&1
		rc=$?
		# Failed tests with their assertion lines, skips, and the counts.
		awk '/Test: .*FAILED/ || /^ +[0-9]+\. / || /SKIP/ || $1 == "tests"' /tmp/suite.out |
			sed 's/^ */    /'
		counts=$(awk '$1 == "tests" { print $3 " ran, " $5 " failed" }' /tmp/suite.out)
		if [ $rc -eq 0 ]; then
			t_pass "$name (${counts:-?})"
		else
			if [ -z "$counts" ]; then
				[ $rc -eq 124 ] || [ $rc -eq 137 ] || [ $rc -eq 143 ] &&
					counts="timed out after ${SUITE_TIMEOUT}s"
				tail -n 20 /tmp/suite.out | sed 's/^/    | /'
			fi
			t_fail "$name" "exit $rc, ${counts:-no summary}"
		fi
	done
done

# --- 5b. fio with the libupcie engine -----------------------------------------
# Debian's fio binary and the build's engine (staged when both exist) run
# tests/fio/fio-sim.sh against the controllers: on A everything but the
# queue-count check (A grants 64 queue pairs), on B (2 queue pairs, 16 KiB
# MDTS) the checks that hit its limits: jobs beyond the queues, bs split
# into 64 commands, two jobs, verify. Each check is one TAP line.
fio_on() {
	_c=$1
	_dev=$(bdf_of "$_c" | tr : .)
	echo "---- fio engine on $_c ($_dev): queues '${2}', 4 KiB nsid '${3}'${4:+, only $4}"
	DEV2=${5:-} FIO_ONLY=$4 UPCIE_TAP_SH=/upcie/qemu/tap.sh TAP_RESULTS= timeout 600 \
		sh /upcie/fio/fio-sim.sh /upcie/fio/libupcie-fio.so "$_dev" "$2" "$3" >/tmp/fio.out 2>&1
	_rc=$?
	grep -v '^ok \|^not ok ' /tmp/fio.out | sed 's/^/    /'
	# Its TAP, renamed into this boot's (no pipe: t_* count in this shell).
	sed -n 's/^ok [0-9]* - //p' /tmp/fio.out >/tmp/fio.pass
	sed -n 's/^not ok [0-9]* - \([^#]*\) # \(.*\)/\1\t\2/p' /tmp/fio.out >/tmp/fio.fail
	while read -r _n; do
		t_pass "fio/$UPCIE_CONFIG on $_c: $_n"
	done </tmp/fio.pass
	while IFS="$(printf '\t')" read -r _n _why; do
		t_fail "fio/$UPCIE_CONFIG on $_c: $_n" "$(echo "$_why" | cut -c1-200)"
	done </tmp/fio.fail
	grep -q '^1\.\.[0-9]' /tmp/fio.out || t_fail "fio/$UPCIE_CONFIG on $_c" "exit $_rc, no plan"
}
if [ -x /upcie/bin/fio ] && [ -f /upcie/fio/libupcie-fio.so ]; then
	# B beside A for the checks that span two controllers (one DMA context,
	# one heap: both on this boot's driver).
	fio_on A "" 2 "" "$(bdf_of B | tr : .)"
	fio_on B 2 "" "randwrite-verify numjobs2 big-bs toomany"
else
	t_skip "fio with the libupcie engine" "fio or the engine was not staged (see the host log)"
fi

# --- 5c. failure handling: kill -9, a second owner, unbind, hot-unplug --------
# Left out of the quick (Arm, emulated) run: its upcie-perf runs and the
# hot-unplug take minutes there; UPCIE_ARM_FULL=1 runs them.
if [ "${UPCIE_GUEST_QUICK:-0}" = 1 ]; then
	t_skip "guest-failure.sh (kill -9, second owner, unbind, hot-unplug)" "UPCIE_GUEST_QUICK=1"
else
	timeout 240 sh "${UPCIE_GUEST_LIB%/*}/guest-failure.sh" ||
		t_fail "guest-failure.sh" "exit $? (timed out after 240 s?)"
fi

# --- 5d. controller resets under verified load (guest-reset.sh) -------------
# About 25 s; left out of the quick (Arm, emulated) run like 5c.
# UPCIE_RESET_LOAD=0 leaves it out. Its own bound kills the load
# (duration + 90 s) and identify (60 s); this one only backs them up.
if [ "${UPCIE_GUEST_QUICK:-0}" = 1 ] || scope_interface; then
	t_skip "guest-reset.sh (resets under verified load)" \
		"UPCIE_GUEST_QUICK=1 or UPCIE_GUEST_SCOPE=interface"
else
	reset_bound=$((${UPCIE_RESET_DURATION:-20} + 180))
	timeout "$reset_bound" sh "${UPCIE_GUEST_LIB%/*}/guest-reset.sh" ||
		t_fail "guest-reset.sh" "exit $? (timed out after $reset_bound s?)"
	# It leaves A on $drv, as section 6 wants it.
fi

# --- 5e. vfio through iommufd and the device cdev (guest-iommufd.sh) ---------
if [ -e /dev/iommu ] && ! upcie_noiommu; then
	UPCIE_CTX_SUITE=0 timeout 300 sh "${UPCIE_GUEST_LIB%/*}/guest-iommufd.sh" ||
		t_fail "guest-iommufd.sh" "exit $? (timed out after 300 s?)"
	upcie_bind "$UPCIE_CTRL_A" "$drv" # as section 6 wants it
fi

# --- 5f. metadata and protection information (controller F) ------------------
if scope_interface; then
	t_skip "guest-md.sh (metadata and PI)" "UPCIE_GUEST_SCOPE=interface"
else
	timeout 180 sh "${UPCIE_GUEST_LIB%/*}/guest-md.sh" ||
		t_fail "guest-md.sh" "exit $? (timed out after 180 s?)"
fi
# --- 5g. registered memory (guest-reg.sh) -------------------------------------
# upcie-reg-io on A: hugetlb memory on both configurations, ordinary and
# malloc memory on vfio; on uio those two are refused, saying why. The
# dma_reg suite ran in section 5 already. A stays on $drv.
UPCIE_REG_SUITE=0 timeout 400 sh "${UPCIE_GUEST_LIB%/*}/guest-reg.sh" ||
	t_fail "guest-reg.sh" "exit $? (timed out after 400 s?)"

# --- 5h. one DMA context for A and B (guest-ctx.sh) ---------------------------
# The dma_ctx suite on A and B opened into one context: a buffer written
# through one is read through the other; type1 (and iommufd when the
# kernel has it) or uio. A stays on $drv.
timeout 400 sh "${UPCIE_GUEST_LIB%/*}/guest-ctx.sh" ||
	t_fail "guest-ctx.sh" "exit $? (timed out after 400 s?)"

# --- 5i. unmodified programs through libupcie-preload.so (guest-preload.sh) ---
UPCIE_PRELOAD_QUICK=1 timeout 300 sh "${UPCIE_GUEST_LIB%/*}/guest-preload.sh" ||
	t_fail "guest-preload.sh" "exit $? (timed out after 300 s?)"

# --- 6. libupcie writes, the kernel reads ------------------------------------
for ns in $NAMESPACES; do
	c=${ns%:*}
	n=${ns#*:}
	geo "$c" "$n"
	seed=$(new_seed)
	upcie-xcheck pattern "$seed" "$REGION" >"/tmp/w_${c}_${n}"
	t_run "libupcie/$UPCIE_CONFIG writes 1 MiB to $c:$n ($lbs B LBAs)" \
		sh -c "upcie-xcheck write $(bdf_of "$c") $n $W $N </tmp/w_${c}_${n}"
done

t_run "rebind A and B to nvme" bind_all nvme
for ns in $NAMESPACES; do
	c=${ns%:*}
	n=${ns#*:}
	geo "$c" "$n"
	name="kernel reads what libupcie/$UPCIE_CONFIG wrote, $c:$n ($lbs B)"
	if ! dev=$(upcie_blockdev "$(bdf_of "$c")" "$n"); then
		t_fail "$name" "no block device after rebinding to nvme"
		continue
	fi
	echo "---- $name: dd if=$dev bs=$lbs skip=$W count=$N"
	dd if="$dev" of=/tmp/got bs="$lbs" skip="$W" count="$N" 2>/dev/null
	compare "$name" /tmp/got "/tmp/w_${c}_${n}"
done

# --- 7. the kernel writes for the next boot -----------------------------------
for ns in $NAMESPACES; do
	c=${ns%:*}
	n=${ns#*:}
	geo "$c" "$n"
	dev=$(upcie_blockdev "$(bdf_of "$c")" "$n") || continue
	seed=$(new_seed)
	upcie-xcheck pattern "$seed" "$REGION" >/tmp/k
	printf 'UPCIE-XCHECK %s %s\n' "$seed" "$UPCIE_CONFIG" >/tmp/m
	t_run "kernel writes the next boot's pattern to $c:$n (seed $seed)" sh -c \
		"dd if=/tmp/k of=$dev bs=$lbs seek=$K count=$N conv=fsync 2>/dev/null &&
		 dd if=/tmp/m of=$dev bs=$lbs seek=$M count=1 conv=sync,fsync 2>/dev/null"
done
sync

# --- 8. vfio: an IOMMU group that is not viable ------------------------------
C=$UPCIE_CTRL_C
D=$UPCIE_CTRL_D
group_of() {
	basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group" 2>/dev/null)" 2>/dev/null
}

# C and D in one group; devbind list names each as the other's member.
shared_group() {
	echo "C $C: group $gc; D $D: group $gd; members: $(ls "/sys/kernel/iommu_groups/$gc/devices" 2>/dev/null | tr '\n' ' ')"
	[ -n "$gc" ] && [ "$gc" = "$gd" ] || return 1
	command -v devbind >/dev/null || return 0
	devbind list | grep -F "IOMMU group $gc also holds" >/tmp/members
	cat /tmp/members
	grep -qxF "$C: IOMMU group $gc also holds $D (nvme)" /tmp/members
}

# C to vfio-pci with D still on nvme: devbind warns (naming D) but binds.
bind_c_warns() {
	devbind bind vfio-pci "$C" >/tmp/bindC.out 2>&1
	_rc=$?
	cat /tmp/bindC.out
	[ $_rc -eq 0 ] || { echo "exit $_rc"; return 1; }
	[ "$(upcie_driver "$C")" = vfio-pci ] || { echo "C is on '$(upcie_driver "$C")'"; return 1; }
	[ "$(upcie_driver "$D")" = nvme ] || { echo "D is on '$(upcie_driver "$D")'"; return 1; }
	grep -qF "IOMMU group $gc also holds $D, bound to nvme; the group is not viable" /tmp/bindC.out ||
		{ echo "no warning naming $D on nvme"; return 1; }
}

cd_on_nvme() {
	upcie_bind "$D" nvme && upcie_bind "$C" nvme || return 1
	upcie_blockdev "$C" 1 && upcie_blockdev "$D" 1
}

if [ "$UPCIE_CONFIG" != vfio ] || upcie_noiommu; then
	t_skip "vfio: C on vfio-pci, D on nvme: group not viable" "no IOMMU groups in the $UPCIE_CONFIG${UPCIE_VFIO_IOMMU:+ ($UPCIE_VFIO_IOMMU)} configuration"
elif [ -z "$C" ] || [ -z "$D" ]; then
	t_fail "vfio: C on vfio-pci, D on nvme: group not viable" "controllers C and D not found"
else
	gc=$(group_of "$C")
	gd=$(group_of "$D")
	if t_run "C and D (behind one PCI bridge) share IOMMU group ${gc:-?}" shared_group; then
		if command -v devbind >/dev/null && [ "${UPCIE_GUEST_RAW_BIND:-0}" != 1 ]; then
			t_run "devbind bind vfio-pci C: binds, warns that D on nvme makes the group not viable" \
				bind_c_warns
		else
			t_run "bind C to vfio-pci (D stays on nvme)" upcie_bind "$C" vfio-pci
		fi
		t_run_fail "upcie-identify C with D on nvme: group not viable, names D (nvme)" \
			"IOMMU group $gc is not viable.* $D \(nvme\)" upcie-identify "$C"
		t_run "unbind D: no driver" upcie_bind "$D" ""
		t_run "upcie-identify C with D on no driver: group viable" identify_brief "$C"
		t_run "bind D to vfio-pci too" upcie_bind "$D" vfio-pci
		t_run "upcie-identify D with C on vfio-pci: group viable" identify_brief "$D"
		t_run "C and D back on nvme with their block devices" cd_on_nvme
	fi
fi
# --- 9. hot-unplug (guest-hotplug.sh) ---------------------------------------
timeout 180 sh "${UPCIE_GUEST_LIB%/*}/guest-hotplug.sh" ||
	t_fail "guest-hotplug.sh" "exit $? (timed out after 180 s?)"
t_done
