# SPDX-License-Identifier: BSD-3-Clause
#
# Failure handling at the PCI layer, on controller B through this boot's
# user-space driver (uio_pci_generic or vfio-pci). Called by guest-tests.sh;
# runs alone too (run-guest BUILD uio|vfio tests/qemu/guest-failure.sh).
#
#  (b) kill -9 of upcie-perf mid-run: Bus Master Enable is off afterwards
#      (COMMAND read through sysfs; it was on during the run), the owner
#      lock is gone, upcie-identify and upcie-perf work again on the same
#      controller, and after 'devbind restore' the kernel's nvme driver
#      reads the namespace (dd).
#  (c) a second upcie-perf on a controller in use exits 2 naming EBUSY and
#      the first one's pid and command; the first completes with 0 errors.
#
# Each prints its guest timing ("timing: ..."): from the kill to BME read
# off, the identify and perf after it; the second perf's refusal.
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
B=$UPCIE_CTRL_B

now() { cut -d' ' -f1 /proc/uptime; }
since() { echo "$(now) $1" | awk '{ printf "%.2f", $1 - $2 }'; }

# Bus Master Enable (bit 2 of COMMAND, config offset 4) as the device has it.
bme() {
	_cmd=$(od -An -tx2 -j4 -N2 "/sys/bus/pci/devices/$1/config" | tr -d ' ')
	echo $((0x${_cmd:-ffff} >> 2 & 1))
}

# Is process $1 running (not exited, not a zombie waiting to be reaped)?
alive() {
	_st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)
	[ -n "$_st" ] && [ "$_st" != Z ]
}

# Start upcie-perf in the background (pid in perf_pid, output in $1) and
# wait until it reports progress: the controller is open and doing I/O.
perf_start() {
	_out=$1
	shift
	upcie-perf --device "$B" --progress "$@" >"$_out" 2>&1 &
	perf_pid=$!
	_i=0
	while [ $_i -lt 600 ]; do
		grep -q '^\[ *[0-9.]*s\]' "$_out" && return 0
		kill -0 "$perf_pid" 2>/dev/null || break
		sleep 0.1
		_i=$((_i + 1))
	done
	echo "upcie-perf did not report progress:"
	sed 's/^/    | /' "$_out"
	return 1
}

