#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# upcie-identify on the emulated controller: exit 0, the controller's
# fields, one "nsid:" entry per namespace; bad usage or a malformed
# device exits 1, an absent device 2.
# Prints TAP.
#   tests/tools/identify-sim.sh PATH_TO_UPCIE_IDENTIFY
set -u
id=$1
# A cross build runs the program through meson's exe wrapper (qemu-user).
w=${MESON_EXE_WRAPPER:-}
# shellcheck source=../lib/tap.sh
. "$(dirname "$0")/../lib/tap.sh"
check() {
	if eval "$2"; then tap_ok "$1"; else tap_fail "$1"; fi
}
out=$($w "$id" sim)
rc=$?
check "exit 0 on sim" '[ $rc = 0 ]'
check "serial number" 'echo "$out" | grep -q "^  sn: \"UPCIESIM0001\""'
check "mdts and queues" 'echo "$out" | grep -q "^  mdts: 5 " && echo "$out" | grep -q "^  io_sq_granted: 16 "'
check "two namespaces" '[ "$(echo "$out" | grep -c "^  - nsid: ")" = 2 ]'
check "512 B and 4 KiB blocks" 'echo "$out" | grep -q "lba_size: 512  #" && echo "$out" | grep -q "lba_size: 4096  #"'
check "LBA format list: ms, PI, the one in use" 'echo "$out" | grep -q "ms: 8, rp: 0, pi: capable, pi_format: 16b_guard}" && echo "$out" | grep -q "ms: 0, rp: 0, pi: none, pi_format: 16b_guard}  # in use"'
check "metadata format and capabilities" 'echo "$out" | grep -q "^    md_placement: none " && echo "$out" | grep -q "^    dpc: 0x1f "'
$w "$id" >/dev/null 2>&1
rc=$?
check "no argument: exit 1" '[ $rc = 1 ]'
err=$($w "$id" 12:34 2>&1 >/dev/null)
rc=$?
check "malformed device: exit 1 naming it" '[ $rc = 1 ] && echo "$err" | grep -q "12:34.*neither a PCI address"'
err=$($w "$id" 0000:ff:1f.7 2>&1 >/dev/null)
rc=$?
check "absent device: exit 2 with a reason" '[ $rc = 2 ] && [ -n "$err" ]'
tap_done
