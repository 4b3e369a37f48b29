#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The claims docs/design.md makes about lib/'s structure, as TAP:

  1. the include graph of lib/'s headers has no circle;
  2. no file includes one of a layer above its own, and every file is in a
     layer (the order of docs/design.md's table, read from it);
  3. the lifecycle fields (controller state and generation, a queue's
     qstate and generation, the zombie list, the qid map) are written in
     lib/nvme/state.c only.

    tests/abi/include_graph.py SOURCE_ROOT
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from tap import Tap  # noqa: E402

top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
lib = os.path.join(top, "lib")
inc_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

# Layers, bottom up, from docs/design.md's table: each row's `lib/...`
# paths (a bare name is in the directory of the path before it). Admin,
# lifecycle and controller share lib/nvme/nvme.h: one layer here.
SAME = {"admin": "controller", "lifecycle": "controller"}


def read_layers(design):
    rows, started = [], False
    for line in open(design, encoding="utf-8"):
        if line.startswith("## Layers"):
            started = True
        elif started and line.startswith("## "):
            break
        elif started and line.startswith("| ") and "`lib/" in line:
            name = line.split("|")[1].strip()
            where, d = [], ""
            for item in re.findall(r"`([^`]+)`", line.split("|")[2]):
                if item.startswith("lib/"):
                    item = item[4:]
                    d = item if item.endswith("/") else os.path.dirname(item) + "/"
                    if d == "/":
                        d = ""
                    where.append(item)
                elif re.match(r"^[\w.-]+\.[ch]$", item):
                    where.append(d + item)
            rows.append((SAME.get(name, name), where))
    names = []
    for n, _ in rows:
        if n not in names:
            names.append(n)
    return [(n, [w for m, ws in rows if m == n for w in ws]) for n in names]


LAYERS = read_layers(os.path.join(top, "docs", "design.md"))


def layer(rel):
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (rel == p or (p.endswith("/") and rel.startswith(p))) and (
                    best is None or len(p) > best[1]):
                best = (i, len(p))
    return None if best is None else best[0]


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

# 2. no file includes one of a layer above its own; every file of lib/ is
# in the table
bad = [f"{f} is in no layer of docs/design.md" for f in sorted(files) if layer(f) is None]
for f, deps in sorted(graph.items()):
    lf = layer(f)
    for d in deps:
        ld = layer(d)
        if lf is not None and ld is not None and ld > lf:
            bad.append(f"{f} ({LAYERS[lf][0]}) includes {d} ({LAYERS[ld][0]})")
tests.append((not bad, "every file of lib/ includes only its own layer or those below"
              + ("" if not bad else ": " + "; ".join(bad))))

# 3. lifecycle fields written only in state.c: plain and compound
# assignments, prefix and postfix ++/--, and the address of a field handed
# to an __atomic_* or mem* call, over the file's text with lines joined
# (a write split over two lines counts). Writes through a pointer the
# field's address was stored in are not seen: state.c never hands one out.
FIELDS = r"(?:state|gen|qstate|zombies|qid_used)"
PATH = r"\w+(?:(?:->|\.)\w+)*?"  # c, c->admin, ...
LVAL = r"(?:->|\.)" + FIELDS + r"\b(?:\s*\[[^]]*\])?"
writes = re.compile(
    r"(?:" + LVAL + r"\s*(?:[-+*/|&^]|<<|>>)?=(?!=)"      # =, +=, |=, ...
    + r"|" + LVAL + r"\s*(?:\+\+|--)"                     # x++
    + r"|(?:\+\+|--)\s*" + PATH + LVAL                      # ++x
    + r"|\b(?:__atomic_(?!load)\w+|mem(?:set|cpy|move))\s*\(\s*&?\s*" + PATH + LVAL + r")")
comment = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
bad = []
for f, t in files.items():
    if not f.startswith("nvme/") or f == "nvme/state.c":
        continue
    code = comment.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), t)
    for m in writes.finditer(code):
        line = code.count("\n", 0, m.start()) + 1
        bad.append(f"{f}:{line}: {' '.join(m.group(0).split())}")
tests.append((not bad, "lifecycle fields are written in lib/nvme/state.c only"
              + ("" if not bad else ": " + "; ".join(bad))))

tap = Tap()
for ok, what in tests:
    tap.ok(ok, what)
sys.exit(tap.done())
