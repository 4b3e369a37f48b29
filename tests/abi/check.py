#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Checks on the library's interface and sources, as TAP (meson suite abi).

    check.py symbols LIBRARY.so
        every symbol the shared library exports starts with upcie_ (so it
        can be linked next to libnvme, SPDK or xNVMe)
    check.py headers CC CXX INCLUDE_DIR[:INCLUDE_DIR...] HEADER...
        every public header compiles on its own, as C11 and as C++11, with
        -Wall -Wextra -Werror (CXX "" skips the C++ half, visibly)
    check.py format SOURCE_ROOT
        every *.c and *.h file in git (else under the tree, build
        directories left out) is formatted with the repository's
        .clang-format
"""
import os
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from tap import Tap  # noqa: E402


def symbols(tap, lib):
    p = subprocess.run(["nm", "-D", "--defined-only", lib], text=True, capture_output=True)
    # Type A: the version nodes of the linker map (UPCIE_0.2), not symbols.
    names = [line.split()[-1] for line in p.stdout.splitlines()
             if len(line.split()) >= 3 and line.split()[1] != "A"]
    tap.ok(p.returncode == 0 and len(names) > 0, f"nm lists the exports of {os.path.basename(lib)}",
           detail=p.stderr)
    bad = [n for n in names if not n.startswith("upcie_")]
    tap.ok(not bad, f"all {len(names)} exported symbols start with upcie_",
           detail="not prefixed: " + " ".join(bad))


def headers(tap, cc, cxx, incdir, hdrs):
    langs = [("C11", shlex.split(cc), ["-std=c11", "-x", "c"]),
             ("C++11", shlex.split(cxx), ["-std=c++11", "-x", "c++"])]
    for h in hdrs:
        name = os.path.basename(h)
        for lang, compiler, flags in langs:
            what = f"<upcie/{name}> compiles alone as {lang}"
            if not compiler:
                tap.skip(what, "no C++ compiler (install g++)")
                continue
            incs = [a for d in incdir.split(os.pathsep) for a in ("-I", d)]
            p = subprocess.run(compiler + flags + ["-Wall", "-Wextra", "-Werror"] + incs +
                               ["-c", "-o", os.devnull, "-"],
                               input=f"#include <upcie/{name}>\n", text=True, capture_output=True)
            tap.ok(p.returncode == 0, what, detail=p.stderr)


def sources(root):
    if os.path.isdir(os.path.join(root, ".git")) or os.path.isfile(os.path.join(root, ".git")):
        p = subprocess.run(["git", "-C", root, "ls-files", "*.c", "*.h"], text=True,
                           capture_output=True)
        if p.returncode == 0:
            return sorted(p.stdout.split())
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith((".", "build"))]
        out += [os.path.relpath(os.path.join(d, f), root) for f in files
                if f.endswith((".c", ".h"))]
    return sorted(out)


def fmt(tap, root):
    cf = shutil.which("clang-format")
    files = sources(root)
    tap.ok(bool(files), f"{len(files)} C sources found")
    for f in files:
        what = f"{f} is formatted with .clang-format"
        if not cf:
            tap.skip(what, "clang-format not installed")
            continue
        p = subprocess.run([cf, "--dry-run", "-Werror", f], cwd=root, text=True,
                           capture_output=True)
        tap.ok(p.returncode == 0, what,
               detail=f"run: clang-format -i {f}\n{p.stderr}" if p.returncode else "")


def main(argv):
    tap = Tap()
    if len(argv) == 2 and argv[0] == "symbols":
        symbols(tap, argv[1])
    elif len(argv) >= 5 and argv[0] == "headers":
        headers(tap, argv[1], argv[2], argv[3], argv[4:])
    elif len(argv) == 2 and argv[0] == "format":
        fmt(tap, argv[1])
    else:
        sys.stderr.write(__doc__)
        return 2
    return tap.done()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
