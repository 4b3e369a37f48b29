# SPDX-License-Identifier: BSD-3-Clause
"""Host side of the QEMU guest harness (Python 3, standard library only).

One boot: build (or reuse) the initramfs, create the backing images, start
QEMU with the topology of topology.py, follow the serial console, carry out
the actions a guest script asks for (UPCIE-HOST: lines, through QMP), kill
QEMU when it overstays, and turn the console into a verdict (and TAP).

Used by run-guest (one boot), run-all (both configurations) and, through
run-guest, by meson (suite qemu), bench/run and scripts/demo.
"""
import fcntl
import glob
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import topology

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
import tap as taplib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
# The guest-side test scripts: run-guest runs one of them, and each may
# source the others from /upcie/qemu in the guest.
GUEST_TESTS = os.path.join(SRC, "tests", "qemu")
# Prepares an arm64 sysroot, kernel and busybox (a foreign architecture).
FOREIGN_ROOT = os.path.join(SRC, "scripts", "aarch64-sysroot")

# Exit statuses of a boot (run-guest's, and what bench/run and scripts/demo test).
OK, FAILED, SETUP, NO_RESULT, TIMEOUT = 0, 1, 2, 3, 124

PLAN_RE = re.compile(r"^1\.\.(\d+)")
HOST_RE = re.compile(r"UPCIE-HOST: (\S+)(?: (\S+))?")
# Kernel command line values the guest can take: no quoting on that line.
SAFE_RE = re.compile(r"^[A-Za-z0-9_.,:/-]*$")
FORWARDED = ("UPCIE_GUEST_RAW_BIND", "UPCIE_SUITE_TIMEOUT", "UPCIE_GUEST_QUICK",
             "UPCIE_MX_VARIANTS", "UPCIE_RESET_DURATION", "UPCIE_RESET_PERIOD_MS",
             "UPCIE_RESET_LOAD")


class SetupError(Exception):
    pass


class Unavailable(SetupError):
    """A prerequisite is missing and cannot be installed (not root)."""


class NotBuilt(Unavailable):
    """A guest kernel that scripts/guest-kernel builds is not in its cache:
    a skip even where guests are required (the build is not part of a run)."""


def env_int(name, default):
    v = os.environ.get(name, "")
    try:
        return int(v) if v else default
    except ValueError:
        raise SetupError(f"{name}='{v}' is not a number of seconds")


# ---------------------------------------------------------------------------
# Host prerequisites
def ensure_packages(pkgs, say):
    if not shutil.which("dpkg-query"):
        return
    missing = [p for p in pkgs if "install ok installed" not in subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], text=True, capture_output=True).stdout]
    if not missing:
        return
    if os.getuid() != 0:
        raise Unavailable(f"missing packages: {' '.join(missing)} (install them as root)")
    say(f"installing {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    inst = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    if subprocess.run(inst, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        if subprocess.run(inst, env=env, capture_output=True).returncode != 0:
            raise SetupError(f"apt-get install {' '.join(missing)} failed")


def version_key(v):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.findall(r"\d+|\D+", v)]


