#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The claims docs/design.md makes about lib/'s structure, as TAP:

  1. the include graph of lib/'s headers has no circle;
  2. no header includes one of a layer above it (the layer order of the
     design's table: core, pci, dma, queue, lifecycle/controller, commands);
  3. the lifecycle fields (controller state and generation, a queue's
     qstate and generation, the zombie list, the qid map) are written in
     lib/nvme/state.c only.

    tests/abi/include_graph.py SOURCE_ROOT
"""
import os
import re
import sys

top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
lib = os.path.join(top, "lib")
inc_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

# Layers, bottom up; a file's layer is the first prefix that matches.
LAYERS = [
    ("core", ["compiler.h", "log.", "page.", "version."]),
    ("pci", ["pci/"]),
    ("dma", ["dma/"]),
    ("queue", ["nvme/queue."]),
    ("lifecycle", ["nvme/state.", "nvme/nvme.h", "nvme/ctrl.", "nvme/health.", "nvme/qpair.",
                   "nvme/admin.", "nvme/ns."]),
    ("commands", ["nvme/"]),
    ("sim", ["sim/"]),
]


def layer(rel):
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(rel.startswith(p) for p in prefixes):
            return i
    return None


files = {}
for d, _, names in os.walk(lib):
    for n in names:
        if n.endswith((".c", ".h")):
            p = os.path.join(d, n)
            files[os.path.relpath(p, lib)] = open(p, encoding="utf-8").read()


def resolve(src, name):
    for cand in (os.path.normpath(os.path.join(os.path.dirname(src), name)), name):
        if cand in files:
            return cand
    return None


graph = {f: [r for r in (resolve(f, m) for m in inc_re.findall(t)) if r] for f, t in files.items()}
tests = []

# 1. circles among headers
cycle = None
state = {}


def visit(n, path):
    global cycle
    state[n] = 1
    for m in graph.get(n, []):
        if not m.endswith(".h") or cycle:
            continue
        if state.get(m) == 1:
            cycle = path + [n, m]
            return
        if not state.get(m):
            visit(m, path + [n])
    state[n] = 2


for h in sorted(f for f in files if f.endswith(".h")):
    if not state.get(h) and not cycle:
        visit(h, [])
tests.append((cycle is None, "no circle among lib/'s headers"
              + ("" if cycle is None else ": " + " -> ".join(cycle))))

# 2. no header of a lower layer includes one above it
bad = []
for f, deps in graph.items():
    lf = layer(f)
    if lf is None or not f.endswith(".h"):
        continue
    for d in deps:
        ld = layer(d)
        if ld is not None and ld > lf and LAYERS[lf][0] != "sim":
            bad.append(f"{f} includes {d}")
tests.append((not bad, "headers include only their own layer or those below"
              + ("" if not bad else ": " + "; ".join(bad))))

# 3. lifecycle fields written only in state.c
writes = re.compile(r"(?:->|\.)(state|gen|qstate|zombies|qid_used\[[^]]*\])\s*(?:=[^=]|\+\+|--|\+=|-=)")
bad = []
for f, t in files.items():
    if not f.startswith("nvme/") or f == "nvme/state.c":
        continue
    for i, line in enumerate(t.splitlines(), 1):
        code = line.split("//")[0]
        if writes.search(code) and "req->" not in code and "expect" not in code:
            bad.append(f"{f}:{i}: {line.strip()}")
tests.append((not bad, "lifecycle fields are written in lib/nvme/state.c only"
              + ("" if not bad else ": " + "; ".join(bad))))

print(f"1..{len(tests)}")
for i, (ok, what) in enumerate(tests, 1):
    print(f"{'ok' if ok else 'not ok'} {i} - {what}")
sys.exit(0 if all(ok for ok, _ in tests) else 1)
