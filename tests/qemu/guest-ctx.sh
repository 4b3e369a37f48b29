# SPDX-License-Identifier: BSD-3-Clause
#
# One DMA context for two controllers (upcie_dma_ctx_create) through this
# boot's user-space driver: A and B are opened into one context and share
# one heap. Called by guest-tests.sh and guest-iommufd.sh; runs alone too:
#   qemu/run-guest BUILD uio|vfio|iommufd|noiommu tests/qemu/guest-ctx.sh
#
# The dma_ctx CUnit suite on A and B (UPCIE_TEST_DEVICES): a buffer written
# through A is read back through B and the other way round, on heap memory
# and on registered memory; a heap of another context is refused; the
# heap is not destroyed under an open controller; closing A while a read
# on B is in flight leaves B's buffer mapped (the read completes with its
# data); A opened again later reaches the heap made before. Then C and D
# (one IOMMU group) in one context, and fio over A and the hot-pluggable
# controller while the host removes the latter. Through
#   uio      physical addresses (nothing shared but the rules)
#   vfio     one type1 container holding both IOMMU groups
#   iommufd  one IOAS both cdevs are attached to (when /dev/iommu exists),
#            and type1 in the same boot
#   noiommu  vfio's no-IOMMU mode: physical addresses as under uio, each
#            device in its own no-IOMMU container
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
	# The mixed-backend, named-model, thread and bookkeeping tests need the
	# sim: they skip here.
	skips=$(grep SKIP /tmp/ctx-suite.out | grep -v "the sim stands for the other backend" |
		grep -v "the sim only" | grep -vc "the sim's named models")
	if [ $_rc -eq 0 ] && [ "$skips" -eq 0 ]; then
		t_pass "$name: dma_ctx suite through $_label, A and B in one context"
	else
		t_fail "$name: dma_ctx suite through $_label" "exit $_rc, $skips unexpected skips"
	fi
}

if upcie_noiommu; then
	# vfio's no-IOMMU mode: a physical context, hugepages, as under uio.
	run_suite noiommu UPCIE_VFIO_IOMMU=noiommu
elif [ "$drv" = vfio-pci ] && [ -e /dev/iommu ]; then
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

# Hot-unplug of one controller of a context while another runs: fio (the
# engine puts every controller of the process into one DMA context, one
# heap) with a verified write job on A and a read job on the hot-pluggable
# controller; the host removes the latter (device_del). Its job fails
# (device gone) and lets go of it, the unplug completes, and A's job goes
# on to its end with the same heap: verify clean, no error. (30 s: the
# removal takes pciehp's 5 s and more on a loaded host; a shorter run may
# end before it.)
hotplug=${UPCIE_TOPO_HOTPLUG%% *}
hpb=$(upcie_bdf "$hotplug" 2>/dev/null)
if [ ! -x /upcie/bin/fio ] || [ ! -f /upcie/fio/libupcie-fio.so ]; then
	t_skip "$name: hot-unplug of one controller of a context" "fio or the engine was not staged"
elif [ -z "$hotplug" ] || [ -z "$hpb" ]; then
	t_skip "$name: hot-unplug of one controller of a context" "no hot-pluggable controller"
elif [ -e /dev/iommu ]; then
	# The iommufd configuration's kernel (scripts/guest-kernel): its
	# device_del did not remove the controller within 60 s (pciehp there is
	# not part of any suite yet).
	t_skip "$name: hot-unplug of one controller of a context" \
		"run on the uio and vfio configurations; this guest kernel's hot-unplug ($(uname -r)) is not exercised"