def allow_core():
    """In QEMU's child before exec: let a crash write its core."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass


def built_kernel(config):
    """(version, bzImage) of a configuration that boots the kernel
    scripts/guest-kernel builds; None for the distribution's kernel. Not
    built yet: Unavailable (the boot is skipped; the build takes about 20
    minutes, so no test starts it)."""
    want = topology.CONFIGS[config].kernel
    if not want:
        return None
    if os.environ.get("UPCIE_GUEST_612_SCOPE") == "off":
        raise NotBuilt(f"UPCIE_GUEST_612_SCOPE=off: the {want} guests are left out")
    p = subprocess.run([os.path.join(SRC, "scripts", "guest-kernel"), "--print"], text=True,
                       capture_output=True)
    path = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    if p.returncode != 0 or not os.path.isfile(path):
        raise NotBuilt(f"the {want} guest kernel is not built yet ({path or 'no path'}): "
                          "run scripts/guest-kernel once (about 20 minutes on 2 CPUs)")
    return f"{want}-upcie", path


class GuestRoot:
    """Where the guest's kernel, modules, busybox and shared libraries come
    from: the host itself (root '') for the host's architecture; for a
    foreign one, the arm64 kernel and busybox unpacked by
    scripts/aarch64-sysroot (root) and its sysroot (libraries, resolved by
    the arm64 loader under qemu-user)."""

    def __init__(self, arch, say):
        self.arch = arch
        self.root = ""
        self.sysroot = None
        if arch.foreign:
            # Prints DIR/guest; the sysroot is DIR/root. Idempotent, installs
            # what it needs with apt-get.
            say("preparing the arm64 kernel, busybox and sysroot (scripts/aarch64-sysroot)")
            p = subprocess.run([FOREIGN_ROOT, "guest"], text=True, capture_output=True)
            if p.returncode != 0:
                raise SetupError(f"scripts/aarch64-sysroot failed: {p.stderr.strip()[-400:]}")
            self.root = p.stdout.strip().splitlines()[-1]
            self.sysroot = os.path.join(os.path.dirname(self.root), "root")

    def kernel(self):
        """(version, vmlinuz path): UPCIE_KVER, else the newest kernel that
        has its modules."""
        kver = os.environ.get("UPCIE_KVER")
        boot, mods = f"{self.root}/boot/vmlinuz-", f"{self.root}/lib/modules"
        if not kver:
            vers = [p[len(boot):] for p in glob.glob(boot + "*")]
            vers = [v for v in vers if os.path.isfile(f"{mods}/{v}/modules.dep")]
            if not vers:
                raise Unavailable(f"no kernel: need {boot}<ver> with {mods}/<ver> "
                                  "(linux-image-amd64)")
            kver = max(vers, key=version_key)
        kernel = boot + kver
        if not os.access(kernel, os.R_OK):
            raise SetupError(f"cannot read {kernel}")
        return kver, kernel

    def busybox(self):
        if self.root:
            return f"{self.root}/bin/busybox"
        for b in ("/bin/busybox", shutil.which("busybox")):
            if b and os.access(b, os.X_OK):
                # The guest has no libc of its own: it must be the static one.
                if subprocess.run(["ldd", b], capture_output=True).returncode == 0:
                    raise SetupError(f"{b} is not static (install busybox-static)")
                return b
        raise Unavailable("busybox not found (busybox-static)")

    def libs(self, path):
        """(guest path, host file) of each shared library a binary needs."""
        if not self.sysroot:
            return [(p, p) for p in ldd_libs(["ldd", path])]
        # The arm64 loader lists them as the guest sees them; qemu-user looks
        # up each path in the sysroot first.
        self.sysroot = os.path.abspath(self.sysroot)
        cmd = ["qemu-aarch64-static", "-L", self.sysroot,
               f"{self.sysroot}/lib/ld-linux-aarch64.so.1", "--list", path]
        out = []
        for p in ldd_libs(cmd):
            if p.startswith(self.sysroot + "/"):  # the loader, named as we ran it
                out.append((p[len(self.sysroot):], p))
            else:
                out.append((p, self.sysroot + p if os.path.exists(self.sysroot + p) else p))
        return out


def check_host(arch, say):
    ensure_packages(arch.packages, say)
    for c in (arch.qemu, "cpio", "modprobe") + (() if arch.foreign else ("ldd",)):
        if not shutil.which(c):
            raise Unavailable(f"'{c}' not found")


ELF_MACHINES = {62: "x86_64", 183: "aarch64"}  # e_machine: EM_X86_64, EM_AARCH64


def build_arch(build):
    """meson's cpu_family of what the build made, from the library's ELF
    header (meson 1.0 does not record the host machine); None if unknown."""
    for lib in sorted(glob.glob(os.path.join(build, "lib", "libupcie.so*"))):
        try:
            with open(lib, "rb") as f:
                head = f.read(20)
        except OSError:
            continue
        if head[:4] == b"\x7fELF" and head[5] == 1:  # little-endian
            return ELF_MACHINES.get(int.from_bytes(head[18:20], "little"))
    return None


def check_build_arch(build, arch):
    """The build must be for the guest's architecture (meson's host machine)."""
    fam = build_arch(build)
    if fam and fam != arch.name:
        raise SetupError(f"the build in {build} is for {fam}, the guest is {arch.name}: "
                         f"use a build for {arch.name} (scripts/test makes build-test-aarch64)")


# ---------------------------------------------------------------------------
# Initramfs
def ldd_libs(cmd):
    """Shared libraries a binary needs (absolute paths), from ldd's output."""
    p = subprocess.run(cmd, text=True, capture_output=True)
    libs = []
    for line in p.stdout.splitlines():
        if "=> not found" in line:
            raise SetupError(f"{cmd[-1]} needs a library that is not found: {line.strip()}")
        m = re.search(r"=> (/\S+)", line) or re.match(r"\s*(/\S+)", line)
        if m:
            libs.append(m.group(1))
    return libs


def copy_to(src, dst, follow=True):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copy2(src, dst, follow_symlinks=follow)


