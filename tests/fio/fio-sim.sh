#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# Run Debian's fio with the libupcie engine on a device and check fio's JSON
# output (err=0 and the number of I/Os each job did) and the engine's
# refusals (bad filename, processes instead of threads, more jobs than the
# controller grants queue pairs).
#
#   tests/fio/fio-sim.sh ENGINE.so [DEVICE [QUEUES [NSID_4K]]]
#
# DEVICE defaults to 'sim' (the emulated controller in the library, 16
# queue pairs, a 4 KiB-block namespace 2); in the QEMU guest it is a PCI
# address in fio's form (0000.00.04.0). QUEUES: the queue pairs the
# controller grants ('' skips the too-many-jobs check); NSID_4K: a
# namespace with 4 KiB blocks ('' skips the checks that need one).
# FIO_ONLY="name ..." runs only those checks; FIO names the fio binary;
# DEV2 a second controller for the checks that span two (default on the
# sim: 'sim1').
# POSIX sh (the guest has busybox). Prints TAP (tests/lib/tap.sh, or the
# copy UPCIE_TAP_SH names); exit status 0 when every check passed.
set -u
# shellcheck source=../lib/tap.sh
. "${UPCIE_TAP_SH:-$(dirname "$0")/../lib/tap.sh}"

engine=${1:?usage: fio-sim.sh ENGINE.so [DEVICE [QUEUES [NSID_4K]]]}
dev=${2:-sim}
queues=${3-16}
ns4k=${4-2}
fio=${FIO:-fio}
command -v "$fio" >/dev/null || { echo "fio-sim: no fio binary" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

ok() { tap_ok "$1"; }
want() { [ -z "${FIO_ONLY:-}" ] || case " $FIO_ONLY " in *" $1 "*) true ;; *) false ;; esac; }
bad() { tap_fail "$1" "$(echo "$2" | tr '\n' ' ' | cut -c1-300)"; }

# run NAME EXPECT_RC fio-args...: fio's JSON in NAME.json, stderr in NAME.err.
run() {
	local name=$1 expect=$2 rc
	shift 2
	"$fio" --thread --ioengine="external:$engine" --filename="$dev" --output-format=json \
		--output="$name.json" --name="$name" "$@" 2>"$name.err"
	rc=$?
	if [ "$expect" = 0 ] && [ "$rc" != 0 ]; then
		bad "$name" "fio exit status $rc: $(head -c 600 "$name.err")"
		return 1
	fi
	if [ "$expect" != 0 ] && [ "$rc" = 0 ]; then
		bad "$name" "fio succeeded where it should have failed"
		return 1
	fi
	return 0
}

