# SPDX-License-Identifier: BSD-3-Clause
# TAP for the shell tests (POSIX sh; busybox sh in the QEMU guests). Every
# shell test prints its results through these functions and nothing else:
#
#   tap_ok DESC              a check that passed
#   tap_fail DESC [WHY]      a check that failed; WHY follows a "#"
#   tap_skip DESC WHY        a check that could not run here
#   tap_check DESC CMD...    run CMD; ok when it exits 0, else not ok
#   tap_diag TEXT            a "#" comment line
#   tap_skip_all WHY         the whole test cannot run: "1..0 # SKIP WHY", exit 0
#   tap_done                 the plan ("1..N") and a summary line; returns 1
#                            when any check failed, else 0
#
# Numbers count in this shell (never call these in a subshell whose count
# is lost). Scripts that share one numbering across processes (the guest
# boot) set TAP_RESULTS to a file: each result appends its word (PASS, FAIL
# or SKIP) there, and its line count is the number.
tap_n=0
tap_failed=0
tap_skipped=0

# tap_next WORD: advance tap_n.
tap_next() {
	if [ -n "${TAP_RESULTS:-}" ]; then
		echo "$1" >>"$TAP_RESULTS"
		tap_n=$(wc -l <"$TAP_RESULTS")
		tap_n=$((tap_n + 0))
	else
		tap_n=$((tap_n + 1))
	fi
}

tap_ok() {
	tap_next PASS
	echo "ok $tap_n - $1"
}

tap_fail() {
	tap_failed=$((tap_failed + 1))
	tap_next FAIL
	echo "not ok $tap_n - $1${2:+ # $2}"
}

tap_skip() {
	tap_skipped=$((tap_skipped + 1))
	tap_next SKIP
	echo "ok $tap_n - $1 # SKIP${2:+ $2}"
}

tap_check() {
	_tap_desc=$1
	shift
	if "$@"; then tap_ok "$_tap_desc"; else tap_fail "$_tap_desc" "exit $?"; fi
}

tap_diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

tap_skip_all() {
	echo "1..0 # SKIP $1"
	exit 0
}

tap_done() {
	echo "1..$tap_n"
	echo "# $tap_n checks, $tap_failed failed, $tap_skipped skipped"
	[ "$tap_failed" -eq 0 ]
}