def stage_modules(stage, kver, modules, root=""):
    moddir = f"{root}/lib/modules/{kver}"
    for m in modules:
        optional = m.endswith("?")
        m = m.rstrip("?")
        p = subprocess.run(["modprobe", "-d", root or "/", "-S", kver, "--show-depends", m],
                           text=True, capture_output=True)
        if p.returncode != 0:
            if optional:
                continue
            raise SetupError(f"module {m} not found for kernel {kver}")
        for line in p.stdout.splitlines():
            w = line.split()
            dst = stage + w[1][len(root):] if len(w) >= 2 else ""
            if len(w) >= 2 and w[0] == "insmod" and not os.path.exists(dst):
                copy_to(w[1], dst)
    for f in glob.glob(f"{moddir}/modules.*"):
        copy_to(f, stage + f[len(root):])


def stage_binaries(stage, build, groot):
    """Every executable under the build's examples/, tools/ and tests/ (not the
    *.p object dirs) at the same relative path under /upcie, linked from
    /upcie/bin; the library under /upcie/lib; every shared library they need
    at the host's path."""
    libs = set()
    n = 0
    for top in ("examples", "tools", "tests"):
        for d, dirs, files in os.walk(os.path.join(build, top)):
            dirs[:] = sorted(x for x in dirs if not x.endswith(".p") and x != "qemu-work")
            for f in sorted(files):
                src = os.path.join(d, f)
                if os.path.islink(src) or not os.access(src, os.X_OK):
                    continue
                rel = os.path.relpath(src, build)
                copy_to(src, f"{stage}/upcie/{rel}")
                link = f"{stage}/upcie/bin/{f}"
                if os.path.lexists(link):
                    os.unlink(link)
                os.symlink(f"/upcie/{rel}", link)
                libs.update(groot.libs(src))
                n += 1
    for f in glob.glob(f"{build}/lib/libupcie.so*"):
        if os.path.isdir(f):
            continue
        copy_to(f, f"{stage}/upcie/lib/{os.path.basename(f)}", follow=False)
        if not os.path.islink(f):
            libs.update(groot.libs(f))
    for p, src in libs:
        rel = os.path.relpath(p, build)
        copy_to(src, f"{stage}/upcie/{rel}" if not rel.startswith("..") else stage + p)
    return n


def stage_fio(stage, build, groot):
    """Debian's fio (with its shared libraries, at their host paths), the
    build's fio engine and the fio checks, when the engine was built and fio
    is installed; the guest skips its fio checks otherwise. Returns whether
    they were staged. A foreign guest has no fio: the host's is not for it."""
    engine = os.path.join(build, "fio", "libupcie-fio.so")
    fio = shutil.which("fio")
    if not fio or not os.path.exists(engine) or groot.sysroot:
        return False
    copy_to(engine, f"{stage}/upcie/fio/libupcie-fio.so")
    copy_to(os.path.join(SRC, "tests", "fio", "fio-sim.sh"), f"{stage}/upcie/fio/fio-sim.sh")
    copy_to(fio, f"{stage}/upcie/bin/fio")
    for p, src in set(groot.libs(fio) + groot.libs(engine)):
        if not os.path.exists(stage + p):
            copy_to(src, stage + p)
    return True


def stage_preload(stage, build, groot):
    """The build's libupcie-preload.so and the unmodified programs its guest
    test runs (tests/qemu/guest-preload.sh): Debian's fio and GNU dd (the
    guest's busybox is static: LD_PRELOAD cannot reach it), with their
    shared libraries. Returns whether they were staged."""
    module = os.path.join(build, "preload", "libupcie-preload.so")
    progs = [shutil.which("fio"), shutil.which("dd")]
    if not os.path.exists(module) or groot.sysroot or not all(progs):
        return False
    copy_to(module, f"{stage}/upcie/preload/libupcie-preload.so")
    copy_to(progs[0], f"{stage}/upcie/bin/fio")
    copy_to(progs[1], f"{stage}/upcie/preload/dd")
    for p, src in set(groot.libs(module) + groot.libs(progs[0]) + groot.libs(progs[1])):
        if not os.path.exists(stage + p):
            copy_to(src, stage + p)
    return True


def tree_hash(stage):
    h = hashlib.sha256()
    for d, dirs, files in os.walk(stage):
        dirs.sort()
        for f in sorted(files + [x for x in dirs if os.path.islink(os.path.join(d, x))]):
            p = os.path.join(d, f)
            h.update(os.path.relpath(p, stage).encode() + b"\0")
            if os.path.islink(p):
                h.update(b"->" + os.readlink(p).encode())
            else:
                with open(p, "rb") as fh:
                    h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()[:16]


