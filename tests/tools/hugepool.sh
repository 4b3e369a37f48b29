# SPDX-License-Identifier: BSD-3-Clause
# The running kernel's huge page pool, saved and put back exactly: for each
# page size the count of every NUMA node (the global count is their sum)
# and the overcommit limit. POSIX sh, sourced by the tests that change the
# pool as root and by scripts/test.
#
#   hugepool_save FILE      one "path value" line per setting
#   hugepool_restore FILE   writes each value back; non-zero when one did
#                           not take (pages in use cannot be freed)

hugepool_save() {
	for f in /sys/devices/system/node/node*/hugepages/hugepages-*/nr_hugepages \
		/sys/kernel/mm/hugepages/hugepages-*/nr_overcommit_hugepages; do
		[ -r "$f" ] && echo "$f $(cat "$f")"
	done >"$1.tmp"
	# Without per-node files (no NUMA sysfs), the global counts.
	if ! grep -q '^/sys/devices/system/node/' "$1.tmp"; then
		for f in /sys/kernel/mm/hugepages/hugepages-*/nr_hugepages; do
			[ -r "$f" ] && echo "$f $(cat "$f")"
		done >>"$1.tmp"
	fi
	mv "$1.tmp" "$1"
}

hugepool_restore() {
	rc=0
	[ -r "$1" ] || return 0
	while read -r f v; do
		[ "$(cat "$f" 2>/dev/null)" = "$v" ] && continue
		echo "$v" >"$f" 2>/dev/null
		[ "$(cat "$f" 2>/dev/null)" = "$v" ] || {
			echo "hugepool: $f is $(cat "$f" 2>/dev/null), could not put back $v" >&2
			rc=1
		}
	done <"$1"
	return $rc
}
