# SPDX-License-Identifier: BSD-3-Clause
# Guest side of the no-IOMMU comparison: in one boot of the 'noiommu'
# configuration (the 6.12 guest kernel, no IOMMU), controller A, nsid 2,
# 4 KiB randread at QD 1 and QD 32 through vfio's no-IOMMU mode and through
# uio_pci_generic, in interleaved rounds (noiommu, uio, noiommu, uio, ...)
# so that a busy host weighs on both alike. One line per run:
#   FIGURES iommu=<noiommu|uio> qd=<n> round=<r> iops=<n>
# Run it with:
#   qemu/run-guest BUILD_DIR noiommu bench/guest-noiommu.sh
# (type1 and iommufd need the IOMMU: the 'iommufd' configuration's
# tests/qemu/guest-iommufd.sh prints their figures on the same kernel.)
. "$UPCIE_GUEST_LIB"

A=$UPCIE_CTRL_A
rounds=${UPCIE_BENCH_ROUNDS:-3}
secs=${UPCIE_BENCH_SECS:-3}

run() { # run <label> <driver> <qd> <round>
	upcie_bind "$A" "$2" || {
		t_fail "bind A to $2"
		return 1
	}
	iops=$(upcie-perf --device "$A" --ns 2 --rw randread --bs 4096 --qd "$3" --time "$secs" \
		--no-progress 2>/tmp/perf.err | sed -n 's/^ *iops: \([0-9]*\).*/\1/p' | head -n 1)
	echo "FIGURES iommu=$1 qd=$3 round=$4 iops=${iops:-none}"
	if [ -n "$iops" ] && [ "$iops" -gt 0 ]; then
		t_pass "$1 QD $3 round $4: $iops IOPS"
	else
		t_fail "$1 QD $3 round $4" "no IOPS figure: $(head -n 2 /tmp/perf.err | tr '\n' ' ')"
	fi
}

r=1
while [ $r -le "$rounds" ]; do
	for qd in 1 32; do
		run noiommu vfio-pci "$qd" "$r"
		run uio uio_pci_generic "$qd" "$r"
	done
	r=$((r + 1))
done
upcie_bind "$A" nvme
t_done
