# SPDX-License-Identifier: BSD-3-Clause
# INTx under uio_pci_generic, interrupts counted (BENCHMARKS.md, part 7's
# uio rows): controller A on the user-space driver, upcie-perf --irq at QD 1
# polled, with interrupts (with and without shadow doorbells), hybrid, and
# with interrupts at QD 32, in one boot; the function's line in
# /proc/interrupts after each run, and what the kernel logged about it.
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
for opts in "" "--irq" "--irq --no-dbbuf" "--hybrid 50" "--irq --qd 32"; do
	# shellcheck disable=SC2086
	upcie-perf --device "$A" --ns 2 --rw randread --bs 4096 --qd 1 --time 2 \
		--no-progress $opts 2>&1 | grep -E "iops|wait:|cpu|sleeps_per_io" | head -n 5
	echo "line $irq after '${opts:-polled}': $(line)"
done
dmesg | grep -iE "irq $irq|nobody cared|Disabling IRQ" | tail -n 5
t_pass "INTx counted on $A ($drv)"
upcie_bind "$A" nvme
t_done
