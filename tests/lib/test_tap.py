#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The TAP helpers checked against each other: tap.sh and tap.py must number
results, mark failures and skips, print the plan and exit non-zero on a
failure, each the same way. Prints TAP (through tap.py itself, whose own
output is checked first in a child process).

    test_tap.py TESTS_LIB_DIR
"""
import os
import subprocess
import sys

here = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from tap import Tap  # noqa: E402

WANT = ["ok 1 - a", "not ok 2 - b # why", "ok 3 - c # SKIP d", "1..3"]
SH = f'. "{here}/tap.sh"; tap_ok a; tap_fail b why; tap_skip c d; tap_done'
PY = (f'import sys; sys.path.insert(0, "{here}"); from tap import Tap; t = Tap(); '
      't.ok(True, "a"); t.ok(False, "b", "why"); t.skip("c", "d"); sys.exit(t.done())')


def results(out):
    return [x for x in out.splitlines() if not x.startswith("#")]


tap = Tap()
for name, cmd in (("tap.sh", ["sh", "-c", SH]), ("tap.py", [sys.executable, "-c", PY])):
    p = subprocess.run(cmd, capture_output=True, text=True)
    tap.ok(results(p.stdout) == WANT, f"{name}: numbering, failure, skip and plan",
           detail=p.stdout + p.stderr)
    tap.ok(p.returncode == 1, f"{name}: a failed check exits 1 (got {p.returncode})")
p = subprocess.run(["sh", "-c", f'. "{here}/tap.sh"; tap_ok a; tap_done'], capture_output=True,
                   text=True)
tap.ok(p.returncode == 0 and results(p.stdout) == ["ok 1 - a", "1..1"],
       "tap.sh: all passed exits 0", detail=p.stdout)
p = subprocess.run(["sh", "-c", f'. "{here}/tap.sh"; tap_skip_all "no x"; echo after'],
                   capture_output=True, text=True)
tap.ok(p.returncode == 0 and p.stdout == "1..0 # SKIP no x\n", "tap.sh: skip_all stops the test",
       detail=p.stdout)
res = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"tap-results.{os.getpid()}")
try:
    sh = (f'export TAP_RESULTS={res}; . "{here}/tap.sh"; tap_ok a; '
          f'sh -c \'. "{here}/tap.sh"; tap_fail b\'; tap_ok c')
    p = subprocess.run(["sh", "-c", sh], capture_output=True, text=True)
    words = open(res).read().split() if os.path.exists(res) else []
    tap.ok(results(p.stdout) == ["ok 1 - a", "not ok 2 - b", "ok 3 - c"]
           and words == ["PASS", "FAIL", "PASS"],
           "tap.sh: TAP_RESULTS numbers across processes", detail=p.stdout + " ".join(words))
finally:
    if os.path.exists(res):
        os.unlink(res)
t2 = Tap(out=open(os.devnull, "w"))
tap.ok(t2.relay("ok 9 - x") and t2.relay("not ok 4 - y # z") and not t2.relay("# c")
       and t2.n == 2 and t2.failed == 1, "tap.py: relay renumbers results and counts failures")
sys.exit(tap.done())
