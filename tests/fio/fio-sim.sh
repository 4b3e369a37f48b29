#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Run Debian's fio with the libupcie engine on a device and check fio's JSON
# output (err=0 and the number of I/Os each job did) and the engine's
# refusals (bad filename, processes instead of threads, more jobs than the
# controller grants queue pairs).
#
#   tests/fio/fio-sim.sh ENGINE.so [DEVICE] [QUEUES]
#
# DEVICE defaults to 'sim' (the emulated controller in the library; 16
# queue pairs); in the QEMU guest it is a PCI address in fio's form
# (0000.00.04.0), QUEUES the queue pairs that controller grants.
# Exit status 0 when every check passed.
set -uo pipefail

engine=${1:?usage: fio-sim.sh ENGINE.so [DEVICE] [QUEUES]}
dev=${2:-sim}
queues=${3:-16}
fio=${FIO:-fio}
command -v "$fio" >/dev/null || { echo "fio-sim: no fio binary" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

# run NAME EXPECT_RC fio-args...: fio's JSON in NAME.json, stderr in NAME.err.
run() {
	local name=$1 want=$2 rc
	shift 2
	"$fio" --thread --ioengine="external:$engine" --filename="$dev" --output-format=json \
		--output="$name.json" --name="$name" "$@" 2>"$name.err"
	rc=$?
	if [ "$want" = 0 ] && [ "$rc" != 0 ]; then
		bad "$name" "fio exit status $rc: $(head -c 600 "$name.err")"
		return 1
	fi
	if [ "$want" != 0 ] && [ "$rc" = 0 ]; then
		bad "$name" "fio succeeded where it should have failed"
		return 1
	fi
	return 0
}

# check NAME PYTHON-EXPR: jobs = fio's job list; r/w/t/s(j) = I/O counts.
check() {
	local name=$1 expr=$2 out
	out=$(python3 - "$name.json" "$expr" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
d = json.loads(text[text.index("{"):])
jobs = d["jobs"]
r = lambda j: j["read"]["total_ios"]
w = lambda j: j["write"]["total_ios"]
t = lambda j: j["trim"]["total_ios"]
s = lambda j: j["sync"]["total_ios"]
errs = [j["error"] for j in jobs]
ok = eval(sys.argv[2])
print("ok" if ok else "jobs: " + "; ".join(
    "err=%d r=%d w=%d t=%d" % (j["error"], r(j), w(j), t(j)) for j in jobs))
PY
	)
	if [ "$out" = ok ]; then ok "$name"; else bad "$name" "${out:-no JSON}"; fi
}

# Messages on stderr: check_err NAME REGEX
check_err() {
	if grep -Eq "$2" "$1.err"; then ok "$1 (message)"; else
		bad "$1" "stderr lacks /$2/: $(head -c 600 "$1.err")"
	fi
}

run randread 0 --rw=randread --bs=4k --iodepth=16 --size=8m &&
	check randread 'errs == [0] and r(jobs[0]) == 2048'
run randwrite-verify 0 --rw=randwrite --bs=4k --iodepth=16 --size=8m --verify=crc32c \
	--do_verify=1 &&
	check randwrite-verify 'errs == [0] and w(jobs[0]) == 2048 and r(jobs[0]) == 2048'
run randrw 0 --rw=randrw --bs=8k --iodepth=8 --size=8m &&
	check randrw 'errs == [0] and r(jobs[0]) + w(jobs[0]) == 1024'
run trim 0 --rw=randtrim --bs=64k --iodepth=4 --size=8m &&
	check trim 'errs == [0] and t(jobs[0]) == 128'
# Written, read back, trimmed, read back as zeros (the namespaces report
# deallocated blocks as zeros): four jobs in turn on one controller.
p="--bs=64k --size=1m --verify=pattern"
# shellcheck disable=SC2086
run trim-zero 0 $p --rw=write --verify_pattern=0x5a --do_verify=0 \
	--name=check --stonewall $p --rw=read --verify_pattern=0x5a --verify_only=1 \
	--name=trim --stonewall $p --rw=trim \
	--name=zero --stonewall $p --rw=read --verify_pattern=0 --verify_only=1 &&
	check trim-zero 'errs == [0] * 4 and w(jobs[0]) == 16 and r(jobs[1]) == 16 and t(jobs[2]) == 16 and r(jobs[3]) == 16'
run flush 0 --rw=write --bs=4k --iodepth=4 --size=1m --fsync=8 &&
	check flush 'errs == [0] and w(jobs[0]) == 256 and s(jobs[0]) >= 32'
run numjobs2 0 --rw=randrw --bs=4k --iodepth=8 --size=4m --numjobs=2 --offset_increment=4m &&
	check numjobs2 'errs == [0, 0] and all(r(j) + w(j) == 1024 for j in jobs)'
# bs above MDTS: the library splits, fio sees one I/O per block.
run big-bs 0 --rw=write --bs=1m --iodepth=4 --size=8m --verify=crc32c &&
	check big-bs 'errs == [0] and w(jobs[0]) == 8 and r(jobs[0]) == 8'
run nsid2 0 --rw=randread --bs=4k --iodepth=4 --size=4m --nsid=2 --dbbuf=0 --poll_batch=2 &&
	check nsid2 'errs == [0] and r(jobs[0]) == 1024'

# Refusals, each with a message that says what to do.
"$fio" --thread --ioengine="external:$engine" --filename=not-a-device --name=badname \
	--rw=read --size=1m --output-format=json --output=badname.json 2>badname.err &&
	bad badname "fio succeeded on a bad filename"
check_err badname "neither a PCI address nor 'sim'"
"$fio" --ioengine="external:$engine" --filename="$dev" --name=processes --rw=read \
	--size=1m --output-format=json --output=processes.json 2>processes.err &&
	bad processes "fio succeeded with thread=0"
check_err processes "add --thread"
run toomany 1 --rw=read --bs=4k --size=1m --numjobs=$((queues + 1))
check toomany "sorted(errs) == [0] * $queues + [28]"
check_err toomany "every I/O queue pair the controller granted \\($queues\\) is in use"
run lba-align 1 --rw=read --bs=100 --size=1m --nsid=2
check_err lba-align "multiples of the namespace's 4096-byte blocks"
if [ "$dev" = sim ]; then
	# An escaped address reaches the library whole (and names no device here).
	"$fio" --thread --ioengine="external:$engine" --filename='0000\:7f\:1f.7' --name=escaped \
		--rw=read --size=1m --output-format=json --output=escaped.json 2>escaped.err
	check_err escaped "0000:7f:1f.7: "
fi

echo "fio engine on $dev: $pass passed, $fail failed"
[ "$fail" = 0 ]
