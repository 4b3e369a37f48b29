#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# libupcie-preload.so under programs nobody changed, on the sim (TAP):
#   preload-sim.sh LIBUPCIE_PRELOAD_SO UPCIE_PRELOAD_CHECK
#
#  1. upcie-preload-check (plain libc and libaio calls; its header lists
#     the checks) on the 4 KiB and the 512 B namespace; its scenarios
#     counted by the sim (UPCIE_PRELOAD_SIM_STATS): one Flush per O_SYNC
#     pwritev, one command for a registered vector, no registration lost
#     when a buffer is freed under I/O; without the library the same path
#     does not exist.
#  2. dd with oflag=direct writes a pattern, dd with iflag=direct reads it
#     back (another process: the sim's image file carries it): cmp equal,
#     and the image holds it at the namespace's place; dd with a block
#     size that is no multiple of 4 KiB and O_DIRECT: EINVAL.
#  3. Debian's fio, unmodified: libaio (direct, QD 16), psync (direct) and
#     sync (buffered), random writes then verify=crc32c: no error; psync and
#     libaio with four threads (a queue pair each) too.
#  4. mkfs.ext4 -F (it discards the device first) and e2fsck -fn through the
#     library; e2fsck on the image file without it.
#  5. blockdev --getsize64 on two paths mapped to two namespaces.
#  6. Refusals: malformed mappings (no '=', no NSID, NSID 0, an unknown
#     device), a PCI address with no device, an inactive namespace: the
#     program's open fails with the right errno and the library says why;
#     ordinary files still work under the library.
. "${UPCIE_TAP_SH:-$(dirname "$0")/../lib/tap.sh}"

PL=$1
CHECK=$2
[ -f "$PL" ] && [ -x "$CHECK" ] || tap_skip_all "usage: $0 LIBUPCIE_PRELOAD_SO UPCIE_PRELOAD_CHECK"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
DEV=/dev/upcie-preload-test
IMG=$T/sim.img
export UPCIE_PRELOAD_SIM_IMAGE=$IMG

# pl MAPPING CMD...: CMD under the library with that mapping
pl() {
	_m=$1
	shift
	UPCIE_PRELOAD=$_m LD_PRELOAD=$PL "$@"
}

