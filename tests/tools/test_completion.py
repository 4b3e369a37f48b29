#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Bash completion of devbind and hugepages, typed into an interactive bash
in a pseudo-terminal: the line is completed with TAB and run, and the
command (a shell function standing in for the tool) prints its arguments.

usage: test_completion.py DEVBIND_BASH HUGEPAGES_BASH

The fake sysfs tree holds two PCI functions and two hugepage sizes. bash's
default COMP_WORDBREAKS holds ':', which splits a PCI address into pieces
unless the completion function puts them back together.
"""
import os
import pty
import select
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from tap import Tap, skip_all  # noqa: E402

tap = Tap()


def check(cond, what, detail=""):
    """One TAP test point; the detail of a failure as comments."""
    tap.ok(cond, what, detail=detail)


class Shell:
    def __init__(self, rcfile):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "dumb",
                   "INPUTRC": "/dev/null", "HOME": os.path.dirname(rcfile)}
            os.execvpe("bash", ["bash", "--noprofile", "--rcfile", rcfile, "-i"], env)
        self.buf = b""

    def read_until(self, marker, limit=30.0):
        # A guard against a hung shell, not a timing assertion.
        end = time.monotonic() + limit
        while marker not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                return None
            if not data:
                return None
            self.buf += data
        out, _, self.buf = self.buf.partition(marker)
        return out.decode(errors="replace")

    def complete_and_run(self, text):
        """Type text, TAB, Enter; the arguments the line ran with."""
        os.write(self.fd, text.encode() + b"\t\n")
        out = self.read_until(b"END>")
        if out is None:
            return None
        return [l.split("<", 1)[1].rstrip(">") for l in out.replace("\r", "").split("\n")
                if l.startswith("ARG<")]

    def close(self):
        os.write(self.fd, b"exit\n")
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        os.close(self.fd)


def main():
    devbind_bash, hugepages_bash = sys.argv[1], sys.argv[2]
    if not shutil.which("bash"):
        skip_all("no bash")
    tmp = tempfile.mkdtemp(prefix="completion-test.")
    try:
        sysfs = os.path.join(tmp, "sys")
        for bdf in ["0000:00:03.0", "0000:01:00.0"]:
            os.makedirs(os.path.join(sysfs, "bus/pci/devices", bdf))
        for kb in [2048, 1048576]:
            os.makedirs(os.path.join(sysfs, f"kernel/mm/hugepages/hugepages-{kb}kB"))
        rc = os.path.join(tmp, "bashrc")
        with open(rc, "w") as f:
            f.write("PS1='$ '\n"
                    "bind 'set bell-style none' 2>/dev/null\n"
                    f". '{devbind_bash}'\n. '{hugepages_bash}'\n"
                    # Stand-ins for the tools: print each argument, then a marker.
                    "devbind() { printf 'ARG<%s>\\n' \"$@\"; echo 'END''>'; }\n"
                    "hugepages() { devbind \"$@\"; }\n"
                    "echo 'READY''>'\n")
        sh = Shell(rc)
        if sh.read_until(b"READY>") is None:
            check(False, "interactive bash starts", sh.buf.decode(errors="replace"))
            return 1
        root = f"--sysfs-root {sysfs}"
        cases = [
            (f"devbind {root} bind vfio-pci 0000:00:0", "0000:00:03.0",
             "a PCI address after ':' completes whole"),
            (f"devbind {root} unbind 0000:01", "0000:01:00.0",
             "a PCI address completes from its bus"),
            (f"devbind {root} restore 0000:00:03", "0000:00:03.0",
             "a PCI address completes from its slot"),
            (f"devbind {root} bind vfio-pci 0000:00:03.0 0000:01:", "0000:01:00.0",
             "a second PCI address completes"),
            (f"devbind {root} bind vfio", "vfio-pci", "a driver completes"),
            (f"devbind {root} unbind all-", "all-nvme", "all-nvme completes"),
            ("devbind --dry", "--dry-run", "an option completes"),
            (f"hugepages {root} setup --count 1 --size 1", "1G", "a hugepage size completes"),
            ("devbind sta", "status", "the status command completes"),
            ("devbind persi", "persist", "the persist command completes"),
            (f"devbind {root} persist vfio-pci 0000:01:0", "0000:01:00.0",
             "persist completes a PCI address"),
            (f"devbind {root} unpersist al", "all", "unpersist completes all"),
            ("devbind --user nobod", "nobody", "--user completes a user name"),
            ("hugepages setup --count 1 --pers", "--persist", "hugepages --persist completes"),
            ("devbind list-pers", "list-persisted", "the list-persisted command completes"),
            ("devbind --den", "--deny", "--deny completes"),
            ("devbind --allo", "--allow", "--allow completes"),
            (f"devbind {root} --deny 0000:01:0", "0000:01:00.0", "--deny completes a PCI address"),
            ("hugepages mount --dry", "--dry-run", "hugepages mount --dry-run completes"),
            ("devbind noio", "noiommu", "the noiommu command completes"),
            ("devbind noiommu of", "off", "noiommu off completes"),
            ("devbind --noio", "--noiommu", "--noiommu completes"),
            (f"devbind {root} bind --noiommu vf", "vfio-pci", "bind --noiommu completes vfio-pci"),
        ]
        for text, want, what in cases:
            args = sh.complete_and_run(text)
            if args is None:
                check(False, what, "the shell did not answer:\n" + sh.buf.decode(errors="replace"))
                break
            check(args and args[-1] == want, f"{what}: {want}", f"typed: {text}<TAB>\nran with: {args}")
        sh.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