# check NAME AWK-CONDITION: over fio's JSON, n = jobs; for job i (from 1)
# e[i] = its error, r[i] w[i] t[i] s[i] = reads, writes, trims, syncs done;
# z = jobs without error, enospc = jobs that failed with ENOSPC (28).
# awk, not python: the QEMU guest has busybox only.
check() {
	local name=$1 cond=$2 out
	out=$(awk '
		/"jobname" :/ { n++; k = 0; seen = 0 }
		/"error" :/ && !seen { v = $3; sub(/,/, "", v); e[n] = v + 0; seen = 1 }
		/"total_ios" :/ { v = $3; sub(/,/, "", v); k++
			if (k == 1) r[n] = v + 0; else if (k == 2) w[n] = v + 0
			else if (k == 3) t[n] = v + 0; else if (k == 4) s[n] = v + 0 }
		END {
			for (i = 1; i <= n; i++) { if (e[i] == 0) z++; if (e[i] == 28) enospc++ }
			if (n && ('"$cond"')) { print "ok"; exit }
			for (i = 1; i <= n; i++)
				printf "job %d: err=%d r=%d w=%d t=%d s=%d; ", i, e[i], r[i], w[i], t[i], s[i]
			if (!n) printf "no JSON"
		}' "$name.json" 2>&1)
	if [ "$out" = ok ]; then ok "$name"; else bad "$name" "$out"; fi
}

# Messages on stderr: check_err NAME REGEX
check_err() {
	if grep -Eq "$2" "$1.err"; then ok "$1 (message)"; else
		bad "$1" "stderr lacks /$2/: $(head -c 600 "$1.err")"
	fi
}

want randread && run randread 0 --rw=randread --bs=4k --iodepth=16 --size=8m &&
	check randread 'n == 1 && e[1] == 0 && r[1] == 2048'
want randwrite-verify && run randwrite-verify 0 --rw=randwrite --bs=4k --iodepth=16 --size=8m --verify=crc32c \
	--do_verify=1 &&
	check randwrite-verify 'n == 1 && e[1] == 0 && w[1] == 2048 && r[1] == 2048'
want randrw && run randrw 0 --rw=randrw --bs=8k --iodepth=8 --size=8m &&
	check randrw 'n == 1 && e[1] == 0 && r[1] + w[1] == 1024'
want trim && run trim 0 --rw=randtrim --bs=64k --iodepth=4 --size=8m &&
	check trim 'n == 1 && e[1] == 0 && t[1] == 128'
# Written, read back, trimmed, read back as zeros: four jobs in turn on one
# controller. Only on the sim, whose namespaces report deallocated blocks
# as zeros (DLFEAT); QEMU's only deallocate when the drive allows discard.
p="--bs=64k --size=1m --verify=pattern"
# shellcheck disable=SC2086
[ "$dev" = sim ] && want trim-zero && run trim-zero 0 $p --rw=write --verify_pattern=0x5a --do_verify=0 \
	--name=check --stonewall $p --rw=read --verify_pattern=0x5a --verify_only=1 \
	--name=trim --stonewall $p --rw=trim \
	--name=zero --stonewall $p --rw=read --verify_pattern=0 --verify_only=1 &&
	check trim-zero 'n == 4 && e[1] + e[2] + e[3] + e[4] == 0 && w[1] == 16 && r[2] == 16 && t[3] == 16 && r[4] == 16'
want flush && run flush 0 --rw=write --bs=4k --iodepth=4 --size=1m --fsync=8 &&
	check flush 'n == 1 && e[1] == 0 && w[1] == 256 && s[1] >= 16'
want numjobs2 && run numjobs2 0 --rw=randrw --bs=4k --iodepth=8 --size=4m --numjobs=2 --offset_increment=4m &&
	check numjobs2 'n == 2 && e[1] + e[2] == 0 && r[1] + w[1] == 1024 && r[2] + w[2] == 1024'
# bs above MDTS: the library splits, fio sees one I/O per block.
want big-bs && run big-bs 0 --rw=write --bs=1m --iodepth=4 --size=8m --verify=crc32c &&
	check big-bs 'n == 1 && e[1] == 0 && w[1] == 8 && r[1] == 8'
[ -n "$ns4k" ] && want nsid2 &&
	run nsid2 0 --rw=randread --bs=4k --iodepth=4 --size=4m --nsid="$ns4k" --dbbuf=0 \
		--poll_batch=2 &&
	check nsid2 'n == 1 && e[1] == 0 && r[1] == 1024'
# Completions reaped in one poll beyond what fio takes per call wait for
# its next calls (here at most 6 of up to 16, submitted 4 at a time).
want batched && run batched 0 --rw=randwrite --bs=4k --iodepth=16 --size=8m \
	--iodepth_batch_submit=4 --iodepth_batch_complete_min=2 --iodepth_batch_complete_max=6 \
	--verify=crc32c --do_verify=1 &&
	check batched 'n == 1 && e[1] == 0 && w[1] == 2048 && r[1] == 2048'
# The model stepped by the I/O threads (no model thread), two jobs on it.
[ "$dev" = sim ] && want stepped && run stepped 0 --rw=randwrite --bs=4k --iodepth=8 --size=2m \
	--numjobs=2 --offset_increment=2m --verify=crc32c --do_verify=1 --sim_stepped=1 &&
	check stepped 'n == 2 && e[1] + e[2] == 0 && w[1] + w[2] == 1024 && r[1] + r[2] == 1024'
# Stepped, every command rung in a group completes at the next poll, which
# may take only 3 of them (poll_batch): fio gets 5 at most per call.
[ "$dev" = sim ] && want stepped-batched && run stepped-batched 0 --rw=randread --bs=4k \
	--iodepth=32 --size=8m --iodepth_batch_submit=8 --iodepth_batch_complete_min=1 \
	--iodepth_batch_complete_max=5 --poll_batch=3 --sim_stepped=1 &&
	check stepped-batched 'n == 1 && e[1] == 0 && r[1] == 2048'
# Metadata and protection information on the stepped model (sim_ms,
# sim_pi, sim_extended format its namespaces): separate metadata with the
# engine's PI (pi_act=0), the controller's (pi_act=1), extended LBAs (bs
# counts data and metadata; pi_chk checks, fio's verify cannot: the PI
# bytes change after fio hashed the buffer), above MDTS, and a check that
# must fail (an application tag read back as another).
m="--sim_stepped=1 --nsid=2 --iodepth=8 --size=2m"
if [ "$dev" = sim ]; then
	# shellcheck disable=SC2086
	want md-pi && run md-pi 0 $m --sim_ms=8 --sim_pi=1 --pi_chk=GUARD,REFTAG,APPTAG \
		--md_per_io_size=64 --rw=randwrite --bs=4k --verify=crc32c --do_verify=1 &&
		check md-pi 'n == 1 && e[1] == 0 && w[1] == 512 && r[1] == 512'
	# shellcheck disable=SC2086
	want md-pract && run md-pract 0 $m --sim_ms=8 --sim_pi=2 --pi_act=1 \
		--pi_chk=GUARD,REFTAG,APPTAG --rw=randwrite --bs=8k --verify=crc32c --do_verify=1 &&
		check md-pract 'n == 1 && e[1] == 0 && w[1] == 256 && r[1] == 256'
	# shellcheck disable=SC2086
	want md-ext && run md-ext 0 $m --sim_ms=16 --sim_pi=1 --sim_extended=1 \
		--pi_chk=GUARD,REFTAG,APPTAG --rw=write --bs=4112 --size=411200 \
		--name=md-ext-read --stonewall $m --sim_ms=16 --sim_pi=1 --sim_extended=1 \
		--pi_chk=GUARD,REFTAG,APPTAG --rw=randread --bs=4112 --size=411200 &&
		check md-ext 'n == 2 && e[1] + e[2] == 0 && w[1] == 100 && r[2] == 100'
	# shellcheck disable=SC2086
	want md-big && run md-big 0 $m --sim_ms=8 --sim_pi=3 --sim_pi_first=1 \
		--pi_chk=GUARD,APPTAG --md_per_io_size=512 --rw=write --bs=256k --verify=crc32c &&
		check md-big 'n == 1 && e[1] == 0 && w[1] == 8 && r[1] == 8'
	# shellcheck disable=SC2086
	want md-apptag && run md-apptag 1 $m --sim_ms=8 --sim_pi=1 --md_per_io_size=8 \
		--rw=write --bs=4k --size=64k --apptag=0x1111 \
		--name=md-apptag-read --stonewall $m --sim_ms=8 --sim_pi=1 --md_per_io_size=8 \
		--rw=read --bs=4k --size=64k --apptag=0x2222 --pi_chk=APPTAG &&
		check_err md-apptag "Application Tag Check Error"
	# shellcheck disable=SC2086
	want md-nobuf && run md-nobuf 1 $m --sim_ms=8 --rw=read --bs=4k &&
		check_err md-nobuf "md_per_io_size"
	# shellcheck disable=SC2086
	want md-nopi && run md-nopi 1 $m --sim_ms=8 --md_per_io_size=8 --pi_act=1 --rw=read \
		--bs=4k && check_err md-nopi "not formatted with protection information"
fi
# Completion modes: the checks above run with completion=auto and no
# hipri, i.e. interrupts; here polling (hipri, as io_uring's), each mode
# outright, and hybrid with two jobs and verify.
want hipri && run hipri 0 --rw=randread --bs=4k --iodepth=16 --size=8m --hipri &&
	check hipri 'n == 1 && e[1] == 0 && r[1] == 2048'
for m in poll irq; do
	want "completion-$m" && run "completion-$m" 0 --rw=randrw --bs=4k --iodepth=8 --size=4m \
		--completion=$m &&
		check "completion-$m" 'n == 1 && e[1] == 0 && r[1] + w[1] == 1024'
done
want completion-hybrid && run completion-hybrid 0 --rw=randwrite --bs=4k --iodepth=8 --size=2m \
	--numjobs=2 --offset_increment=2m --verify=crc32c --do_verify=1 --completion=hybrid \
	--spin_us=50 &&
	check completion-hybrid 'n == 2 && e[1] + e[2] == 0 && w[1] + w[2] == 1024 && r[1] + r[2] == 1024'
# QD 1 with interrupts: every I/O waits in the library's sleep.
# wait_stats=1 logs the counters (some of the 256 reads waited).
want irq-qd1 && run irq-qd1 0 --rw=randread --bs=4k --iodepth=1 --size=1m --completion=irq \
	--wait_stats=1 &&
	check irq-qd1 'n == 1 && e[1] == 0 && r[1] == 256' &&
	if w=$(sed -n 's/^upcie-fio: .*: waits \([0-9]*\), sleeps.*/\1/p' irq-qd1.err) &&
		[ -n "$w" ] && [ "$w" -ge 1 ]; then
		ok irq-qd1-wait-stats
	else
		bad irq-qd1-wait-stats "want 'waits N' (N >= 1) in: $(grep upcie-fio irq-qd1.err)"
	fi
if want completion-bad; then
	run completion-bad 1 --rw=read --size=1m --completion=sometimes &&
		check_err completion-bad "sometimes"
fi

# Refusals, each with a message that says what to do.
if want badname; then
	"$fio" --thread --ioengine="external:$engine" --filename=not-a-device --name=badname \
		--rw=read --size=1m --output-format=json --output=badname.json 2>badname.err &&
		bad badname "fio succeeded on a bad filename"
	check_err badname "neither a PCI address nor 'sim'"
fi
if want nodev; then
	# A controller that is not there: one line that names it once.
	"$fio" --thread --ioengine="external:$engine" --filename=0000.ff.1f.7 --name=nodev \
		--rw=read --size=1m --output-format=json --output=nodev.json 2>nodev.err &&
		bad nodev "fio succeeded on a missing controller"
	line=$(grep 'upcie-fio:' nodev.err | head -n 1)
	if [ "$(printf '%s\n' "$line" | grep -o '0000:ff:1f\.7' | wc -l)" = 1 ] &&
		printf '%s\n' "$line" | grep -q 'no such PCI device'; then
		ok nodev
	else
		bad nodev "want the address once in: $line"
	fi
fi
if want processes; then
	"$fio" --ioengine="external:$engine" --filename="$dev" --name=processes --rw=read \
		--size=1m --output-format=json --output=processes.json 2>processes.err &&
		bad processes "fio succeeded with thread=0"
	check_err processes "add --thread"
fi
if [ -n "$queues" ] && want toomany; then
	run toomany 1 --rw=read --bs=4k --size=1m --numjobs=$((queues + 1))
	check toomany "n == $queues + 1 && z == $queues && enospc == 1"
	check_err toomany "every I/O queue pair the controller granted \\($queues\\) is in use"
fi
if [ -n "$ns4k" ] && want lba-align; then
	run lba-align 1 --rw=read --bs=100 --size=1m --nsid="$ns4k"
	check_err lba-align "multiples of the namespace's 4096-byte blocks"
fi
if [ "$dev" != sim ] && want stepped-device; then
	run stepped-device 1 --rw=read --bs=4k --size=1m --sim_stepped=1
	check_err stepped-device "sim_stepped=1 needs filename=sim"
fi
if [ "$dev" = sim ] && want escaped; then
	# An escaped address reaches the library whole (and names no device here).
	"$fio" --thread --ioengine="external:$engine" --filename='0000\:7f\:1f.7' --name=escaped \
		--rw=read --size=1m --output-format=json --output=escaped.json 2>escaped.err
	check_err escaped "0000:7f:1f.7: "
fi

# Several controllers in one process (shared_dma=1, the default: one DMA
# context and one heap for all of them): one job whose files are on two
# controllers, and two jobs on two controllers, with verify; shared_dma=0
# refuses the first, saying why. DEV2 names the second controller (on the
# sim: 'sim1', another emulated controller; '' skips these checks).
dev2=${DEV2-}
[ -z "$dev2" ] && [ "$dev" = sim ] && dev2=sim1
# vfio's no-IOMMU mode: its controllers cannot share a DMA context yet (the
# library refuses; the engine gives each a heap of its own and says so).
if [ -n "$dev2" ] && [ "${UPCIE_VFIO_IOMMU:-}" = noiommu ]; then
	tap_skip "span2, jobs2ctrl, span2-private" "no DMA context in vfio's no-IOMMU mode"
	dev2=
fi
# two NAME EXPECT_RC fio-args...: as run, with the args naming the files.
two() {
	local name=$1 expect=$2 rc
	shift 2
	"$fio" --thread --ioengine="external:$engine" --output-format=json \
		--output="$name.json" "$@" 2>"$name.err"
	rc=$?
	if [ "$expect" = 0 ] && [ "$rc" != 0 ]; then
		bad "$name" "fio exit status $rc: $(head -c 600 "$name.err")"
		return 1
	fi
	if [ "$expect" != 0 ] && [ "$rc" = 0 ]; then
		bad "$name" "fio succeeded where it should have failed"
		return 1
	fi
	return 0
}
if [ -n "$dev2" ]; then
	want span2 && two span2 0 --name=span2 --filename="$dev:$dev2" --rw=randwrite --bs=4k \
		--iodepth=16 --size=8m --file_service_type=roundrobin --verify=crc32c &&
		check span2 'n == 1 && z == 1 && w[1] == 2048'
	want jobs2ctrl && two jobs2ctrl 0 --rw=randrw --bs=4k --iodepth=8 --size=4m \
		--verify=crc32c --name=one --filename="$dev" --name=two --filename="$dev2" &&
		check jobs2ctrl 'n == 2 && z == 2 && w[1] > 0 && w[2] > 0'
	if want span2-private; then
		two span2-private 1 --name=span2-private --filename="$dev:$dev2" --rw=read \
			--bs=4k --size=1m --shared_dma=0
		check_err span2-private "different controllers with heaps of their own.*shared_dma=1"
	fi
fi

tap_diag "fio engine on $dev${dev2:+ and $dev2}"
tap_done