elif t_run "$name: bind $hotplug to $drv" upcie_bind "$hpb" "$drv"; then
	fa=$(echo "$A" | tr : .)
	fe=$(echo "$hpb" | tr : .)
	echo "---- $name: fio on A ($fa, verified writes) and $hotplug ($fe, reads); the host removes $hotplug"
	/upcie/bin/fio --thread --ioengine=external:/upcie/fio/libupcie-fio.so --output-format=json \
		--output=/tmp/ctx-fio.json --time_based --runtime=30 --bs=4k --iodepth=8 \
		--name=a --filename="$fa" --rw=randwrite --size=4m --verify=crc32c --verify_backlog=32 \
		--name=e --filename="$fe" --rw=randread --size=4m >/tmp/ctx-fio.out 2>&1 &
	fio_pid=$!
	# Remove it only once fio has it open (its group or uio file among
	# fio's fds), and I/O runs: not before the job started.
	# (type1: the group file; iommufd: the device cdev; uio: /dev/uioN)
	if [ -e "/sys/bus/pci/devices/$hpb/iommu_group" ]; then
		efile=/dev/vfio/$(basename "$(readlink "/sys/bus/pci/devices/$hpb/iommu_group")")
		# no-IOMMU mode names the group file noiommu-N
		upcie_noiommu && efile=/dev/vfio/noiommu-${efile##*/}
		ecdev=/dev/vfio/devices/$(ls "/sys/bus/pci/devices/$hpb/vfio-dev" 2>/dev/null | head -n 1)
	else
		efile=/dev/$(ls "/sys/bus/pci/devices/$hpb/uio" 2>/dev/null | head -n 1)
		ecdev=$efile
	fi
	opened=no
	i=0
	while [ $i -lt 120 ] && kill -0 "$fio_pid" 2>/dev/null; do
		for f in /proc/"$fio_pid"/fd/*; do
			l=$(readlink "$f" 2>/dev/null)
			[ "$l" = "$efile" ] || [ "$l" = "$ecdev" ] && opened=yes
		done
		[ "$opened" = yes ] && break
		sleep 0.5
		i=$((i + 1))
	done
	sleep 2
	echo "    fio has $efile or $ecdev open: $opened; the host removes $hotplug"
	upcie_host_request device_del "$hotplug"
	gone=no
	upcie_wait_gone "$hpb" 60 >/dev/null && gone=yes
	wait "$fio_pid"
	frc=$?
	sed 's/^/    /' /tmp/ctx-fio.out | head -n 20
	# Per job: its error and the writes/reads it did (the JSON's first
	# "error" of each job; total_ios: reads first, then writes).
	res=$(awk '
		/"jobname" :/ { n++; k = 0; seen = 0 }
		/"error" :/ && !seen { v = $3; sub(/,/, "", v); e[n] = v + 0; seen = 1 }
		/"total_ios" :/ { v = $3; sub(/,/, "", v); k++
			if (k == 1) r[n] = v + 0; else if (k == 2) w[n] = v + 0 }
		END { printf "%d %d %d %d %d", n, e[1], w[1], e[2], r[2] }' /tmp/ctx-fio.json 2>/dev/null)
	set -- $res
	echo "    fio exit $frc; jobs ${1:-?}: a err=${2:-?} writes=${3:-?}, e err=${4:-?} reads=${5:-?}; $hotplug left the bus: $gone"
	if [ "${1:-0}" = 2 ] && [ "${2:-1}" = 0 ] && [ "${3:-0}" -gt 0 ] && [ "${4:-0}" != 0 ] &&
		[ "$gone" = yes ] && [ "$opened" = yes ] &&
		! grep -q "no such PCI device" /tmp/ctx-fio.out; then
		t_pass "$name: $hotplug unplugged mid-run: its job fails and lets go, A's job on the same heap ends clean (verified)"
	else
		t_fail "$name: $hotplug unplugged mid-run, A's job on the same heap ends clean" \
			"jobs '$res', gone $gone, opened by fio first: $opened, fio exit $frc"
	fi
	t_run "$name: the host adds $hotplug back" upcie_replug "$hotplug" 60
fi

[ "$hp" -ge 32 ] || upcie_hugepages "$hp"
[ "$before_a" = "$drv" ] || t_run "$name: bind A back to ${before_a:-nvme}" upcie_bind "$A" "${before_a:-nvme}"
[ "$before_b" = "$drv" ] || t_run "$name: bind B back to ${before_b:-nvme}" upcie_bind "$B" "${before_b:-nvme}"
t_done
