#!/bin/sh
# hugepages against fake sysfs and proc trees (no root needed), then, as
# root, against the running kernel (setup 8, info, clear, mount, umount),
# putting back exactly what was there, also when interrupted (see cleanup). The host part skips with a printed reason when
# not root or when the kernel grants no pages.
#
# usage: test_hugepages.sh HUGEPAGES INSTALLED_PATH

HP=${1:?usage: test_hugepages.sh HUGEPAGES [INSTALLED_PATH]}
# Where meson installs hugepages: what --persist's units must run.
INSTALLED_HP=${2:-}
T=$(mktemp -d "${TMPDIR:-/tmp}/hugepages-test.XXXXXX") || exit 1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hugepool.sh"

# As root the host part changes the running kernel's pool: whatever ends
# the script (its end, an error, SIGTERM from meson's timeout, Ctrl-C,
# SIGHUP) unmounts what it mounted and puts back exactly the pool it found
# (every size and node, overcommit), then stops. SIGKILL cannot be caught:
# then 'hugepages info' shows what is left.
pool_saved=
cleanup() {
	[ -n "${cleaned:-}" ] && return
	cleaned=1
	if grep -q " $T/mnt hugetlbfs " /proc/mounts 2>/dev/null; then
		umount "$T/mnt" || echo "# cleanup: cannot unmount $T/mnt" >&2
	fi
	if [ -n "$pool_saved" ] && ! hugepool_restore "$T/pool"; then
		echo "# cleanup: the huge page pool is not as it was (see above)" >&2
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'cleanup; exit 129' HUP
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
HP=$(wrap_exe "$HP")

S=$T/tree/sys
P=$T/tree/proc

# mksize DIR KB TOTAL FREE [RESV]: one hugepages-<KB>kB directory.
mksize() {
	d=$1/hugepages-$2kB
	mkdir -p "$d"
	echo "$3" >"$d/nr_hugepages"
	echo "$4" >"$d/free_hugepages"
	echo 0 >"$d/surplus_hugepages"
	[ -n "$5" ] && echo "$5" >"$d/resv_hugepages"
	return 0
}

mktree() {
	rm -rf "$T/tree"
	mkdir -p "$P"
	mksize "$S/kernel/mm/hugepages" 2048 16 12 2
	mksize "$S/kernel/mm/hugepages" 1048576 1 1 0
	for n in 0 1; do
		mksize "$S/devices/system/node/node$n/hugepages" 2048 8 6
		mksize "$S/devices/system/node/node$n/hugepages" 1048576 $n $n
	done
	cat >"$P/meminfo" <<-EOF
		MemTotal:       16384000 kB
		HugePages_Total:      16
		Hugepagesize:       2048 kB
	EOF
	cat >"$P/mounts" <<-EOF
		/dev/vda / ext4 rw 0 0
		hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0
		none /mnt/huge\\0401G hugetlbfs rw,relatime,pagesize=1024M 0 0
		nodefault /mnt/hdef hugetlbfs rw,relatime 0 0
		tmpfs /run tmpfs rw 0 0
	EOF
}

hp() {
	"$HP" --sysfs-root "$S" --proc-root "$P" "$@"
}

nr() {
	head -n 1 "$S/$1"
}

echo "# info"
mktree
expect_rc 0 "info" hp info
expect_text "default huge page size: 2M" "default size from meminfo"
expect_text "SIZE  NODE  TOTAL  FREE  RESERVED  SURPLUS  MOUNT" "table header"
expect_text "2M    all   16     12    2         0        /dev/hugepages" "2M totals with the mount"
expect_text "1G    1     1      1     -         0" "1G on node 1"
expect_text "/mnt/huge 1G    1G        none" "mount with an escaped space and pagesize=1024M"
expect_text "/mnt/hdef       2M" "mount without pagesize= gets the default size"
expect_text "RLIMIT_MEMLOCK:" "memlock shown"
expect_rc 0 "info --json" hp info --json
expect_json "$T/info.json" "info --json"
json_check "$T/info.json" "d['default_page_size_kb'] == 2048 and [p['size'] for p in d['page_sizes']] == ['2M', '1G']" "JSON: sizes"
json_check "$T/info.json" "d['page_sizes'][0]['total'] == 16 and d['page_sizes'][0]['free'] == 12 and d['page_sizes'][0]['reserved'] == 2 and d['page_sizes'][0]['surplus'] == 0" "JSON: 2M counters"
json_check "$T/info.json" "[n['total'] for n in d['page_sizes'][1]['nodes']] == [0, 1]" "JSON: per-node counters"
json_check "$T/info.json" "[(m['dir'], m['page_size_kb']) for m in d['mounts']] == [('/dev/hugepages', 2048), ('/mnt/huge 1G', 1048576), ('/mnt/hdef', 2048)]" "JSON: hugetlbfs mounts only, with sizes"
json_check "$T/info.json" "d['page_sizes'][1]['mount'] == '/mnt/huge 1G'" "JSON: mount per size"

echo "# setup and clear"
mktree
expect_rc 0 "setup --count 8" hp setup --count 8
expect_text "2M pages: 8" "setup reports the count"
[ "$(nr kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)" = 8 ] && ok "nr_hugepages is 8" || fail "nr_hugepages is $(nr kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)"
expect_rc 0 "setup --mem 5M (rounds up)" hp setup --mem 5M
[ "$(nr kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)" = 3 ] && ok "5M is 3 pages of 2M" || fail "5M gave $(nr kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)"
expect_rc 0 "setup --mem 1G --size 2M" hp setup --mem 1G --size 2M
[ "$(nr kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)" = 512 ] && ok "1G is 512 pages of 2M" || fail "1G gave $(nr kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)"
expect_rc 0 "setup --count 2 --size 1G" hp setup --count 2 --size 1G
[ "$(nr kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages)" = 2 ] && ok "2 pages of 1G" || fail "1G count is $(nr kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages)"
expect_rc 0 "setup --count 4 --node 1" hp setup --count 4 --node 1
[ "$(nr devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages)" = 4 ] && ok "node 1 has 4" || fail "node 1 has $(nr devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages)"
[ "$(nr devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages)" = 8 ] && ok "node 0 untouched" || fail "node 0 changed"
expect_rc 0 "clear --size 1G" hp clear --size 1G
[ "$(nr kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages)" = 0 ] && ok "1G cleared" || fail "1G not cleared"
[ "$(nr kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)" = 512 ] && ok "clear --size 1G leaves 2M" || fail "clear --size 1G touched 2M"
expect_rc 0 "clear" hp clear
expect_text "2M pages: 0" "clear reports 2M"
expect_text "1G pages: 0" "clear reports 1G"
[ "$(nr kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)" = 0 ] && ok "2M cleared" || fail "2M not cleared"

echo "# setup --persist and clear --persist"
mktree
E=$T/etc
expect_rc 1 "--persist on a fake tree without --etc-root" hp setup --count 8 --persist
expect_rc 1 "--dry-run without --persist" hp setup --count 8 --dry-run
expect_rc 1 "--persist on info" hp info --persist
expect_rc 0 "setup --persist --dry-run" hp --etc-root "$E" setup --count 8 --persist --dry-run
expect_text "dry-run: write $E/sysctl.d/80-upcie-hugepages.conf:" "dry run names the sysctl.d file"
expect_text "vm.nr_hugepages = 8" "dry run shows its content"
[ ! -e "$E" ] && [ "$(nr kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)" = 16 ] && ok "the dry run changed nothing" || fail "the dry run changed something"
expect_rc 0 "setup --count 8 --persist" hp --etc-root "$E" setup --count 8 --persist
[ "$(nr kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)" = 8 ] && ok "the pool is set now" || fail "the pool was not set"
if grep -qx "vm.nr_hugepages = 8" "$E/sysctl.d/80-upcie-hugepages.conf"; then ok "the default size goes to sysctl.d"; else fail "sysctl.d file: $(cat "$E/sysctl.d/80-upcie-hugepages.conf" 2>&1)"; fi
expect_rc 0 "setup --count 1 --size 1G --node 1 --persist" hp --etc-root "$E" setup --count 1 --size 1G --node 1 --persist
U=$E/systemd/system/upcie-hugepages-1G-node1.service
if grep -q "^ExecStart=.*hugepages setup --count 1 --size 1G --node 1$" "$U"; then ok "another size or a node gets a unit"; else fail "unit: $(cat "$U" 2>&1)"; fi
exe=$(sed -n 's/^ExecStart=\([^ ]*\) setup .*/\1/p' "$U")
if [ "$exe" = "$INSTALLED_HP" ]; then
	ok "the unit runs the installed hugepages ($INSTALLED_HP)"
else
	fail "the unit runs '$exe', want the installed '$INSTALLED_HP' (not the binary that wrote it)"
fi
[ -L "$E/systemd/system/multi-user.target.wants/upcie-hugepages-1G-node1.service" ] && ok "the unit is enabled" || fail "the unit is not enabled"
expect_text "kernel command line (hugepagesz=1G hugepages=1)" "1G pages: the kernel command line is suggested"
expect_rc 0 "setup --count 1 --size 1G --persist" hp --etc-root "$E" setup --count 1 --size 1G --persist
expect_rc 0 "clear --size 1G --persist" hp --etc-root "$E" clear --size 1G --persist
left=$(find "$E/systemd" -name '*.service')
[ -z "$left" ] && ok "clear --size 1G --persist removes both 1G units" || fail "left: $left"
[ -e "$E/sysctl.d/80-upcie-hugepages.conf" ] && ok "and keeps the 2M sysctl.d file" || fail "the 2M file is gone"
expect_rc 0 "clear --persist" hp --etc-root "$E" clear --persist
[ -z "$(find "$E" -type f -o -type l)" ] && ok "clear --persist removes every file" || fail "left: $(find "$E" -type f)"
expect_rc 1 "--user on setup" hp setup --count 2 --user nobody
expect_rc 1 "mount --user with an unknown user" hp mount "$T/m" --user no-such-user-here

echo "# bad input (nothing changes)"
mktree
before=$(snapshot "$T/tree")
expect_rc 1 "no command" hp
expect_rc 1 "unknown command" hp grow
expect_rc 1 "unknown option" hp info --bogus
expect_text "unknown option '--bogus'" "unknown long option named"
expect_rc 1 "unknown short option" hp -x info
expect_text "unknown option '-x'" "unknown short option named, not as missing a value"
no_text "needs a value" "unknown short option is not a missing value"
expect_rc 1 "--count without a value" hp setup --count
expect_text "option '--count' needs a value" "missing value named"
expect_rc 1 "setup without --count or --mem" hp setup
expect_rc 1 "setup with both --count and --mem" hp setup --count 2 --mem 4M
expect_rc 1 "zero count" hp setup --count 0
expect_text "hugepages clear" "zero count points at clear"
one_line_err "zero count"
expect_rc 1 "negative count" hp setup --count -3
one_line_err "negative count"
expect_rc 1 "non-numeric count" hp setup --count many
expect_rc 1 "count with junk" hp setup --count 8x
expect_rc 1 "zero --mem" hp setup --mem 0
# 2^64 - 1 bytes: the round-up must not wrap to 0 pages (which would empty the pool).
expect_rc 1 "--mem of 2^64 - 1 bytes" hp setup --mem 18446744073709551615
expect_text "--mem 18446744073709551615 is more than 2147483647 pages of 2M" "too large --mem named"
one_line_err "too large --mem"
expect_rc 1 "--mem of 2^64 - 1 bytes in 1G pages" hp setup --mem 18446744073709551615 --size 1G
expect_rc 1 "bad --mem suffix" hp setup --mem 4Q
expect_rc 1 "--mem above 16 EiB" hp setup --mem 16777216T
expect_text "--mem 16777216T is more than 16 EiB" "--mem overflow named as too large"
one_line_err "--mem overflow"
expect_rc 1 "--count above 2^31 - 1" hp setup --count 4294967296
expect_text "--count 4294967296 is more than 2147483647 pages" "--count too large named"
expect_rc 1 "--count above 2^64" hp setup --count 99999999999999999999
expect_text "is more than 2147483647 pages" "--count overflow named as too large"
expect_rc 1 "unknown size" hp setup --count 2 --size huge
expect_text "unknown page size 'huge'" "unknown size named"
one_line_err "unknown size"
expect_rc 2 "size the kernel does not offer" hp setup --count 2 --size 16M
expect_text "does not offer 16M pages; it offers 2M, 1G" "offered sizes listed"
one_line_err "size not offered"
expect_rc 2 "clear a size not offered" hp clear --size 64K
expect_rc 2 "node that does not exist" hp setup --count 2 --node 5
expect_text "NUMA node 5 does not exist" "missing node named"
one_line_err "missing node"
expect_rc 1 "non-numeric node" hp setup --count 2 --node first
expect_rc 1 "--json on setup" hp setup --count 2 --json
expect_rc 1 "--node on clear" hp clear --node 0
expect_rc 1 "extra argument" hp info extra
expect_rc 2 "missing sysfs root" "$HP" --sysfs-root "$T/nonexistent" --proc-root "$P" info
if [ "$before" = "$(snapshot "$T/tree")" ]; then ok "bad input changed nothing"; else fail "bad input changed the tree"; fi

echo "# huge page sizes from 1 EiB up are shown whole, in the largest unit"
mktree
mksize "$S/kernel/mm/hugepages" 1125899906842624 0 0 0
mksize "$S/kernel/mm/hugepages" 18014398509481984 0 0 0
expect_rc 0 "info with 1E and 16E page sizes" hp info
expect_text "1E    all" "1 EiB pages shown as 1E"
expect_text "16E   all" "16 EiB pages shown as 16E, not wrapped to 0"
no_text "1048576T" "no size in a smaller unit than fits"
expect_rc 2 "a size not offered lists the huge ones" hp setup --count 1 --size 4T
expect_text "it offers 2M, 1G, 1E, 16E" "offered sizes in their own units"

echo "# more than 64 NUMA nodes"
mktree
n=2
while [ $n -le 70 ]; do
	mksize "$S/devices/system/node/node$n/hugepages" 2048 0 0
	n=$((n + 1))
done
expect_rc 0 "info with 71 nodes" hp info --json
expect_json "$T/nodes.json" "info --json with 71 nodes"
json_check "$T/nodes.json" "[n['node'] for n in d['page_sizes'][0]['nodes']] == list(range(71))" "JSON: all 71 nodes, in order"
expect_rc 0 "setup on node 70" hp setup --count 4 --node 70
expect_text "2M pages on node 70: 4" "setup on node 70 reports"
[ "$(nr devices/system/node/node70/hugepages/hugepages-2048kB/nr_hugepages)" = 4 ] && ok "node 70 has 4" || fail "node 70 has $(nr devices/system/node/node70/hugepages/hugepages-2048kB/nr_hugepages)"
expect_rc 2 "node 71 still does not exist" hp setup --count 4 --node 71
mktree

# umount refuses a non-hugetlbfs mount (the path does not exist, so even a
# wrong umount(2) could do no harm).
cat >>"$P/mounts" <<-EOF
	tmpfs $T/not-huge tmpfs rw 0 0
EOF
expect_rc 3 "umount a tmpfs" hp umount "$T/not-huge"
expect_text "not hugetlbfs; refusing" "umount refusal says why"
expect_rc 2 "umount where nothing is mounted" hp umount "$T/nothing"
expect_rc 3 "mount over a tmpfs" hp mount "$T/not-huge"

echo "# mount and umount --dry-run"
before=$(snapshot "$T/tree")
expect_rc 0 "mount --dry-run" hp mount "$T/dry" --size 1G --dry-run
expect_text "dry-run: mkdir -p $T/dry" "the dry run shows the directory it would create"
expect_text "dry-run: mount -t hugetlbfs -o pagesize=1048576K hugetlbfs $T/dry" "the dry run shows the mount"
[ ! -e "$T/dry" ] && ok "mount --dry-run created nothing" || fail "mount --dry-run created $T/dry"
if [ "$(id -u)" -eq 0 ] && nobody_can_run "$HP"; then
	# The running system's /sys (nobody cannot enter $T).
	expect_rc 0 "mount --dry-run needs no root" as_nobody "$HP" mount /nonexistent/upcie-dry --dry-run
	expect_text "dry-run: mount -t hugetlbfs -o pagesize=" "the dry run as nobody shows the mount"
fi
expect_rc 0 "mount --dry-run where it is mounted already" hp mount /dev/hugepages --dry-run
expect_text "already mounted" "the dry run says it would do nothing"
expect_rc 3 "mount --dry-run over a tmpfs still refuses" hp mount "$T/not-huge" --dry-run
expect_rc 2 "mount --dry-run with a size the kernel lacks" hp mount "$T/dry" --size 16M --dry-run
expect_rc 0 "umount --dry-run" hp umount /dev/hugepages --dry-run
expect_text "dry-run: umount /dev/hugepages" "the dry run shows the umount"
if [ "$before" = "$(snapshot "$T/tree")" ]; then ok "the dry runs changed nothing"; else fail "a dry run changed the tree"; fi

if [ "$(id -u)" -ne 0 ]; then
	expect_rc 2 "setup as non-root" "$HP" setup --count 1
	expect_text "needs root" "non-root error says to run as root"
elif nobody_can_run "$HP"; then
	expect_rc 2 "setup as nobody" as_nobody "$HP" setup --count 1
	expect_text "needs root" "non-root error says to run as root"
	one_line_err "not root"
	expect_rc 2 "mount as nobody" as_nobody "$HP" mount "$T/m"
else
	skip "not-root check: running as root and cannot run $HP as nobody"
fi

echo "# host (root)"
H=/sys/kernel/mm/hugepages
# Default-size pages other processes hold: those cannot be cleared, so the
# checks below would fail for a reason that is not the tool's.
held=$(awk '/^HugePages_Total:/ { t = $2 } /^HugePages_Free:/ { f = $2 } END { print t - f }' /proc/meminfo)
if [ "$(id -u)" -ne 0 ]; then
	skip "host: not root, the running kernel's pools are left alone"
elif [ ! -d "$H" ]; then
	skip "host: the kernel has no huge pages ($H missing)"
elif [ "$held" != 0 ]; then
	skip "host: $held huge pages of the default size are in use by other processes"
else
	# One run at a time on this machine (another checkout's tests too);
	# test_hugepool.sh holds the lock for the runs it makes.
	if [ -z "${UPCIE_HUGEPOOL_LOCKED:-}" ] && command -v flock >/dev/null 2>&1 &&
		exec 9>/run/lock/upcie-hugepool.lock; then
		flock -w 300 9 || echo "# could not take /run/lock/upcie-hugepool.lock; going on"
	fi
	expect_rc 0 "host info" "$HP" info --json
	cp "$T/out" "$T/host.json"
	def=$(awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo)
	f=$H/hugepages-${def}kB/nr_hugepages
	hugepool_save "$T/pool"
	pool_saved=1
	run "$HP" setup --count 8
	if [ "$rc" -eq 2 ] && grep -q "granted" "$T/err"; then
		skip "host: the kernel granted fewer than 8 pages: $(cat "$T/err")"
	elif [ "$rc" -ne 0 ]; then
		fail "host setup --count 8: exit $rc"
		show
	else
		ok "host setup --count 8"
		expect_rc 0 "host info after setup" "$HP" info --json
		cp "$T/out" "$T/host.json"
		json_check "$T/host.json" "[p['total'] for p in d['page_sizes'] if p['size_kb'] == $def] == [8]" "host info shows 8"
		m=$T/mnt
		expect_rc 0 "host mount" "$HP" mount "$m"
		if grep -q " $m hugetlbfs " /proc/mounts; then ok "host mount in /proc/mounts"; else fail "host mount missing"; fi
		expect_rc 0 "host mount again is a no-op" "$HP" mount "$m"
		expect_text "already mounted" "second mount reports it"
		expect_rc 0 "host info with the mount" "$HP" info
		expect_text "$m" "info shows the mount"
		expect_rc 0 "host umount" "$HP" umount "$m"
		if grep -q " $m hugetlbfs " /proc/mounts; then fail "host umount left it"; umount "$m"; else ok "host umount gone from /proc/mounts"; fi
		mkdir -p "$T/etc/security"
		expect_rc 0 "host mount --user nobody" "$HP" --etc-root "$T/etc" mount "$m" --user nobody
		if grep " $m hugetlbfs " /proc/mounts | grep -q "uid=65534"; then ok "mounted for nobody (uid=65534)"; else fail "mount options: $(grep " $m " /proc/mounts)"; fi
		[ "$(stat -c %U "$m")" = nobody ] && ok "the mount is nobody's" || fail "the mount is $(stat -c %U "$m")'s"
		expect_text "nobody may lock 8M of memory" "mount --user checks memlock against the pool"
		echo "nobody - memlock unlimited" >"$T/etc/security/limits.conf"
		chown root "$m"
		expect_rc 0 "host mount --user on the existing mount" "$HP" --etc-root "$T/etc" mount "$m" --user nobody
		[ "$(stat -c %U "$m")" = nobody ] && ok "an existing mount is chowned" || fail "the mount is $(stat -c %U "$m")'s"
		expect_text "nobody: RLIMIT_MEMLOCK unlimited" "memlock from limits.conf covers the pool"
		"$HP" umount "$m" >/dev/null
		expect_rc 0 "host clear" "$HP" clear --size "${def}K"
		expect_rc 0 "host info after clear" "$HP" info --json
		cp "$T/out" "$T/host.json"
		json_check "$T/host.json" "[p['total'] for p in d['page_sizes'] if p['size_kb'] == $def] == [0]" "host info shows 0"
	fi
	if hugepool_restore "$T/pool"; then
		ok "host pool put back as it was ($(tr '\n' ' ' <"$T/pool" | sed 's,/sys/[^ ]*/\(hugepages-[0-9]*kB\)/,\1/,g'))"
	else
		fail "host pool not put back"
	fi
	pool_saved=
	exec 9>&- 2>/dev/null
fi

expect_rc 0 "--help" "$HP" --help
expect_text "Exit status: 0 ok, 1 usage error, 2 device or system error" "--help documents exit codes"

finish