def build_initramfs(work, build, config, script, kver, groot, say):
    arch = topology.ARCHES[topology.CONFIGS[config].arch]
    stage = os.path.join(work, "initramfs.d")
    shutil.rmtree(stage, ignore_errors=True)
    for d in ("bin", "dev", "proc", "sys", "tmp", "etc", "root", "upcie/qemu", "upcie/lib",
              "upcie/bin"):
        os.makedirs(os.path.join(stage, d))
    copy_to(groot.busybox(), f"{stage}/bin/busybox")
    copy_to(os.path.join(HERE, "guest-init.sh"), f"{stage}/init")
    os.chmod(f"{stage}/init", 0o755)
    for f in [os.path.join(HERE, "guest-lib.sh"), os.path.join(SRC, "tests", "lib", "tap.sh")] + glob.glob(
            os.path.join(GUEST_TESTS, "*.sh")):
        copy_to(f, f"{stage}/upcie/qemu/{os.path.basename(f)}")
    copy_to(script, f"{stage}/upcie/guest-script.sh")
    with open(f"{stage}/upcie/qemu/topology.env", "w") as f:
        f.write(topology.guest_env(config))
    with open(f"{stage}/etc/passwd", "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(f"{stage}/etc/group", "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    stage_modules(stage, kver, topology.modules(config), groot.root)
    nbin = stage_binaries(stage, build, groot)
    if not stage_fio(stage, build, groot):
        say("no fio engine in the build or no fio for the guest: the guest skips its fio checks")
    if not stage_preload(stage, build, groot):
        say("no libupcie-preload.so in the build, or no fio or dd: the guest skips its preload checks")

    initrd = os.path.join(work, f"initramfs-{kver}-{tree_hash(stage)}.cpio.gz")
    if os.path.exists(initrd):
        say(f"initramfs up to date ({os.path.getsize(initrd) >> 20} MiB, {nbin} project binaries)")
        return initrd
    for old in glob.glob(os.path.join(work, "initramfs-*.cpio.gz")):
        os.unlink(old)
    names = []
    for d, dirs, files in os.walk(stage):
        names += [os.path.relpath(os.path.join(d, x), stage) for x in dirs + files]
    listing = "".join(f"{n}\0" for n in ["."] + sorted(names))
    with open(initrd + ".tmp", "wb") as out:
        cpio = subprocess.Popen(["cpio", "--null", "-o", "-H", "newc", "--quiet"], cwd=stage,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        gz = subprocess.Popen(["gzip", "-1"], stdin=cpio.stdout, stdout=out)
        cpio.stdout.close()
        cpio.communicate(listing.encode())
        if gz.wait() != 0 or cpio.returncode != 0:
            raise SetupError("packing the initramfs failed (cpio | gzip)")
    os.rename(initrd + ".tmp", initrd)
    say(f"built initramfs {os.path.getsize(initrd) >> 20} MiB, {nbin} project binaries, "
        f"kernel {kver}")
    return initrd


# ---------------------------------------------------------------------------
# QMP: the host's half of the guest's requests
class QMP:
    """A QMP connection; every call on it ends within the time it is given."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        end = time.monotonic() + timeout
        while True:
            try:
                self.sock.settimeout(max(0.1, end - time.monotonic()))
                self.sock.connect(path)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        self.buf = b""
        self.events = []
        self.eof = False  # QEMU closed this connection
        self._recv(end)  # greeting
        self.cmd("qmp_capabilities", timeout=max(0.1, end - time.monotonic()))

    def _recv(self, end):
        """One message, before the monotonic time end."""
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from QEMU's monitor")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("QEMU closed the monitor")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, args=None, timeout=30):
        end = time.monotonic() + timeout
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.settimeout(timeout)
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._recv(end)
            if "event" in r:
                self.events.append(r)
            elif "return" in r or "error" in r:
                return r

    def poll_events(self):
        """Events that arrived since the last call (non-blocking)."""
        prev = self.sock.gettimeout()
        try:
            while True:
                self.sock.settimeout(0)
                try:
                    chunk = self.sock.recv(65536)
                finally:
                    self.sock.settimeout(prev)
                if not chunk:
                    self.eof = True
                    break
                self.buf += chunk
        except (BlockingIOError, OSError):
            pass
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            r = json.loads(line)
            if "event" in r:
                self.events.append(r)
        ev, self.events = self.events, []
        return ev

    def close(self):
        self.sock.close()


def qmp_value(v):
    if v in ("on", "off"):
        return v == "on"
    return v


# ---------------------------------------------------------------------------
# One boot
class Boot:
    """Boot CONFIG with SCRIPT as the guest script; output goes to OUT (a text
    stream): the console as it arrives, or TAP when tap=True."""

    def __init__(self, build, config, script, work=None, tap=False, out=sys.stdout):
        self.build = os.path.abspath(build)
        self.config = config
        self.script = script
        self.work = os.path.abspath(work or os.path.join(self.build, "qemu-work"))
        self.tap = tap
        self.out = out
        self.verbose = os.environ.get("UPCIE_GUEST_VERBOSE", "0") == "1"
        self.ioeventfd = os.environ.get("UPCIE_QEMU_IOEVENTFD") or None
        self.tapw = taplib.Tap(out) if tap else None  # the TAP stream (--tap)
        self.nfail = 0
        self.guest_plan = None
        self.guest_tests = 0
        self.begun = False
        self.summary = ""
        self.result = None
        self.qmp = None
        self.qmp_paths = []  # two monitors: the second for when the first is lost
        self.qmp_idx = 0
        self.proc = None  # the QEMU of the current boot
        self.t0 = time.monotonic()
        self.seen_init = False

    # -- output
    def say(self, msg):
        """A line of the harness's own."""
        line = f"run-guest: {msg}"
        self.emit(f"# {line}" if self.tap else line)

    def emit(self, line):
        self.out.write(line + "\n")
        self.out.flush()

    def test_point(self, ok, name):
        if not ok:
            self.nfail += 1
        if self.tap:
            self.tapw.ok(ok, name)
        elif not ok:
            self.say(f"FAIL: {name}")

    # -- console
    def console_line(self, line):
        if line.startswith("guest-init:"):
            self.seen_init = True
        if not self.begun:
            if line.startswith("UPCIE-GUEST-BEGIN"):
                self.begun = True
            if self.verbose or line.startswith("guest-init:"):
                self.emit(f"# {line}" if self.tap else line)
            return
        m = HOST_RE.search(line)
        if m:
            self.host_action(m.group(1), m.group(2))
        if line.startswith("UPCIE-GUEST-SUMMARY: "):
            self.summary = line[len("UPCIE-GUEST-SUMMARY: "):]
        elif line.startswith("UPCIE-GUEST-RESULT: "):
            self.result = line.split()[1] if len(line.split()) > 1 else "?"
        if not self.tap:
            self.emit(line)
            return
        p = PLAN_RE.match(line)
        if self.tapw.relay(line):
            self.guest_tests += 1
        elif p:
            self.guest_plan = int(p.group(1))
        else:
            self.emit(f"# {line}")

    # -- requests from the guest
    def host_action(self, verb, arg):
        ctrl = next((c for c in topology.controllers(self.config)
                     if c.qid == arg and topology.hotplug(c)), None)
        what = f"{verb} {arg or ''}".strip()
        if verb not in ("device_del", "device_add") or ctrl is None:
            hp = [c.qid for c in topology.controllers(self.config) if topology.hotplug(c)]
            self.test_point(False, f"host action '{what}': unknown (device_del or device_add "
                                   f"of {', '.join(hp) or 'no hot-pluggable controller'})")
            return
        # One deadline for the whole action, retry included, inside the
        # guest's own 60 s wait for the device: the console is not read
        # while an action runs.
        deadline = time.monotonic() + 50
        self.qmp_sent = False
        try:
            r = self.host_qmp(verb, ctrl, deadline)
        except (OSError, ValueError) as e:  # TimeoutError, ConnectionError: OSErrors
            # The monitor connection went away under us, QEMU still running
            # (seen twice: a broken pipe at device_add, once with the socket
            # file gone too): ask once more through QEMU's second monitor;
            # a second failure is the verdict.
            if self.proc is not None and self.proc.poll() is not None:
                # The guest did not wait for this action (its own bound ran
                # out), finished and powered off meanwhile.
                self.test_point(False, f"host action '{what}': QEMU exited (status "
                                       f"{self.proc.returncode}) while it was under way: {e}")
                return
            gone = [p for p in self.qmp_paths if not os.path.exists(p)]
            self.qmp_idx ^= 1
            self.say(f"host action '{what}': QMP: {e}"
                     f"{' (socket gone: ' + ', '.join(gone) + ')' if gone else ''}; "
                     f"asking through QEMU's other monitor")
            self.close_qmp()
            try:
                r = self.host_qmp_again(verb, ctrl, deadline)
            except (OSError, ValueError) as e2:
                self.test_point(False, f"host action '{what}': QMP: {e2} (after {e})")
                return
        if "error" in r:
            self.test_point(False, f"host action '{what}': {r['error'].get('desc', r['error'])}")
        else:
            self.say(f"host action '{what}' done at {time.monotonic() - self.t0:.1f}s")

    def close_qmp(self):
        if self.qmp is not None:
            try:
                self.qmp.close()
            except OSError:
                pass
            self.qmp = None

    def host_qmp_again(self, verb, ctrl, deadline):
        """host_qmp after the connection failed under it. If the command
        itself had gone out, QEMU may have carried it out with only the
        answer lost: a device_add whose id is in the tree, or a device_del
        QEMU says is under way or done, is taken as done."""
        if not self.qmp_sent:
            return self.host_qmp(verb, ctrl, deadline)
        self.qmp = QMP(self.qmp_paths[self.qmp_idx],
                       timeout=min(10.0, max(1.0, deadline - time.monotonic())))
        if verb == "device_add" and self.peripheral(ctrl.qid,
                                                    max(1.0, deadline - time.monotonic())):
            return {"return": {}}
        r = self.host_qmp(verb, ctrl, deadline)
        desc = str(r.get("error", {}).get("desc", ""))
        if verb == "device_del" and ("already in the process of unplug" in desc
                                     or "not found" in desc):
            return {"return": {}}
        return r

    def host_qmp(self, verb, ctrl, deadline):
        """One device_del or device_add through QMP, by deadline (monotonic
        seconds); returns QEMU's answer."""

        def left():
            return max(1.0, deadline - time.monotonic())

        if self.qmp is not None and self.qmp.eof:
            self.say("QEMU closed its monitor connection; connecting again")
            self.close_qmp()
        if self.qmp is None:
            self.qmp = QMP(self.qmp_paths[self.qmp_idx], timeout=min(10.0, left()))
        if verb == "device_del":
            self.qmp_sent = True
            r = self.qmp.cmd("device_del", {"id": ctrl.qid}, timeout=left())
        else:
            # The id is free once the device left QEMU's device tree
            # (/machine/peripheral), which may be well after the guest saw
            # it go (seconds on the Arm virt machine): wait for that,
            # bounded. Asked each time rather than told by DEVICE_DELETED:
            # that event comes only when the object is freed (it may come
            # late, for an older device of the same id, or be sent before
            # a reconnect). 10 s of the deadline are kept for device_add.
            end = deadline - 10
            while self.peripheral(ctrl.qid, left()) and time.monotonic() < end:
                self.report_events()
                time.sleep(0.2)
            props = topology.controller_props(ctrl, self.ioeventfd)
            args = {k: qmp_value(v) for k, v in props.items()}
            args["driver"] = "nvme"
            # The drive is shared (share-rw), so the old device still
            # holding it should not matter; should QEMU refuse all the same
            # ("Permission conflict on node ..."), retry, bounded.
            while True:
                self.qmp_sent = True
                r = self.qmp.cmd("device_add", args, timeout=left())
                desc = str(r.get("error", {}).get("desc", ""))
                if "Permission conflict" not in desc or time.monotonic() > deadline:
                    break
                self.report_events()
                time.sleep(0.5)
        return r

    def peripheral(self, qid, timeout=30):
        """Is device QID still in QEMU's tree (/machine/peripheral)?"""
        r = self.qmp.cmd("qom-list", {"path": "/machine/peripheral"}, timeout=timeout)
        return any(p.get("name") == qid for p in r.get("return", []))

    def report_events(self):
        if self.qmp is None:
            return
        for ev in self.qmp.poll_events():
            if ev.get("event") == "DEVICE_DELETED" and ev.get("data", {}).get("device"):
                self.say(f"QEMU: device {ev['data']['device']} deleted at "
                         f"{time.monotonic() - self.t0:.1f}s")

    # -- the boot
    def qemu_command(self, kernel, initrd, guest_timeout):
        k = topology.CONFIGS[self.config]
        arch = topology.ARCHES[k.arch]
        hp = env_int("UPCIE_GUEST_HUGEPAGES", 128)
        append = [f"console={arch.console}", "panic=-1", "rdinit=/init", "mitigations=off",
                  f"upcie.config={topology.backend(self.config)}",
                  f"upcie.timeout={guest_timeout}",
                  f"upcie.hugepages={hp}"]
        for v in FORWARDED:
            val = os.environ.get(v, "")
            if not val:
                continue
            if not SAFE_RE.match(val):
                raise SetupError(f"{v}='{val}': only [A-Za-z0-9_.,:/-] can reach the guest")
            append.append(f"upcie.env.{v}={val}")
        for var, val in k.env.items():
            append.append(f"upcie.env.{var}={val}")
        # The guests of the kernel scripts/guest-kernel builds: the whole
        # suite, or (interface) what differs from the 6.1 guests.
        scope = os.environ.get("UPCIE_GUEST_612_SCOPE", "") or "full"
        if scope not in ("full", "interface", "off"):
            raise SetupError(f"UPCIE_GUEST_612_SCOPE='{scope}': give full, interface or off")
        if k.kernel and scope != "full":
            append.append(f"upcie.env.UPCIE_GUEST_SCOPE={scope}")
        append += ["loglevel=7", "upcie.verbose=1"] if self.verbose else ["loglevel=3", "quiet"]
        append += list(arch.kernel_args) + list(k.kernel_args)
        self.qemu_binary = shutil.which(arch.qemu) or arch.qemu
        cmd = [arch.qemu, "-accel", "tcg,thread=multi", "-M", k.machine, "-cpu", arch.cpu,
               "-m", os.environ.get("UPCIE_QEMU_MEM", "1G"),
               "-smp", os.environ.get("UPCIE_QEMU_SMP", "2"),
               "-display", "none", "-monitor", "none",
               "-serial", f"file:{self.log}",
               "-qmp", f"unix:{self.qmp_paths[0]},server=on,wait=off",
               "-qmp", f"unix:{self.qmp_paths[1]},server=on,wait=off",
               "-no-reboot", "-nic", "none", "-vga", "none", "-nodefaults",
               "-kernel", kernel, "-initrd", initrd, "-append", " ".join(append)]
        cmd += topology.qemu_device_args(self.config, self.work, self.ioeventfd)
        cmd += os.environ.get("UPCIE_QEMU_EXTRA", "").split()
        return cmd

    def run(self):
        """Boot once; returns the exit status (OK, FAILED, SETUP, NO_RESULT,
        TIMEOUT)."""
        if self.config not in topology.CONFIGS:
            raise SetupError(f"unknown configuration '{self.config}' "
                             f"({' or '.join(topology.CONFIGS)})")
        if not os.path.isfile(self.script):
            raise SetupError(f"guest script '{self.script}' does not exist")
        arch = topology.ARCHES[topology.CONFIGS[self.config].arch]
        check_host(arch, self.say)
        check_build_arch(self.build, arch)
        self.groot = GuestRoot(arch, self.say)
        os.makedirs(self.work, exist_ok=True)
        # One guest at a time per work directory: boots share its initramfs
        # cache, images and console logs.
        lock = open(os.path.join(self.work, ".lock"), "w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return self._run_locked()
        finally:
            lock.close()

    def _run_locked(self):
        qemu_timeout = env_int("UPCIE_QEMU_TIMEOUT", 420)
        guest_timeout = env_int("UPCIE_GUEST_TIMEOUT",
                                qemu_timeout - 60 if qemu_timeout > 120 else qemu_timeout // 2)
        kver, kernel = built_kernel(self.config) or self.groot.kernel()
        initrd = build_initramfs(self.work, self.build, self.config, self.script, kver,
                                 self.groot, self.say)
        for name, size in topology.images(self.config):
            path = os.path.join(self.work, name)
            if not os.path.exists(path):
                subprocess.run(["truncate", "-s", size, path], check=True)
        self.log = os.path.join(self.work, f"console-{self.config}.log")
        # A short path: unix socket names are limited to about 100 bytes.
        tmp = tempfile.mkdtemp(prefix="upcie-qmp-")
        self.qmp_paths = [os.path.join(tmp, "qmp.sock"), os.path.join(tmp, "qmp2.sock")]
        self.qmp_idx = 0
        cmd = self.qemu_command(kernel, initrd, guest_timeout)
        # Now and then a TCG guest on a loaded host stalls or panics in the
        # kernel before /init runs. A boot that ends, or has not reached
        # /init after UPCIE_BOOT_TIMEOUT seconds, without a guest-init line
        # is started again, once; a second one, or any hang or crash after
        # /init started, fails.
        boot_timeout = env_int("UPCIE_BOOT_TIMEOUT", 150)
        try:
            for attempt in (1, 2):
                self.say(f"booting {self.config} guest (kernel {kver}, timeout {qemu_timeout}s, "
                         f"log {self.log})")
                state, qrc, elapsed = self.boot_once(cmd, qemu_timeout, boot_timeout)
                if state != "stalled" or attempt == 2:
                    break
                os.replace(self.log, f"{self.log}.stalled")
                self.say(f"the guest did not reach /init (no guest-init line "
                         f"{'within ' + str(boot_timeout) + 's' if qrc is None else 'before QEMU exited'};"
                         f" console kept as {self.log}.stalled); booting again")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        limit = qemu_timeout if state == "timeout" else boot_timeout
        return self.verdict(state, limit, qrc, elapsed)

    def boot_once(self, cmd, qemu_timeout, boot_timeout):
        """Run QEMU once, following the console. Returns (state, QEMU's exit
        status or None when killed, seconds): state is done (QEMU exited),
        timeout (killed after qemu_timeout) or stalled (no guest-init line:
        killed after boot_timeout, or QEMU exited before /init ran)."""
        open(self.log, "w").close()
        self.begun = False
        self.seen_init = False
        start = time.monotonic()
        self.t0 = start
        state = "done"
        killed = False
        with open(os.path.join(self.work, f"qemu-{self.config}.out"), "w") as qout:
            # A QEMU that dies by a signal leaves a core in the work
            # directory (when the kernel's core_pattern is a plain name):
            # qemu_tail() prints its stack, so an emulator crash is told
            # from a guest failure and can be reported.
            for old in glob.glob(os.path.join(self.work, "core*")):
                os.remove(old)
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qout,
                                    stderr=subprocess.STDOUT, cwd=self.work,
                                    preexec_fn=allow_core)
        self.proc = proc
        try:
            with open(self.log, "rb") as con:
                pending = b""
                while True:
                    done = proc.poll() is not None
                    chunk = con.read()
                    if chunk:
                        pending += chunk.replace(b"\r", b"")
                        *lines, pending = pending.split(b"\n")
                        for line in lines:
                            self.console_line(line.decode("utf-8", "replace"))
                    self.report_events()
                    if done:
                        if pending:
                            self.console_line(pending.decode("utf-8", "replace"))
                        if not self.seen_init:
                            state = "stalled"
                        break
                    waited = time.monotonic() - start
                    if waited >= qemu_timeout:
                        state, killed = "timeout", True
                        break
                    if waited >= boot_timeout and not self.seen_init:
                        state, killed = "stalled", True
                        break
                    time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self.close_qmp()
        elapsed = time.monotonic() - start
        # The console log without carriage returns, for whoever parses it later.
        with open(self.log, "rb") as f:
            text = f.read().replace(b"\r", b"")
        with open(self.log, "wb") as f:
            f.write(text)
        return state, None if killed else proc.returncode, elapsed

    def qemu_tail(self):
        """QEMU's own last words (its stdout and stderr), and the stack of
        its crash when it left a core and gdb is there."""
        with open(os.path.join(self.work, f"qemu-{self.config}.out"), errors="replace") as f:
            for line in f.read().splitlines()[-20:]:
                self.say(f"qemu: {line}")
        cores = glob.glob(os.path.join(self.work, "core*"))
        if not cores:
            return
        self.say(f"qemu: crashed; core kept as {cores[0]}")
        if shutil.which("gdb"):
            bt = subprocess.run(["gdb", "-batch", "-ex", "thread apply all bt 12",
                                 self.qemu_binary, cores[0]], capture_output=True, text=True,
                                timeout=120)
            for line in bt.stdout.splitlines():
                if line.startswith(("#", "Thread", "Program terminated")):
                    self.say(f"qemu: {line}")

    def verdict(self, state, limit, qrc, elapsed):
        c = self.config
        if state == "timeout":
            self.test_point(False, f"{c}: the guest powered off within {limit}s "
                                   f"(QEMU killed; log {self.log})")
            rc = TIMEOUT
        elif state == "stalled" and qrc is None:
            self.test_point(False, f"{c}: the guest reached /init within {limit}s, in one of "
                                   f"two boots (QEMU killed; log {self.log})")
            rc = TIMEOUT
        elif state == "stalled":
            self.test_point(False, f"{c}: the guest reached /init, in one of two boots (the "
                                   f"kernel stopped before it twice; QEMU exit {qrc}; "
                                   f"log {self.log})")
            self.qemu_tail()
            rc = NO_RESULT
        elif self.result is None:
            self.test_point(False, f"{c}: the guest reported a result (none: it crashed or never "
                                   f"ran the script; QEMU exit {qrc} after {elapsed:.0f}s; "
                                   f"log {self.log})")
            self.qemu_tail()
            rc = NO_RESULT
        else:
            if self.tap and self.guest_plan != self.guest_tests:
                self.test_point(False, f"{c}: the guest's plan (1..{self.guest_plan}) matches "
                                       f"the {self.guest_tests} results it printed")
            ok = self.result == "0"
            self.test_point(ok, f"{c}: the guest finished with result {self.result} "
                                f"({self.summary}; wall {elapsed:.0f}s)")
            rc = OK if ok and self.nfail == 0 else FAILED
        if self.tap:
            self.tapw.done()
        else:
            self.say(f"{c}: {self.summary or 'no summary'}; wall {elapsed:.0f}s")
        if rc == TIMEOUT:
            what = "power off" if state == "timeout" else "reach /init, twice,"
            sys.stderr.write(f"run-guest: {c}: TIMEOUT: the guest did not {what} within "
                             f"{limit}s; killed QEMU (log: {self.log})\n")
        elif rc != OK:
            sys.stderr.write(f"run-guest: {c}: FAILED (exit {rc}; log: {self.log})\n")
        return rc


def tap_skip(out, why):
    taplib.skip_all(why, out, exit=False)


def install_term_handler():
    """SIGTERM (meson's timeout, a CI cancel) unwinds like Ctrl-C, so the
    finally clauses kill QEMU."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)
