# SPDX-License-Identifier: BSD-3-Clause
"""TAP for the Python tests and harnesses. Every Python test prints its
results through a Tap and nothing else:

    tap = Tap()
    tap.ok(cond, "what was checked", why="shown after '#' when it failed",
           detail="lines shown as comments when it failed")
    tap.skip("what could not run", "why")
    tap.diag("a comment")
    sys.exit(tap.done())          # the plan; 1 when a check failed

    tap.relay(line)               # a result line of another TAP producer,
                                  # renumbered into this stream
    skip_all("why")               # the whole test cannot run here: exit 0

Import it with sys.path.insert(0, <source root>/tests/lib).
"""
import re
import sys

RESULT_RE = re.compile(r"^(not ok|ok)\b(?:\s+\d+)?(?:\s*-)?\s*(.*)$")


class Tap:
    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.n = 0
        self.failed = 0
        self.skipped = 0

    def _line(self, text):
        self.out.write(text + "\n")
        self.out.flush()

    def ok(self, cond, desc, why=None, detail=""):
        """One check; returns cond, so a caller can go on or stop. On a
        failure, detail (at most 40 lines) follows as comments."""
        self.n += 1
        if cond:
            self._line(f"ok {self.n} - {desc}")
        else:
            self.failed += 1
            self._line(f"not ok {self.n} - {desc}" + (f" # {why}" if why else ""))
            for line in str(detail or "").strip().splitlines()[:40]:
                self._line(f"#   {line}")
        return bool(cond)

    def relay(self, line):
        """A result line from another TAP stream ("ok 3 - x", "not ok 4 - y
        # why"), numbered as this stream's next; False when it is no result
        line."""
        m = RESULT_RE.match(line)
        if not m:
            return False
        self.n += 1
        if m.group(1) == "not ok":
            self.failed += 1
        elif "# SKIP" in m.group(2):
            self.skipped += 1
        self._line(f"{m.group(1)} {self.n} - {m.group(2)}")
        return True

    def skip(self, desc, why):
        self.n += 1
        self.skipped += 1
        self._line(f"ok {self.n} - {desc} # SKIP {why}")

    def diag(self, text):
        for line in str(text).splitlines() or [""]:
            self._line(f"# {line}")

    def done(self):
        """Print the plan; the exit status: 1 when a check failed, else 0."""
        self._line(f"1..{self.n}")
        return 1 if self.failed else 0


def skip_all(why, out=None, exit=True):
    """The whole test cannot run here: a TAP skip, then exit 0 (unless
    exit=False: the caller ends on its own)."""
    out = out or sys.stdout
    out.write(f"1..0 # SKIP {why}\n")
    out.flush()
    if exit:
        sys.exit(0)
