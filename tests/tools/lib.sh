# Shared by the CLI tests: check counters, running a command, snapshots.
# POSIX sh. Output is TAP through tests/lib/tap.sh: ok(), fail() and skip()
# are its tap_ok, tap_fail and tap_skip; other output is a "#" comment;
# finish() prints the plan and exits non-zero when any check failed.
# shellcheck source=../lib/tap.sh
. "$(dirname "$0")/../lib/tap.sh"

ok() { tap_ok "$*"; }
fail() { tap_fail "$*"; }
skip() { tap_skip "$*"; }

# wrap_exe PROGRAM: a path that runs PROGRAM here. In a cross build meson
# runs the tests with MESON_EXE_WRAPPER set (qemu-user), which wraps only
# the test's own program: this writes a small script in $T that calls the
# built program through it. Native builds get PROGRAM back.
wrap_exe() {
	if [ -z "${MESON_EXE_WRAPPER:-}" ]; then
		echo "$1"
		return
	fi
	prog=$1 w=$T/$(basename "$1")
	# The wrapper by absolute path: some checks run with an empty PATH.
	# shellcheck disable=SC2086
	set -- $MESON_EXE_WRAPPER
	printf '#!/bin/sh\nexec %s' "$(command -v "$1")" >"$w"
	shift
	printf ' %s' "$@" "\"$prog\"" '"$@"' >>"$w"
	echo >>"$w"
	chmod 755 "$w"
	echo "$w"
}

# run CMD...: stdout to $T/out, stderr to $T/err, exit status in $rc.
run() {
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
}

show() {
	sed 's/^/#    | /' "$T/out" "$T/err"
}

# expect_rc WANT DESC CMD...
expect_rc() {
	want=$1
	desc=$2
	shift 2
	run "$@"
	if [ "$rc" = "$want" ]; then
		ok "$desc (exit $rc)"
	else
		fail "$desc: exit $rc, want $want"
		show
	fi
}

# expect_text TEXT DESC: TEXT appears in the last command's stdout or stderr.
expect_text() {
	if grep -qF -- "$1" "$T/out" "$T/err"; then
		ok "$2"
	else
		fail "$2: no '$1' in the output"
		show
	fi
}

no_text() {
	if grep -qF -- "$1" "$T/out" "$T/err"; then
		fail "$2: '$1' in the output"
		show
	else
		ok "$2"
	fi
}

# expect_file FILE CONTENT DESC: the first line of FILE.
expect_file() {
	got=$(head -n 1 "$1" 2>/dev/null)
	if [ "$got" = "$2" ]; then
		ok "$3"
	else
		fail "$3: $1 holds '$got', want '$2'"
	fi
}

# One-line error: stderr of the last command has exactly one line.
one_line_err() {
	n=$(wc -l <"$T/err")
	if [ "$n" -eq 1 ]; then
		ok "$1: one-line error"
	else
		fail "$1: $n lines on stderr"
		show
	fi
}

# Every path, link target and file content under DIR, for before/after checks.
snapshot() {
	find "$1" | LC_ALL=C sort | while read -r f; do
		if [ -L "$f" ]; then
			echo "$f -> $(readlink "$f")"
		elif [ -f "$f" ]; then
			echo "$f: $(od -An -c "$f" | tr -s ' \n' '  ')"
		else
			echo "$f/"
		fi
	done
}

# json_valid FILE
json_valid() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -m json.tool "$1" >/dev/null 2>&1
	elif command -v jq >/dev/null 2>&1; then
		jq . "$1" >/dev/null 2>&1
	else
		return 2
	fi
}

# expect_json FILE WHAT: the last command's stdout, kept as FILE, is valid JSON.
expect_json() {
	cp "$T/out" "$1"
	if json_valid "$1"; then
		ok "$2 is valid JSON"
	else
		[ $? -eq 2 ] && skip "no python3 or jq to validate JSON" || {
			fail "$2 is not valid JSON"
			show
		}
	fi
}

# json_check FILE PYEXPR DESC: PYEXPR over d = the parsed file is true.
json_check() {
	if ! command -v python3 >/dev/null 2>&1; then
		skip "$3: no python3 to inspect JSON"
		return
	fi
	if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"; then
		ok "$3"
	else
		fail "$3: ($2) is false"
		sed 's/^/#    | /' "$1"
	fi
}

# as_nobody CMD...: CMD as user nobody (needs root and setpriv).
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

# nobody_can_run PROG: as root, PROG (a path a test built) runs as nobody.
nobody_can_run() {
	command -v setpriv >/dev/null 2>&1 && as_nobody "$1" --help >/dev/null 2>&1
}

finish() {
	tap_done
}
