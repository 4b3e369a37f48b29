# SPDX-License-Identifier: BSD-3-Clause
# The pci layer on real (emulated) controllers, without the NVMe driver
# layer: open, BAR0 (CAP/VS), DMA mapping, one hand-made Identify through
# the mapped memory, and the refusals with their advice.
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
A=$UPCIE_CTRL_A
B=$UPCIE_CTRL_B

t_run_fail "bound to nvme: open refused with devbind advice" "devbind bind" \
	upcie-pci-probe "$B"
t_run_fail "address that does not exist" "no such PCI device" upcie-pci-probe 0000:3f:1f.7

t_run "bind A to $drv" upcie_bind "$A" "$drv"
t_run "bind B to $drv" upcie_bind "$B" "$drv"
t_run "A: open, BAR0, hugepage DMA, Identify" upcie-pci-probe --identify "$A"
t_run "B: open, BAR0, hugepage DMA, Identify" upcie-pci-probe --identify "$B"
t_run_fail "non-root open refused" "run as root" upcie-pci-probe --nobody "$A"

case "$UPCIE_CONFIG" in
uio)
	t_run_fail "uio: small pages refused" "hugepage" upcie-pci-probe --small-pages "$A"
	;;
vfio)
	t_run "vfio: small-page DMA and Identify" upcie-pci-probe --small-pages --identify "$A"
	upcie_bind "$B" uio_pci_generic
	t_run_fail "uio behind the IOMMU refused" "iommu=pt" upcie-pci-probe "$B"
	;;
esac
t_done
