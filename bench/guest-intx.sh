# SPDX-License-Identifier: BSD-3-Clause
# INTx under uio_pci_generic, interrupts counted (BENCHMARKS.md, part 7's
# uio rows): controller A on the user-space driver, upcie-perf --irq at QD 1
# with and without shadow doorbells, the function's line in /proc/interrupts
# before and after each run, and what the kernel logged about the line.
#   qemu/run-guest BUILD uio bench/guest-intx.sh
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
A=$UPCIE_CTRL_A
upcie_bind "$A" "$drv" || {
	t_fail "bind $A to $drv"
	t_done
}
irq=$(cat "/sys/bus/pci/devices/$A/irq")
line() { grep -E "^ *$irq:" /proc/interrupts; }
echo "line $irq before: $(line)"
for opts in "" "--no-dbbuf"; do
	# shellcheck disable=SC2086
	upcie-perf --device "$A" --ns 2 --rw randread --bs 4096 --qd 1 --time 2 --irq \
		--no-progress $opts 2>&1 | grep -E "iops|wait:|sleeps_per_io" | head -n 4
	echo "line $irq after --irq $opts: $(line)"
done
dmesg | grep -iE "irq $irq|nobody cared|Disabling IRQ" | tail -n 5
t_pass "INTx counted on $A ($drv)"
upcie_bind "$A" nvme
t_done
