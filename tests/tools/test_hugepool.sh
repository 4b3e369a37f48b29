#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The hugepages test changes the running kernel's huge page pool as root;
# this checks that it puts back exactly what was there: every page size,
# every NUMA node, the overcommit limits, no mount left behind. Once for a
# whole run, then for runs interrupted (SIGTERM, as meson's timeout sends,
# and SIGINT, as Ctrl-C does) while the pool is changed.
#
# usage: test_hugepool.sh HUGEPAGES_TEST_SCRIPT HUGEPAGES INSTALLED_PATH
#
# Skips when not root, without huge pages, or when other processes hold
# pages of the default size (the test under check skips then too).

SCRIPT=${1:?usage: test_hugepool.sh HUGEPAGES_TEST_SCRIPT HUGEPAGES}
HP=${2:?usage: test_hugepool.sh HUGEPAGES_TEST_SCRIPT HUGEPAGES INSTALLED_PATH}
INSTALLED=${3:-}
T=$(mktemp -d "${TMPDIR:-/tmp}/hugepool-test.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hugepool.sh"

# The hugetlbfs mounts a hugepages test made (its temp dirs).
test_mounts() {
	grep ' hugetlbfs ' /proc/mounts | grep 'hugepages-test\.' || true
}

# Other hugepages tests running on this machine (another checkout's, whose
# script may predate the lock), outside our own children's process group
# MINE (0: none): their changes to the pool would be taken for ours.
others() {
	ps -eo pid=,pgid=,args= | awk -v mine="${1:-0}" -v me=$$ \
		'$4 ~ /test_hugepages\.sh$/ && $2 != mine && $1 != me { print $1 }'
}

# Wait (at most 5 min) until no other hugepages test runs.
quiet() {
	i=0
	while [ -n "$(others 0)" ] && [ $i -lt 300 ]; do
		[ $i = 0 ] && echo "# waiting for another hugepages test: $(others 0 | tr '\n' ' ')"
		sleep 1
		i=$((i + 1))
	done
}

# same WHAT [PGID]: the pool and the mounts are as they were before the
# runs; a skip when another checkout's hugepages test ran meanwhile.
same() {
	hugepool_save "$T/after"
	if [ -n "$(others "${2:-0}")" ] && ! cmp -s "$T/before" "$T/after"; then
		skip "$1: another hugepages test changed the pool meanwhile ($(others "${2:-0}" | tr '\n' ' '))"
		return
	fi
	if cmp -s "$T/before" "$T/after"; then
		ok "$1: the pool is as it was"
	else
		fail "$1: the pool changed"
		diff "$T/before" "$T/after" | sed 's/^/#    | /'
	fi
	left=$(test_mounts)
	if [ -z "$left" ]; then ok "$1: no hugetlbfs mount left"; else fail "$1: left mounted: $left"; fi
}

# killed SIGNAL: start the test, send SIGNAL to it (its process group, as a
# terminal or meson would) once it has changed the pool (its log says so),
# and check it ends within 10 s with the pool back.
killed() {
	sig=$1
	quiet
	# A process group of its own, so the signal reaches the script and
	# whatever it runs, as from a terminal or meson's timeout; SIGINT back
	# to its default (a shell starts background jobs with it ignored).
	setsid env --default-signal=INT sh "$SCRIPT" "$HP" "$INSTALLED" >"$T/log.$sig" 2>&1 &
	pid=$!
	i=0
	while [ $i -lt 3000 ]; do
		grep -q '^ok .* - host setup --count 8' "$T/log.$sig" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
		i=$((i + 1))
	done
	hugepool_save "$T/now"
	# It skipped before touching the pool (pages held by another process
	# meanwhile, another hugepages test): nothing to interrupt.
	if ! grep -q '^ok .* - host setup --count 8' "$T/log.$sig" &&
		why=$(grep -m1 '# SKIP' "$T/log.$sig" | sed 's/^ok [0-9]* - //; s/ # SKIP */: /; s/: $//') &&
		[ -n "$why" ]; then
		skip "SIG$sig: the hugepages test skipped before changing the pool ($why)"
		kill -KILL "-$pid" 2>/dev/null
		wait "$pid"
		return
	fi
	if ! grep -q '^ok .* - host setup --count 8' "$T/log.$sig" || cmp -s "$T/before" "$T/now"; then
		fail "SIG$sig: the test never changed the pool"
		kill -KILL "-$pid" 2>/dev/null
		wait "$pid"
		return
	fi
	kill "-$sig" "-$pid"
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		fail "SIG$sig: the test still runs 10 s after the signal"
		kill -KILL "-$pid" 2>/dev/null
	else
		ok "SIG$sig: the test stopped"
	fi
	wait "$pid"
	st=$?
	if [ "$st" -ne 0 ]; then ok "SIG$sig: it exits non-zero ($st)"; else fail "SIG$sig: it exits 0 after being interrupted"; fi
	# Going on after the signal would change the pool again after putting it back.
	if grep -q '^1\.\.' "$T/log.$sig"; then
		fail "SIG$sig: the test went on to its end after the signal"
	else
		ok "SIG$sig: the test stopped at the signal"
	fi
	same "SIG$sig" "$pid"
	tail -n 3 "$T/log.$sig" | sed 's/^/#    log: /'
}

held=$(awk '/^HugePages_Total:/ { t = $2 } /^HugePages_Free:/ { f = $2 } END { print t - f }' /proc/meminfo)
if [ "$(id -u)" -ne 0 ]; then
	skip "not root: the hugepages test leaves the pool alone"
elif [ ! -d /sys/kernel/mm/hugepages ]; then
	skip "the kernel has no huge pages"
elif [ "$held" != 0 ]; then
	skip "$held huge pages of the default size are in use by other processes"
else
	# The pool is the machine's: no other checkout's hugepages test may
	# change it between the saves and the comparisons below.
	if command -v flock >/dev/null 2>&1 && exec 9>/run/lock/upcie-hugepool.lock; then
		flock -w 300 9 || echo "# could not take /run/lock/upcie-hugepool.lock; going on"
		export UPCIE_HUGEPOOL_LOCKED=1
	fi
	quiet
	hugepool_save "$T/before"
	sed 's/^/# before: /' "$T/before"
	sh "$SCRIPT" "$HP" "$INSTALLED" >"$T/log.full" 2>&1
	st=$?
	if grep -q '^ok .*host setup --count 8' "$T/log.full"; then
		ok "a whole run changed the pool (exit $st)"
		same "a whole run"
		killed TERM
		killed INT
	else
		skip "a whole run did not change the pool: $(grep 'host' "$T/log.full" | head -n 1)"
	fi
fi
finish
