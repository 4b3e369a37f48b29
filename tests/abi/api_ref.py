#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Every public function has an entry in the API reference (TAP, suite abi).

    api_ref.py DOXYGEN DOXYFILE_IN LIBRARY.so STRIP_DIR[:STRIP_DIR...] HEADER...

Runs Doxygen (docs/Doxyfile.in, XML output only, into a temporary
directory) on the installed headers and reads what it understood:

  - every function declared in those headers (the static inline helpers
    included), every struct, enum and typedef has a documentation comment
    that Doxygen attached to it (a /** ... */ block before it, or /**< */
    after a field), so the HTML and man pages show what it does;
  - every symbol the shared library exports (lib/libupcie.map) is declared
    in one of the headers, with an entry: a function that is exported but
    declared nowhere public, or declared without a comment, fails;
  - Doxygen reports no documentation errors (a @param naming no parameter,
    an unknown command).

DOXYGEN "" (not installed) skips, saying so; scripts/test installs it.
"""
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "docs"))
sys.path.insert(0, os.path.join(here, "..", "lib"))
import apiref  # noqa: E402  (docs/apiref.py: the Doxyfile and how Doxygen runs)
from tap import Tap, skip_all  # noqa: E402


def exported(lib):
    p = subprocess.run(["nm", "-D", "--defined-only", lib], text=True, capture_output=True)
    if p.returncode:
        raise SystemExit(f"nm -D {lib}: {p.stderr}")
    # Type A: the version nodes of the map (UPCIE_0.2), not symbols.
    return sorted({ln.split()[-1].split("@")[0] for ln in p.stdout.splitlines()
                   if len(ln.split()) >= 3 and ln.split()[1] != "A"})


def main(argv):
    if len(argv) < 5:
        sys.stderr.write(__doc__)
        return 2
    doxygen, template, lib, strip = argv[:4]
    headers = [os.path.abspath(h) for h in argv[4:]]
    if not doxygen:
        skip_all("doxygen is not installed: apt-get install doxygen (scripts/test installs it)")
    tap = Tap()
    point = tap.ok
    with tempfile.TemporaryDirectory() as tmp:
        warnings = apiref.run_doxygen(doxygen, template, tmp, "check", strip.split(os.pathsep),
                                      headers, html=False, man=False, xml=True)
        ents = apiref.entries(os.path.join(tmp, "xml"))
    point(not warnings.strip(), "doxygen reports no documentation errors in the headers",
          detail=warnings)
    kinds = ("function", "struct", "union", "enum", "typedef")
    for kind in kinds:
        names = sorted(k for k, v in ents.items() if v[0] == kind)
        for name in names:
            _, hdr, ok = ents[name]
            point(ok, f"{kind} {name} ({hdr}) has a reference entry",
                  why=f"no /** ... */ comment attached to {name} in {hdr}")
    syms = exported(lib)
    point(bool(syms), f"{os.path.basename(lib)} exports {len(syms)} symbols")
    for s in syms:
        kind, hdr, ok = ents.get(s, (None, None, False))
        if kind is None:
            point(False, f"exported {s} is declared in an installed header",
                  why=f"{s} is exported (lib/libupcie.map) but no installed header declares it")
        else:
            point(ok, f"exported {s} is documented ({hdr})")
    return tap.done()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
