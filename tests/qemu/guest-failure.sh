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
#  unbind of B during upcie-perf: bus mastering goes off while it runs
#      (uio: the kernel; vfio: the library's request watcher), upcie-perf
#      exits 2 with a device-gone error, the unbind completes; again with
#      upcie-perf --irq, asleep in the library's wait when the device goes.
#  (a) hot-unplug of the hot-pluggable controller (the host's device_del)
#      during upcie-perf: it exits 2 with a device-gone error soon after the
#      device left, the unplug completes, the guest stays up; the host adds
#      the controller back (nvme takes it). In both, upcie-perf learns of
#      the loss from upcie_nvme_poll's health check.
#
# Each prints its guest timing ("timing (x, config): ..."): from the kill to
# BME read off, the identify and perf after it; the second perf's refusal;
# from the unbind or device_del to bus mastering off, the device leaving,
# upcie-perf's exit.
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
B=$UPCIE_CTRL_B

now() { cut -d' ' -f1 /proc/uptime; }
since() { echo "$(now) $1" | awk '{ printf "%.2f", $1 - $2 }'; }

# Bus Master Enable (bit 2 of COMMAND, config offset 4) as the device has
# it; "?" when config space cannot be read (no answer is not an answer).
bme() {
	_cmd=$(od -An -tx2 -j4 -N2 "/sys/bus/pci/devices/$1/config" 2>/dev/null | tr -d ' ')
	if [ -z "$_cmd" ]; then
		echo "?"
		return
	fi
	echo $((0x$_cmd >> 2 & 1))
}

# Is process $1 running (not exited, not a zombie waiting to be reaped)?
alive() {
	_st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)
	[ -n "$_st" ] && [ "$_st" != Z ]
}

