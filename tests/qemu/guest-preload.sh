# SPDX-License-Identifier: BSD-3-Clause
#
# libupcie-preload.so on QEMU's controller A through this boot's user-space
# driver, with programs nobody changed (GNU dd and Debian's fio, staged by
# qemu/guest.py; busybox is static, LD_PRELOAD cannot reach it). Called by
# guest-tests.sh; runs alone too:
#   qemu/run-guest BUILD uio|vfio tests/qemu/guest-preload.sh
#
#  1. dd oflag=direct writes a 4 MiB pattern to nsid 1 (512 B blocks) and
#     nsid 2 (4 KiB), dd iflag=direct reads each back: cmp equal.
#  2. fio, unmodified, on nsid 1: libaio (direct, QD 16), psync (direct),
#     sync (buffered), random writes then verify=crc32c: no error; under vfio
#     libaio once more with UPCIE_PRELOAD_REGISTER=0 (bounced buffers; uio
#     bounces always).
#  3. A misaligned O_DIRECT dd is refused (EINVAL); an inactive namespace
#     fails to open (ENXIO).
#  4. A back on nvme: the kernel's block device reads the pattern dd wrote
#     to nsid 2 through the library. A ends on the user-space driver.
# UPCIE_PRELOAD_QUICK=1 (guest-tests.sh sets it, to keep the boot within its
# bound): fio on 4 MiB instead of 16, without the sync and bounced runs.
. "$UPCIE_GUEST_LIB"

drv=$(upcie_user_driver)
A=$UPCIE_CTRL_A
PL=/upcie/preload/libupcie-preload.so
DD=/upcie/preload/dd
name="preload/$UPCIE_CONFIG on A"
quick=${UPCIE_PRELOAD_QUICK:-0}
size=16m
[ "$quick" = 1 ] && size=4m

if [ ! -f "$PL" ] || [ ! -x "$DD" ] || ! command -v fio >/dev/null; then
	t_skip "$name" "libupcie-preload.so, fio or GNU dd not staged (see the host log)"
	exit 0
fi
t_run "$name: bind A to $drv" upcie_bind "$A" "$drv" || exit 0

# pl NSID CMD...: CMD with /dev/upcie0 mapped to namespace NSID of A
pl() {
	_ns=$1
	shift
	UPCIE_PRELOAD="/dev/upcie0=$A/$_ns" LD_PRELOAD=$PL "$@"
}

# 1. dd
head -c 4194304 /dev/urandom >/tmp/pl.pat
for ns in 1 2; do
	t_run "$name: dd oflag=direct writes 4 MiB at 8 MiB to nsid $ns" \
		pl "$ns" "$DD" if=/tmp/pl.pat of=/dev/upcie0 bs=64k seek=128 oflag=direct
	t_run "$name: dd iflag=direct reads nsid $ns back" \
		pl "$ns" "$DD" if=/dev/upcie0 of=/tmp/pl.back bs=64k skip=128 count=64 iflag=direct
	t_run "$name: nsid $ns: what dd read is the pattern" cmp /tmp/pl.pat /tmp/pl.back
done

# 2. fio with verify
fio_v() { # fio_v DESC ENV ENGINE ARGS...
	_d=$1
	_env=$2
	_e=$3
	shift 3
	echo "---- $name: fio $_d"
	env $_env UPCIE_PRELOAD="/dev/upcie0=$A/1" LD_PRELOAD=$PL fio --name=pl \
		--filename=/dev/upcie0 --ioengine="$_e" --rw=randwrite --bs=4k --size=$size \
		--verify=crc32c "$@" >/tmp/fio.out 2>&1
	_rc=$?
	grep -E "err=|IOPS=|error|verify" /tmp/fio.out | sed 's/^/    /'
	if [ $_rc -eq 0 ] && grep -q "err= 0" /tmp/fio.out && ! grep -q "verify: bad" /tmp/fio.out; then
		t_pass "$name: fio $_d: written and verified"
	else
		tail -n 15 /tmp/fio.out | sed 's/^/    | /'
		t_fail "$name: fio $_d" "exit $_rc"
	fi
}
fio_v "--ioengine=libaio --direct=1 --iodepth=16" "" libaio --direct=1 --iodepth=16
fio_v "--ioengine=psync --direct=1" "" psync --direct=1
[ "$quick" = 1 ] || fio_v "--ioengine=sync (buffered)" "" sync --size=4m
if [ "$UPCIE_CONFIG" = vfio ] && [ "$quick" != 1 ]; then
	fio_v "--ioengine=libaio --direct=1 --iodepth=16, bounced (UPCIE_PRELOAD_REGISTER=0)" \
		UPCIE_PRELOAD_REGISTER=0 libaio --direct=1 --iodepth=16
fi

# 3. refusals
t_rc "$name: dd bs=1000 oflag=direct on 512 B blocks: EINVAL" nonzero "Invalid argument" \
	pl 1 "$DD" if=/tmp/pl.pat of=/dev/upcie0 bs=1000 count=1 oflag=direct
t_rc "$name: an inactive namespace: ENXIO, named" nonzero "no active namespace 9.*|No such device or address" \
	pl 9 "$DD" if=/dev/upcie0 of=/dev/null bs=4k count=1

# 4. the kernel reads what dd wrote through the library
if t_run "$name: A back on nvme" upcie_bind "$A" nvme; then
	if dev=$(upcie_blockdev "$A" 2); then
		t_run "$name: the kernel ($dev) reads the pattern dd wrote to nsid 2" sh -c \
			"dd if=$dev of=/tmp/pl.kernel bs=65536 skip=128 count=64 2>/dev/null &&
			 cmp /tmp/pl.pat /tmp/pl.kernel"
	else
		t_fail "$name: the kernel reads the pattern" "no block device for nsid 2"
	fi
fi
upcie_bind "$A" "$drv"