# First block device of the controller at $1 under the nvme driver (waits
# up to 20 s after a rebind).
nvme_blockdev() {
	_i=0
	while [ $_i -lt 200 ]; do
		for _c in /sys/bus/pci/devices/$1/nvme/nvme*; do
			for _b in "$_c"/nvme*n*; do
				[ -e "$_b/size" ] && [ -b "/dev/${_b##*/}" ] && {
					echo "/dev/${_b##*/}"
					return 0
				}
			done
		done
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

restore_and_read() {
	devbind restore "$B" || return 1
	_dev=$(nvme_blockdev "$B") || {
		echo "no block device after devbind restore"
		return 1
	}
	echo "kernel reads $_dev: dd bs=4096 count=256"
	dd if="$_dev" of=/dev/null bs=4096 count=256 2>&1 || return 1
}

upcie_bind "$B" "$drv" || {
	t_fail "failure tests on B" "cannot bind $B to $drv"
	exit 0
}

# --- (b) kill -9 mid-run --------------------------------------------------------
if perf_start /tmp/kill.out --time 60; then
	on=$(bme "$B")
	echo "---- upcie-perf (pid $perf_pid) is running; Bus Master Enable: $on"
	[ "$on" = 1 ] && t_pass "kill -9: bus mastering is on while upcie-perf runs" ||
		t_fail "kill -9: bus mastering is on while upcie-perf runs" "BME $on"
	t0=$(now)
	kill -9 "$perf_pid"
	wait "$perf_pid"
	rc=$?
	off=$(bme "$B")
	t_bme=$(since "$t0")
	echo "---- killed (exit $rc); Bus Master Enable: $off"
	if [ "$rc" = 137 ] && [ "$off" = 0 ]; then
		t_pass "kill -9 of upcie-perf: Bus Master Enable off after the kill ($drv)"
	else
		t_fail "kill -9 of upcie-perf: Bus Master Enable off after the kill ($drv)" \
			"exit $rc, BME $off"
	fi
	t1=$(now)
	t_run "after kill -9: upcie-identify on the same controller" upcie-identify "$B"
	t_id=$(since "$t1")
	t1=$(now)
	t_rc "after kill -9: upcie-perf on the same controller, 0 errors" 0 "^  errors: 0 " \
		upcie-perf --device "$B" --time 2 --no-progress
	t_perf=$(since "$t1")
	echo "timing (b, $UPCIE_CONFIG): kill to BME read off ${t_bme}s; identify ${t_id}s; 2 s perf run ${t_perf}s"
	t_run "after kill -9: devbind restore, the kernel reads the namespace" restore_and_read
	upcie_bind "$B" "$drv" || t_fail "rebind B to $drv"
else
	t_fail "kill -9 of upcie-perf mid-run" "upcie-perf did not start"
	kill -9 "$perf_pid" 2>/dev/null
	wait "$perf_pid" 2>/dev/null
fi

# --- (c) a second owner -------------------------------------------------------
if perf_start /tmp/first.out --time 8; then
	t0=$(now)
	t_rc "second upcie-perf on a controller in use: exit 2, EBUSY naming the owner" 2 \
		"EBUSY.* process $perf_pid \(upcie-perf\)" \
		upcie-perf --device "$B" --time 1 --no-progress
	t_second=$(since "$t0")
	wait "$perf_pid"
	rc=$?
	echo "---- first upcie-perf (pid $perf_pid) exit $rc:"
	grep -E "^  (ios|errors):" /tmp/first.out | head -n 2 | sed 's/^/    /'
	if [ "$rc" = 0 ] && grep -q "^  errors: 0 " /tmp/first.out; then
		t_pass "first upcie-perf completes its run with 0 errors"
	else
		sed 's/^/    | /' /tmp/first.out | tail -n 20
		t_fail "first upcie-perf completes its run with 0 errors" "exit $rc"
	fi
	echo "timing (c, $UPCIE_CONFIG): second upcie-perf refused in ${t_second}s"
else
	t_fail "second upcie-perf on a controller in use" "the first upcie-perf did not start"
	kill -9 "$perf_pid" 2>/dev/null
	wait "$perf_pid" 2>/dev/null
fi
# --- unbind during upcie-perf: the kernel asks for the device back ------------
# vfio-pci signals the device request interrupt and waits for the device to
# be released; uio_pci_generic lets go at once (bus mastering off). Either
# way upcie-perf must notice (its queues stall, the health check asks the
# PCI layer) and exit with a device error long before its 60 s run ends,
# and the unbind must complete. Needs the NVMe layer's health check.
unbind_during_perf() {
	if ! perf_start /tmp/unbind.out --time 60; then
		kill -9 "$perf_pid" 2>/dev/null
		wait "$perf_pid" 2>/dev/null
		t_fail "unbind during upcie-perf" "upcie-perf did not start"
		return
	fi
	t0=$(now)
	echo "$B" >"/sys/bus/pci/devices/$B/driver/unbind" &
	ub_pid=$!
	# Sample every 50 ms (up to 90 s): bus mastering, the driver link,
	# whether upcie-perf still runs.
	t_off="" t_unb="" t_exit=""
	_i=0
	while [ $_i -lt 1800 ] && { [ -z "$t_off" ] || [ -z "$t_unb" ] || [ -z "$t_exit" ]; }; do
		[ -z "$t_off" ] && [ "$(bme "$B")" = 0 ] && t_off=$(since "$t0")
		[ -z "$t_unb" ] && [ -z "$(upcie_driver "$B")" ] && t_unb=$(since "$t0")
		[ -z "$t_exit" ] && ! alive "$perf_pid" && t_exit=$(since "$t0")
		sleep 0.05
		_i=$((_i + 1))
	done
	wait "$perf_pid"
	rc=$?
	wait "$ub_pid"
	ub_rc=$?
	sed 's/^/    | /' /tmp/unbind.out | grep -v '^    | \[' | tail -n 6
	echo "timing (unbind, $UPCIE_CONFIG): bus mastering off after ${t_off:-?}s; upcie-perf exit $rc after ${t_exit:-?}s; unbound after ${t_unb:-?}s (exit $ub_rc)"
	[ -n "$t_off" ] && t_pass "unbind during upcie-perf: bus mastering off ($UPCIE_CONFIG)" ||
		t_fail "unbind during upcie-perf: bus mastering off ($UPCIE_CONFIG)"
	if [ "$rc" = 2 ] && grep -q "gone" /tmp/unbind.out &&
		[ "$(echo "${t_exit:-99}" | cut -d. -f1)" -lt 30 ]; then
		t_pass "unbind during upcie-perf: exits 2 (device gone) before its run ends"
	else
		t_fail "unbind during upcie-perf: exits 2 (device gone) before its run ends" \
			"exit $rc after ${t_exit}s"
	fi
	[ "$ub_rc" = 0 ] && [ -n "$t_unb" ] &&
		t_pass "unbind during upcie-perf: the unbind completes" ||
		t_fail "unbind during upcie-perf: the unbind completes" "exit $ub_rc, driver '$(upcie_driver "$B")'"
	upcie_bind "$B" "$drv" || t_fail "rebind B to $drv after the unbind"
}

if grep -q upcie_nvme_ctrl_check /upcie/lib/libupcie.so* 2>/dev/null || [ "${UPCIE_FORCE_UNBIND_TEST:-0}" = 1 ]; then
	unbind_during_perf
else
	t_skip "unbind during upcie-perf" "this libupcie has no NVMe-layer health check"
fi
exit 0