# perf_start <bdf> <output file> [options]: start upcie-perf in the
# background (pid in perf_pid) and wait until it reports progress: the
# controller is open and doing I/O.
perf_start() {
	_dev=$1
	_out=$2
	shift 2
	upcie-perf --device "$_dev" --progress "$@" >"$_out" 2>&1 &
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

restore_and_read() {
	devbind restore "$B" || return 1
	_dev=$(upcie_blockdev "$B" 1) || {
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
if perf_start "$B" /tmp/kill.out --time 60; then
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
if perf_start "$B" /tmp/first.out --time 8; then
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
# --- the kernel takes the device away during upcie-perf ------------------------
# watch_perf <bdf> <output> [pid]: sample every 50 ms from t0 (up to 90 s)
# until upcie-perf has exited and the device is off its driver (or process
# pid, the unbind writer, has finished): t_off (bus mastering read off),
# t_unb (no driver link), t_gone (no PCI function), t_done (pid finished),
# t_exit (upcie-perf exited); rc is upcie-perf's exit status.
watch_perf() {
	t_off="" t_unb="" t_gone="" t_done="" t_exit=""
	_i=0
	while [ $_i -lt 1800 ] && { [ -z "$t_unb" ] || [ -z "$t_exit" ] ||
		{ [ -n "${3:-}" ] && [ -z "$t_done" ]; }; }; do
		# Off while upcie-perf still runs, on both sides of the read: BME
		# going off only because upcie-perf exited must not count.
		if [ -z "$t_off" ] && alive "$perf_pid"; then
			_b=$(bme "$1")
			alive "$perf_pid" && [ "$_b" = 0 ] && t_off=$(since "$t0")
		fi
		[ -z "$t_unb" ] && [ -z "$(upcie_driver "$1")" ] && t_unb=$(since "$t0")
		[ -z "$t_gone" ] && [ ! -e "/sys/bus/pci/devices/$1" ] && t_gone=$(since "$t0")
		[ -n "${3:-}" ] && [ -z "$t_done" ] && ! alive "$3" && t_done=$(since "$t0")
		[ -z "$t_exit" ] && ! alive "$perf_pid" && t_exit=$(since "$t0")
		sleep 0.05
		_i=$((_i + 1))
	done
	wait "$perf_pid"
	rc=$?
	sed 's/^/    | /' "$2" | grep -v '^    | \[' | tail -n 4
}

# perf_gone <name> <output>: upcie-perf exited 2 with a device-gone error,
# long before its 60 s run would end.
perf_gone() {
	if [ "$rc" = 2 ] && grep -q "gone" "$2" && [ "$(echo "${t_exit:-99}" | cut -d. -f1)" -lt 30 ]; then
		t_pass "$1"
	else
		t_fail "$1" "exit $rc after ${t_exit:-?}s"
	fi
}

# Unbind: vfio-pci signals the device request interrupt and waits for the
# device to be released (the library's watcher clears bus mastering at
# once); uio_pci_generic lets go at once (bus mastering off). Either way
# upcie-perf must notice (its queues stall, the health check asks the PCI
# layer) and exit with a device error, and the unbind must complete.
# unbind_during_perf [options]: with --irq, upcie-perf sleeps in
# upcie_nvme_qpair_wait(): the removal must wake it (vfio: the request
# interrupt; uio: the interrupt source goes, and the health interval).
unbind_during_perf() {
	_opts="$*"
	if ! perf_start "$B" /tmp/unbind.out --time 60 "$@"; then
		kill -9 "$perf_pid" 2>/dev/null
		wait "$perf_pid" 2>/dev/null
		t_fail "unbind during upcie-perf $_opts" "upcie-perf did not start"
		return
	fi
	t0=$(now)
	echo "$B" >"/sys/bus/pci/devices/$B/driver/unbind" &
	ub_pid=$!
	watch_perf "$B" /tmp/unbind.out "$ub_pid"
	wait "$ub_pid"
	ub_rc=$?
	echo "timing (unbind $_opts, $UPCIE_CONFIG): bus mastering off after ${t_off:-?}s; the unbind write returned (exit $ub_rc) after ${t_done:-?}s; upcie-perf exit $rc after ${t_exit:-?}s"
	# Fenced while upcie-perf still ran: by the kernel (uio) or the
	# library's request watcher (vfio), not by upcie-perf's exit. Asleep
	# in the wait (--irq), upcie-perf is woken by the removal and exits
	# sooner than the 50 ms samples can catch the fence: there it must
	# exit within 5 s of the unbind instead.
	if [ -n "$_opts" ]; then
		if [ -n "$t_exit" ] && [ "$(echo "$t_exit" | awk '{ print ($1 <= 5) }')" = 1 ]; then
			t_pass "unbind during upcie-perf $_opts: woken, exits within 5 s (${t_exit}s, $UPCIE_CONFIG)"
		else
			t_fail "unbind during upcie-perf $_opts: woken, exits within 5 s ($UPCIE_CONFIG)" \
				"exit after ${t_exit:-never}s"
		fi
	elif [ -n "$t_off" ] && [ -n "$t_exit" ] && [ "$(echo "$t_off $t_exit" | awk '{ print ($1 < $2) }')" = 1 ]; then
		t_pass "unbind during upcie-perf $_opts: bus mastering off while it runs ($UPCIE_CONFIG)"
	else
		t_fail "unbind during upcie-perf $_opts: bus mastering off while it runs ($UPCIE_CONFIG)" \
			"off after ${t_off:-never}s, upcie-perf exit after ${t_exit:-never}s"
	fi
	perf_gone "unbind during upcie-perf $_opts: exits 2 (device gone) before its run ends" /tmp/unbind.out
	[ "$ub_rc" = 0 ] && [ -n "$t_unb" ] &&
		t_pass "unbind during upcie-perf $_opts: the unbind completes" ||
		t_fail "unbind during upcie-perf $_opts: the unbind completes" "exit $ub_rc, driver '$(upcie_driver "$B")'"
	upcie_bind "$B" "$drv" || t_fail "rebind B to $drv after the unbind"
}

# (a) Hot-unplug: the host's device_del of the hot-pluggable controller
# (behind a pcie-root-port) while upcie-perf drives it. pciehp waits 5 s
# (attention button), then removes the device: under vfio the kernel asks
# for it back and waits until upcie-perf lets go; under uio it goes at once.
# upcie-perf must exit 2 with a device-gone error soon after the device
# leaves (or, under vfio, so that it can leave), the unplug completes, the
# guest stays up; the host adds the controller back for the later tests.
hotunplug_during_perf() {
	hp=${UPCIE_TOPO_HOTPLUG%% *}
	hpb=$(upcie_bdf "$hp")
	if [ -z "$hp" ] || [ -z "$hpb" ]; then
		t_fail "(a) hot-unplug during upcie-perf" "no hot-pluggable controller in this guest"
		return
	fi
	if ! upcie_bind "$hpb" "$drv" || ! perf_start "$hpb" /tmp/hp.out --time 60; then
		kill -9 "$perf_pid" 2>/dev/null
		wait "$perf_pid" 2>/dev/null
		t_fail "(a) hot-unplug during upcie-perf" "$hp ($hpb) not on $drv or upcie-perf did not start"
		return
	fi
	echo "---- (a) upcie-perf (pid $perf_pid) on $hp at $hpb; the host removes it (device_del)"
	t0=$(now)
	upcie_host_request device_del "$hp"
	watch_perf "$hpb" /tmp/hp.out
	# The unplug completes: the function leaves the bus (bounded wait).
	upcie_wait_gone "$hpb" 60 >/dev/null && [ -z "$t_gone" ] && t_gone=$(since "$t0")
	after=$(echo "${t_exit:-99} ${t_gone:-0}" | awk '{ printf "%.2f", $1 - $2 }')
	echo "timing (a, $UPCIE_CONFIG): device_del asked at 0; unbound from $drv after ${t_unb:-?}s; left the bus after ${t_gone:-?}s; upcie-perf exit $rc after ${t_exit:-?}s (${after}s after the device left)"
	perf_gone "(a) hot-unplug during upcie-perf ($UPCIE_CONFIG): exits 2 (device gone) before its run ends" /tmp/hp.out
	# Soon after the device left (under vfio it leaves after upcie-perf
	# let go): the bound, 10 s, is generous against a noisy host; the
	# figure above is the measurement.
	if [ -n "$t_gone" ] && [ -n "$t_exit" ] && [ "$(echo "$after" | awk '{ print ($1 <= 10) }')" = 1 ]; then
		t_pass "(a) hot-unplug: upcie-perf exits soon after the device left (${after}s), the unplug completes"
	else
		t_fail "(a) hot-unplug: upcie-perf exits soon after the device left, the unplug completes" \
			"left after ${t_gone:-never}s, exit after ${t_exit:-never}s"
	fi
	t_run "(a) hot-unplug: the guest stays up (upcie-identify B)" upcie-identify "$B"
	t_run "(a) hot-unplug: the host adds $hp back, nvme takes it" hp_back
}

hp_back() {
	upcie_replug "$hp" 60 && upcie_blockdev "$hpb" 1
}

unbind_during_perf
unbind_during_perf --irq --qd 1
hotunplug_during_perf
exit 0