# 1. the C program
for ns in 2 1; do
	pl "$DEV=sim/$ns" "$CHECK" "$DEV" "$T/scratch" >"$T/check.out" 2>"$T/check.err"
	rc=$?
	sed -n 's/^\(not \)\{0,1\}ok [0-9]* - //p' "$T/check.out" | head -0
	while IFS= read -r line; do
		case "$line" in
		ok\ *\#\ SKIP*) tap_skip "check ns $ns: $(echo "$line" | sed 's/^ok [0-9]* - //; s/ # SKIP.*//')" "${line##*# SKIP}" ;;
		ok\ *) tap_ok "check ns $ns: ${line#ok * - }" ;;
		not\ ok\ *)
			l=${line#not ok * - }
			tap_fail "check ns $ns: ${l%% # *}" "${l#* # }"
			;;
		esac
	done <"$T/check.out"
	grep -q '^1\.\.[0-9]' "$T/check.out" && [ $rc -eq 0 ] ||
		{ tap_fail "check ns $ns: exit 0 with a plan" "exit $rc"; sed 's/^/# /' "$T/check.err"; }
done
# the sim's counters after one scenario: stat MODE NAME
stat_of() {
	rm -f "$T/stats"
	UPCIE_PRELOAD_SIM_STATS=$T/stats pl "$DEV=sim/2" "$CHECK" "$DEV" "$T/scratch" "$1" 2>"$T/mode.err" ||
		{ echo "failed: $(head -c 200 "$T/mode.err")"; return; }
	sed -n "s/^$2: //p" "$T/stats" | tail -1
}
n=$(stat_of osync-iov io_cmds)
[ "$n" = 2 ] && tap_ok "O_SYNC pwritev of 4 registered pieces: one write, one Flush" ||
	tap_fail "O_SYNC pwritev of 4 registered pieces: one write, one Flush" "I/O commands: $n"
n=$(stat_of osync-stack io_cmds)
[ "$n" = 5 ] && tap_ok "O_SYNC pwritev of 4 bounced pieces: four writes, one Flush" ||
	tap_fail "O_SYNC pwritev of 4 bounced pieces: four writes, one Flush" "I/O commands: $n"
	rm -f "$T/stats"
	if UPCIE_PRELOAD_SIM_STATS=$T/stats pl "$DEV=sim/2" "$CHECK" "$DEV" "$T/scratch" free-busy 2>"$T/mode.err"; then
		h=$(sed -n 's/^heap_regions: //p' "$T/stats")
		c=$(sed -n 's/^cache_regions: //p' "$T/stats")
		[ -n "$h" ] && [ "$h" = "$c" ] && tap_ok "a buffer freed under a libaio write: its registration stays tracked" ||
			tap_fail "a buffer freed under a libaio write: its registration stays tracked" "heap $h, cache $c"
	elif grep -q "unknown mode" "$T/mode.err"; then
		tap_skip "a buffer freed under a libaio write" "built without libaio.h"
	else
		tap_fail "a buffer freed under a libaio write" "$(head -c 200 "$T/mode.err")"
	fi
if "$CHECK" "$DEV" "$T/scratch" >/dev/null 2>&1; then
	tap_fail "without the library $DEV does not exist (the check fails)" "it passed"
else
	tap_ok "without the library $DEV does not exist (the check fails)"
fi

# 2. dd
rm -f "$IMG"
head -c 4194304 /dev/urandom >"$T/pat"
tap_check "dd oflag=direct writes 4 MiB to sim/2" \
	pl "$DEV=sim/2" dd if="$T/pat" of="$DEV" bs=64k seek=16 oflag=direct status=none
tap_check "dd iflag=direct reads it back in another process" \
	pl "$DEV=sim/2" dd if="$DEV" of="$T/back" bs=64k skip=16 count=64 iflag=direct status=none
tap_check "cmp: what dd read is the pattern" cmp "$T/pat" "$T/back"
# namespace 2 follows namespace 1 (64 MiB) in the image
dd if="$IMG" of="$T/img.part" bs=64k skip=$((1024 + 16)) count=64 status=none 2>/dev/null
tap_check "the sim's image holds the pattern at namespace 2's offset 1 MiB" cmp "$T/pat" "$T/img.part"
if pl "$DEV=sim/2" dd if="$T/pat" of="$DEV" bs=1000 count=1 oflag=direct status=none 2>"$T/dd.err"; then
	tap_fail "dd bs=1000 oflag=direct on 4 KiB blocks: EINVAL" "it worked"
else
	grep -q "Invalid argument" "$T/dd.err" && tap_ok "dd bs=1000 oflag=direct on 4 KiB blocks: EINVAL" ||
		tap_fail "dd bs=1000 oflag=direct on 4 KiB blocks: EINVAL" "$(head -c 200 "$T/dd.err")"
fi

# 3. fio
FIO=${FIO:-$(command -v fio)}
fio_run() { # name engine extra...
	_n=$1
	_e=$2
	shift 2
	pl "$DEV=sim/1" "$FIO" --name="$_n" --filename="$DEV" --ioengine="$_e" --rw=randwrite \
		--bs=4k --size=16m --verify=crc32c --output-format=json --output="$T/fio.json" "$@" \
		>"$T/fio.out" 2>"$T/fio.err"
	_rc=$?
	_res=$(python3 -c '
import json, sys
t = open(sys.argv[1]).read()  # fio may put a warning line first
j = json.loads(t[t.index("{"):])["jobs"][0]
w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
print("ok" if j["error"] == 0 and w == 16 << 20 and r == 16 << 20 else "error %d, %d bytes written, %d verified" % (j["error"], w, r))
' "$T/fio.json" 2>&1)
	if [ $_rc -eq 0 ] && [ "$_res" = ok ]; then
		tap_ok "fio --ioengine=$_e $*: 16 MiB written and verified (crc32c)"
	else
		tap_fail "fio --ioengine=$_e $*" "exit $_rc: $_res $(head -c 300 "$T/fio.err")"
	fi
}
if [ -n "$FIO" ] && command -v python3 >/dev/null; then
	fio_run libaio libaio --direct=1 --iodepth=16
	fio_run libaio-thread libaio --direct=1 --iodepth=32 --bs=16k --thread
	fio_run psync psync --direct=1
	fio_run psync-4threads psync --direct=1 --thread --numjobs=4 --size=4m --offset_increment=4m \
		--group_reporting
	fio_run libaio-4threads libaio --direct=1 --iodepth=8 --thread --numjobs=4 --size=4m \
		--offset_increment=4m --group_reporting
	fio_run sync sync
else
	tap_skip "fio" "fio or python3 not installed"
fi

# 4. mkfs.ext4 and e2fsck
rm -f "$IMG"
if command -v mkfs.ext4 >/dev/null && command -v e2fsck >/dev/null; then
	tap_check "mkfs.ext4 -F through the library (discard, then the file system)" \
		pl "$DEV=sim/2" mkfs.ext4 -q -F "$DEV"
	tap_check "e2fsck -fn through the library: clean" pl "$DEV=sim/2" e2fsck -fn "$DEV"
	dd if="$IMG" of="$T/ns2" bs=1M skip=64 count=64 status=none 2>/dev/null
	tap_check "e2fsck -fn on the image, without the library: clean" e2fsck -fn "$T/ns2"
else
	tap_skip "mkfs.ext4 and e2fsck" "e2fsprogs not installed"
fi

# 5. two paths, two namespaces
if command -v blockdev >/dev/null; then
	s=$(pl "$DEV-a=sim/1,$DEV-b=sim/2" sh -c "blockdev --getsize64 $DEV-a; blockdev --getss $DEV-a; blockdev --getsize64 $DEV-b; blockdev --getss $DEV-b" 2>&1 | tr '\n' ' ')
	[ "$s" = "67108864 512 67108864 4096 " ] && tap_ok "blockdev on two mapped paths: sizes and block sizes" ||
		tap_fail "blockdev on two mapped paths" "got '$s'"
fi

# 6. refusals: refuse MAPPING ERRNO_TEXT MESSAGE_RE DESCRIPTION
refuse() {
	pl "$1" dd if="$DEV" of=/dev/null bs=4k count=1 status=none 2>"$T/err"
	_rc=$?
	if [ $_rc -ne 0 ] && grep -q "$2" "$T/err" && grep -q "$3" "$T/err"; then
		tap_ok "$4"
	else
		tap_fail "$4" "exit $_rc: $(tr '\n' ' ' <"$T/err" | head -c 300)"
	fi
}
refuse "$DEV" "Invalid argument" "no '='" "mapping without '=': EINVAL, says so"
refuse "$DEV=sim" "Invalid argument" "no '/NSID'" "mapping without NSID: EINVAL, says so"
refuse "$DEV=sim/0" "Invalid argument" "NSID must be" "NSID 0: EINVAL, says so"
refuse "$DEV=disk7/1" "Invalid argument" "neither a PCI address" "unknown device: EINVAL, says so"
refuse "/dev/other=sim/1,$DEV=sim/x" "Invalid argument" "entry 2" "a bad second entry: EINVAL naming it"
refuse "$DEV=0000:3f:1f.7/1" "No such" "cannot open 0000:3f:1f.7" "a PCI address with no device: the open fails, naming it"
refuse "$DEV=sim/7" "No such device or address" "no active namespace 7" "an inactive namespace: ENXIO, says so"
echo hello >"$T/plain"
tap_check "ordinary files under the library with a bad mapping" \
	pl "$DEV" dd if="$T/plain" of="$T/plain2" status=none
tap_check "... arrive intact" cmp "$T/plain" "$T/plain2"
tap_done
