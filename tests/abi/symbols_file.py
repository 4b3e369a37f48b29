#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The version map and the Debian symbols file agree with the library (TAP).

    symbols_file.py SOURCE_ROOT LIBRARY.so.X.Y.Z

  - lib/libupcie.map names every exported symbol: no wildcard outside
    "local: *;"
  - debian/libupcie0.symbols lists the same symbols, each with the node
    the map puts it in, and no pattern
  - the library exports exactly those symbols, at those nodes
  - dpkg-gensymbols -c4 accepts the symbols file against the library, and
    rejects it with one symbol line taken out (a new symbol nobody listed)
    and with a line for a symbol the library lacks (a removed function):
    what a package build does, so a change to the ABI cannot pass unseen.
    Skipped, saying so, without dpkg-gensymbols (dpkg-dev).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from tap import Tap  # noqa: E402


def read_map(path):
    """({symbol: node}, [wildcards in global sections])."""
    text = re.sub(r"/\*.*?\*/", "", open(path).read(), flags=re.S)
    syms, wild = {}, []
    for node, body in re.findall(r"(\w+(?:\.\w+)*)\s*\{(.*?)\}", text, flags=re.S):
        scope = "global"
        for tok in re.findall(r"[^\s;]+:|[^\s;]+", body):
            if tok.endswith(":"):
                scope = tok[:-1]
                continue
            if scope != "global":
                continue
            if any(c in tok for c in "*?["):
                wild.append(f"{node}: {tok}")
            else:
                syms[tok] = node
    return syms, wild


def read_symbols(path):
    """({symbol: (node, version)}, [pattern lines])."""
    syms, patterns = {}, []
    for line in open(path):
        if not line.startswith(" "):
            continue  # header, "* field", comment
        entry = line.split()
        if entry[0].startswith("("):
            patterns.append(line.strip())
            continue
        name, _, node = entry[0].partition("@")
        syms[name] = (node, entry[1] if len(entry) > 1 else "")
    return syms, patterns


def exported(lib):
    p = subprocess.run(["nm", "-D", "--defined-only", lib], text=True, capture_output=True)
    out = {}
    for ln in p.stdout.splitlines():
        f = ln.split()
        if len(f) >= 3 and f[1] != "A":
            name, _, node = f[2].partition("@@")
            out[name] = node
    return out


def gensymbols(root, lib, symfile, version, workdir):
    """dpkg-gensymbols -c4 of lib against symfile; (returncode, output)."""
    p = subprocess.run(["dpkg-gensymbols", "-plibupcie0", "-v" + version, "-e" + lib,
                        "-I" + symfile, "-O" + os.path.join(workdir, "out.symbols"), "-c4"],
                       cwd=root, text=True, capture_output=True)
    return p.returncode, p.stdout + p.stderr


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    root, lib = os.path.abspath(argv[0]), os.path.abspath(argv[1])
    tap = Tap()
    mapfile = os.path.join(root, "lib", "libupcie.map")
    symfile = os.path.join(root, "debian", "libupcie0.symbols")
    msyms, wild = read_map(mapfile)
    tap.ok(bool(msyms) and not wild, f"lib/libupcie.map names {len(msyms)} symbols, no wildcard",
           detail="wildcards: " + ", ".join(wild))
    dsyms, patterns = read_symbols(symfile)
    dnames = {k: v[0] for k, v in dsyms.items() if not k.startswith("UPCIE_")}
    tap.ok(not patterns, "debian/libupcie0.symbols has no pattern", detail="\n".join(patterns))
    diff = [f"{s}: map {msyms.get(s)}, symbols file {dnames.get(s)}"
            for s in sorted(set(msyms) | set(dnames)) if msyms.get(s) != dnames.get(s)]
    tap.ok(not diff, "the symbols file lists the map's symbols at the map's nodes",
           detail="\n".join(diff))
    nodes = sorted(set(msyms.values()))
    missing = [n for n in nodes if n not in dsyms]
    tap.ok(not missing, f"the symbols file lists the nodes {' '.join(nodes)}",
           detail="missing: " + " ".join(missing))
    exp = exported(lib)
    diff = [f"{s}: exported {exp.get(s)}, map {msyms.get(s)}"
            for s in sorted(set(msyms) | set(exp)) if msyms.get(s) != exp.get(s)]
    tap.ok(bool(exp) and not diff,
           f"{os.path.basename(lib)} exports exactly the map's symbols at their nodes",
           detail="\n".join(diff))

    what = ["dpkg-gensymbols -c4 accepts debian/libupcie0.symbols",
            "dpkg-gensymbols -c4 fails when a symbol of the library is not listed",
            "dpkg-gensymbols -c4 fails when a listed symbol is gone from the library"]
    if not shutil.which("dpkg-gensymbols") or not os.path.isfile(
            os.path.join(root, "debian", "control")):
        for w in what:
            tap.skip(w, "dpkg-gensymbols (dpkg-dev) or debian/control missing")
    else:
        lines = open(symfile).read().splitlines(keepends=True)
        # dpkg-gensymbols reports a listed symbol as gone only when the
        # version being built is above the symbol's: check as the next
        # release's build would.
        newest = max((v[1] for v in dsyms.values()),
                     key=lambda v: [int(x) for x in re.findall(r"\d+", v)])
        version = newest + "+abicheck"
        with tempfile.TemporaryDirectory() as tmp:
            rc, out = gensymbols(root, lib, symfile, version, tmp)
            tap.ok(rc == 0, what[0], detail=out)
            # A symbol of the library without its line: as if it was added
            # to the map and exported, and nobody listed it.
            victim = next(i for i, ln in enumerate(lines) if ln.startswith(" upcie_"))
            doctored = os.path.join(tmp, "unlisted.symbols")
            with open(doctored, "w") as f:
                f.writelines(lines[:victim] + lines[victim + 1:])
            rc, out = gensymbols(root, lib, doctored, version, tmp)
            gone = lines[victim].split()[0]
            tap.diag("\n".join(ln for ln in out.splitlines() if not ln.startswith(" ")))
            tap.ok(rc != 0 and "+" + lines[victim].rstrip() in out,
                   f"{what[1]} ({gone} taken out)", why=f"dpkg-gensymbols exit {rc}")
            # A listed symbol the library does not have: a removed function.
            node = sorted(set(msyms.values()))[0]
            doctored = os.path.join(tmp, "removed.symbols")
            with open(doctored, "w") as f:
                f.writelines(lines + [f" upcie_removed_fn@{node} {newest}\n"])
            rc, out = gensymbols(root, lib, doctored, version, tmp)
            tap.diag("\n".join(ln for ln in out.splitlines() if not ln.startswith(" ")))
            tap.ok(rc != 0 and "#MISSING" in out and "upcie_removed_fn" in out,
                   f"{what[2]} (upcie_removed_fn@{node} listed)", why=f"dpkg-gensymbols exit {rc}")
    return tap.done()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
