#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The QEMU guest topology as data: architectures, configurations, bridges,
NVMe controllers and their namespaces.

Everything else derives from these tables: the QEMU command line and the
backing images (guest.py), the environment file the guest scripts source
(/upcie/qemu/topology.env, see guest_env()), and the topology section of
qemu/README.md (readme_section()).

    topology.py readme            print the README's topology section
    topology.py check-readme FILE exit 1 when FILE's section differs
    topology.py update-readme FILE  rewrite FILE's section in place
    topology.py env CONFIG        print the guest environment file
    topology.py configs [ARCH]    the configuration names, of one architecture
                                  (meson's cpu_family) if given (meson reads them)

To add a configuration (another machine or architecture), add an Arch if
needed and a Config naming it; Config.exclude drops controllers the machine
cannot host (for example devices behind a pci-bridge under an SMMU).
"""
import dataclasses
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
from tap import Tap  # noqa: E402


@dataclass(frozen=True)
class Namespace:
    nsid: int
    lba: int     # logical (and physical) block size, bytes
    size: str    # backing image size (truncate -s syntax: 32M, 1G)
    # nvme-ns metadata properties: ms (bytes per block), mset (1: extended
    # LBAs), pi (type 1-3), pil (1: PI in the first metadata bytes)
    md: Tuple[Tuple[str, int], ...] = ()

    def describe(self):
        md = "".join(f", {k}={v}" for k, v in self.md)
        return f"nsid {self.nsid}: {self.lba} B blocks{md}, {self.size}"


@dataclass(frozen=True)
class Controller:
    label: str                       # A, B, ...: UPCIE_CTRL_<label> in the guest
    namespaces: Tuple[Namespace, ...]
    options: Dict[str, object] = field(default_factory=dict)  # extra nvme properties
    bridge: Optional[str] = None     # Bridge.id it sits behind (None: root bus)
    addr: Optional[str] = None       # slot.function on that bus
    xcheck: bool = False             # namespaces used by the kernel/libupcie cross-check
    note: str = ""

    @property
    def serial(self):
        return f"upcie{self.label}0001"

    @property
    def qid(self):
        """QEMU device id (the name device_del takes)."""
        return f"nvme{self.label}"

    def drive(self, ns):
        return f"nvm{self.label}{ns.nsid}"

    def image(self, ns):
        return f"nvme{self.label}-ns{ns.nsid}.img"


@dataclass(frozen=True)
class Bridge:
    id: str
    driver: str                      # QEMU device: pci-bridge, pcie-root-port
    props: Dict[str, object]
    hotplug: bool = False            # controllers behind it can be unplugged and replugged
    note: str = ""


@dataclass(frozen=True)
class Arch:
    name: str                        # meson's cpu_family of a build for it
    qemu: str                        # QEMU system emulator
    cpu: str
    console: str                     # guest serial console device
    # Kernel modules the guest loads, in order; "?" suffix: optional (absent
    # or built into another module on some kernels).
    modules: Tuple[str, ...]
    kernel_args: Tuple[str, ...] = ()  # for every configuration of this arch
    # Host packages the boot needs; for a foreign architecture the kernel,
    # its modules and busybox come unpacked from scripts/aarch64-sysroot.
    packages: Tuple[str, ...] = ()
    foreign: bool = False


@dataclass(frozen=True)
class Config:
    name: str
    arch: str
    machine: str
    user_driver: str                 # uio_pci_generic or vfio-pci
    devices: Tuple[str, ...] = ()    # extra -device arguments (an IOMMU)
    kernel_args: Tuple[str, ...] = ()
    exclude: Tuple[str, ...] = ()    # controller labels this machine does not get
    # Controllers this machine puts elsewhere: label -> bridge / addr (and
    # multifunction) overriding the table's.
    placement: Dict[str, Dict[str, object]] = field(default_factory=dict)
    # "": the distribution kernel and its modules; "6.12": the kernel
    # scripts/guest-kernel builds (drivers built in, no modules), booted
    # only once it is in its cache (it takes about 20 min to build).
    kernel: str = ""
    # Variables exported to the guest scripts (and so to the library there).
    env: Dict[str, str] = field(default_factory=dict)
    # Extra QEMU arguments of this machine.
    qemu_args: Tuple[str, ...] = ()
    note: str = ""


X86_MODULES = ("crc64_rocksoft_generic", "crct10dif_generic", "crc32c_generic",
               "uio", "uio_pci_generic",
               "irqbypass", "vfio", "vfio_iommu_type1", "vfio_virqfd?", "vfio-pci-core",
               "vfio-pci", "ext4", "nvme")

ARCHES = {
    # no_timer_check: under TCG on a loaded host the kernel's check that the
    # timer interrupt works through the (interrupt-remapped) IO-APIC can miss
    # its ticks and panic ("timer doesn't work through Interrupt-remapped
    # IO-APIC"); virtual machines skip that check.
    "x86_64": Arch("x86_64", qemu="qemu-system-x86_64", cpu="max", console="ttyS0",
                   modules=X86_MODULES, kernel_args=("no_timer_check",),
                   packages=("qemu-system-x86", "linux-image-amd64", "busybox-static", "cpio",
                             "kmod")),
    # The same modules exist on Debian's arm64 kernel (irqbypass is built in).
    # -cpu max with the cheap pointer-authentication algorithm: the default
    # one (QARMA) costs a lot under TCG.
    "aarch64": Arch("aarch64", qemu="qemu-system-aarch64", cpu="max,pauth-impdef=on",
                    console="ttyAMA0", modules=X86_MODULES,
                    packages=("qemu-system-arm", "cpio", "kmod"), foreign=True),
}

# QEMU 7.2's q35 hands PCIe slot hotplug to ACPI by default; the kernel
# scripts/guest-kernel builds has no ACPI PCI hotplug (HOTPLUG_PCI_ACPI), so
# a device_del would never complete there ("_OSC: platform does not support
# [PCIeHotplug]"). Its machines give the slots back to the kernel's native
# PCIe hotplug (pciehp). Debian's 6.1 has ACPI hotplug: its machines stay.
NATIVE_PCIE_HOTPLUG = ("-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off")

CONFIGS = {
    "uio": Config("uio", arch="x86_64", machine="q35", user_driver="uio_pci_generic",
                  note="no IOMMU"),
    "vfio": Config("vfio", arch="x86_64", machine="q35,kernel-irqchip=split",
                   user_driver="vfio-pci", devices=("intel-iommu,intremap=on",),
                   kernel_args=("intel_iommu=on",), note="emulated Intel IOMMU"),
    # Debian's 6.12 built by scripts/guest-kernel: IOMMUFD and the VFIO
    # device cdev, so the library takes iommufd (type1 stays available).
    "iommufd": Config("iommufd", arch="x86_64", machine="q35,kernel-irqchip=split",
                      user_driver="vfio-pci", devices=("intel-iommu,intremap=on",),
                      kernel_args=("intel_iommu=on",), kernel="6.12",
                      qemu_args=NATIVE_PCIE_HOTPLUG,
                      note="emulated Intel IOMMU, Linux 6.12 with iommufd and the VFIO "
                           "device cdev (scripts/guest-kernel; skipped until it is built)"),
    # The same kernel on a machine without an IOMMU: vfio in its no-IOMMU
    # mode (on from boot; guest-tools.sh turns it off and on again with
    # devbind), and every library call in the guest opting in to it.
    "noiommu": Config("noiommu", arch="x86_64", machine="q35", user_driver="vfio-pci",
                      kernel_args=("vfio.enable_unsafe_noiommu_mode=1",), kernel="6.12",
                      env={"UPCIE_VFIO_IOMMU": "noiommu"}, qemu_args=NATIVE_PCIE_HOTPLUG,
                      note="no IOMMU, Linux 6.12 with vfio's no-IOMMU mode "
                           "(scripts/guest-kernel; skipped until it is built)"),
    # Arm server-like machines: GICv3 (its ITS remaps MSIs, which VFIO type1
    # requires; on GICv2 VFIO_SET_IOMMU fails with EPERM).
    "arm-uio": Config("arm-uio", arch="aarch64", machine="virt,gic-version=3",
                      user_driver="uio_pci_generic", note="no IOMMU"),
    "arm-vfio": Config("arm-vfio", arch="aarch64", machine="virt,gic-version=3,iommu=smmuv3",
                       user_driver="vfio-pci",
                       placement={"C": {"bridge": None, "addr": "10.0", "multifunction": "on"},
                                  "D": {"bridge": None, "addr": "10.1"}},
                       note="emulated SMMUv3; QEMU 7.2's SMMUv3 cannot take devices behind "
                            "a pci-bridge (\"stream ... already in tree\"), so C and D are "
                            "two functions of one root slot: a shared IOMMU group too"),
}

BRIDGES = (
    Bridge("pcib", "pci-bridge", {"bus": "pcie.0", "chassis_nr": 1, "shpc": "off"},
           note="conventional PCI bridge without SHPC (no driver binds it); the "
                "devices behind it share its requester ID, hence one IOMMU group "
                "under intel-iommu"),
    Bridge("hp1", "pcie-root-port", {"bus": "pcie.0", "chassis": 2, "slot": 1}, hotplug=True,
           note="hot-pluggable PCIe slot: the host removes and re-adds its controller "
                "when a guest script asks (upcie_unplug / upcie_replug)"),
)

CONTROLLERS = (
    Controller("A", (Namespace(1, 512, "64M"), Namespace(2, 4096, "64M")), xcheck=True,
               note="two namespaces, 512 B and 4 KiB blocks"),
    Controller("B", (Namespace(1, 512, "32M"),), options={"mdts": 2, "max_ioqpairs": 2},
               xcheck=True, note="16 KiB transfers (mdts=2), 2 I/O queue pairs"),
    Controller("C", (Namespace(1, 512, "32M"),), bridge="pcib", addr="1.0",
               note="shares an IOMMU group with D"),
    Controller("D", (Namespace(1, 512, "32M"),), bridge="pcib", addr="2.0",
               note="shares an IOMMU group with C"),
    Controller("E", (Namespace(1, 512, "32M"),), bridge="hp1",
               note="hot-pluggable: unplugged and re-added on request"),
    Controller("F", (Namespace(1, 512, "8M", (("ms", 8),)),
                     Namespace(2, 512, "8M", (("ms", 8), ("mset", 1))),
                     Namespace(3, 4096, "8M", (("ms", 16), ("pi", 1), ("pil", 0))),
                     Namespace(4, 4096, "8M", (("ms", 8), ("pi", 2))),
                     Namespace(5, 512, "8M", (("ms", 8), ("pi", 3), ("pil", 1))),
                     Namespace(6, 4096, "8M", (("ms", 16), ("pi", 1), ("pif", 2))),
                     Namespace(7, 512, "8M", (("ms", 64), ("mset", 1), ("pi", 2), ("pif", 2))),
                     Namespace(8, 4096, "8M", (("ms", 16), ("pi", 3), ("pil", 1), ("pif", 2)))),
               note="metadata and protection information: separate and extended metadata, "
                    "PI types 1-3, first and last bytes, 16- and 64-bit guards "
                    "(guest-md.sh)"),
)


def bridge(bid):
    return next(b for b in BRIDGES if b.id == bid)


def hotplug(ctrl):
    return ctrl.bridge is not None and bridge(ctrl.bridge).hotplug


def backend(config):
    """The library backend a configuration tests: uio or vfio (the guest
    scripts' UPCIE_CONFIG)."""
    return "vfio" if CONFIGS[config].user_driver == "vfio-pci" else "uio"


def configs(arch=None):
    """Configuration names, of one architecture (meson's cpu_family) if given."""
    return [k.name for k in CONFIGS.values() if arch is None or k.arch == arch]


def controllers(config):
    """The controllers of one configuration, in table order, where it puts them."""
    k = CONFIGS[config]
    out = []
    for c in CONTROLLERS:
        if c.label in k.exclude:
            continue
        where = dict(k.placement.get(c.label, {}))
        if where:
            opts = dict(c.options)
            if "multifunction" in where:
                opts["multifunction"] = where.pop("multifunction")
            c = dataclasses.replace(c, options=opts, **where)
        out.append(c)
    return out


def bridges(config):
    used = {c.bridge for c in controllers(config)}
    return [b for b in BRIDGES if b.id in used]


def _props(driver, props):
    return ",".join([driver] + [f"{k}={v}" for k, v in props.items()])


def controller_props(ctrl, ioeventfd=None):
    """Properties of the nvme device. A hot-pluggable controller carries its one
    namespace itself (drive=): nvme-ns devices cannot be added to a running
    controller, so one device_add must bring the whole controller back."""
    p = {"id": ctrl.qid, "serial": ctrl.serial}
    if ctrl.bridge:
        p["bus"] = ctrl.bridge
    if ctrl.addr:
        p["addr"] = ctrl.addr
    p.update(ctrl.options)
    if hotplug(ctrl):
        assert len(ctrl.namespaces) == 1, f"{ctrl.label}: a hot-pluggable controller has one namespace"
        ns = ctrl.namespaces[0]
        # share-rw: QEMU releases a removed device's drive only when the
        # device object is finally freed, which can come many seconds after
        # it left the guest and the device tree (DEVICE_DELETED is sent
        # then); the controller added back must be able to take the drive
        # meanwhile. The old one is unrealized: it does no more I/O.
        p.update(drive=ctrl.drive(ns), logical_block_size=ns.lba, physical_block_size=ns.lba)
        p["share-rw"] = "on"
    if ioeventfd:
        p["ioeventfd"] = ioeventfd
    return p


def qemu_device_args(config, work, ioeventfd=None):
    """-blockdev/-device arguments for the bridges, controllers and namespaces."""
    args = list(CONFIGS[config].qemu_args)
    for d in CONFIGS[config].devices:
        args += ["-device", d]
    for b in bridges(config):
        args += ["-device", _props(b.driver, dict(id=b.id, **b.props))]
    for c in controllers(config):
        for ns in c.namespaces:
            args += ["-blockdev", f"driver=raw,node-name={c.drive(ns)},file.driver=file,"
                     f"file.filename={work}/{c.image(ns)}"]
        args += ["-device", _props("nvme", controller_props(c, ioeventfd))]
        if hotplug(c):
            continue
        for ns in c.namespaces:
            args += ["-device", f"nvme-ns,drive={c.drive(ns)},bus={c.qid},nsid={ns.nsid},"
                     f"logical_block_size={ns.lba},physical_block_size={ns.lba}"
                     + "".join(f",{k}={v}" for k, v in ns.md)]
    return args


def images(config):
    """(file name, size) of every backing image."""
    return [(c.image(ns), ns.size) for c in controllers(config) for ns in c.namespaces]


def modules(config):
    """The modules the guest loads: none on a kernel with its drivers built in."""
    k = CONFIGS[config]
    return () if k.kernel else ARCHES[k.arch].modules


def guest_env(config):
    """The guest's topology.env (POSIX sh), sourced by guest-init.sh and
    guest-lib.sh. Depends only on the controllers, so both x86 configurations
    share one initramfs."""
    cs = controllers(config)
    arch = ARCHES[CONFIGS[config].arch]
    lines = ["# Generated by qemu/topology.py: the guest topology. Do not edit.",
             f"UPCIE_TOPO_LABELS=\"{' '.join(c.label for c in cs)}\"",
             f"UPCIE_TOPO_HOTPLUG=\"{' '.join(c.label for c in cs if hotplug(c))}\"",
             "UPCIE_TOPO_XCHECK_NS=\"" + " ".join(f"{c.label}:{ns.nsid}" for c in cs if c.xcheck
                                                  for ns in c.namespaces) + "\"",
             "UPCIE_TOPO_MD_CTRLS=\"" + " ".join(c.label for c in cs
                                                 if any(ns.md for ns in c.namespaces)) + "\"",
             f"UPCIE_TOPO_MODULES=\"{' '.join(modules(config))}\""]
    for b in bridges(config):
        members = [c.label for c in cs if c.bridge == b.id]
        lines.append(f"UPCIE_TOPO_BRIDGE_{b.id}=\"{' '.join(members)}\"")
    for c in cs:
        pre = f"UPCIE_TOPO_{c.label}_"
        lines += [f"{pre}SERIAL={c.serial}", f"{pre}QID={c.qid}",
                  f"{pre}NS=\"" + " ".join(f"{ns.nsid}:{ns.lba}" for ns in c.namespaces) + "\"",
                  f"{pre}BRIDGE={c.bridge or ''}"]
        for k, v in c.options.items():
            lines.append(f"{pre}{k.upper()}={v}")
    return "\n".join(lines) + "\n"


README_BEGIN = "<!-- topology: generated by `qemu/topology.py readme`; do not edit -->"
README_END = "<!-- end of topology -->"


def readme_section():
    out = [README_BEGIN, "", "| config | arch | machine | extra devices | guest kernel | user-space driver |",
           "| --- | --- | --- | --- | --- | --- |"]
    for k in CONFIGS.values():
        dev = ", ".join([f"`{d}`" for d in k.devices] +
                        [f"`{' '.join(k.qemu_args)}`"] * bool(k.qemu_args)) or "none"
        kern = " ".join(f"`{a}`" for a in ARCHES[k.arch].kernel_args + k.kernel_args) or "default"
        excl = f" (no {', '.join(k.exclude)})" if k.exclude else ""
        for label, where in k.placement.items():
            excl += f" ({label}: " + ", ".join("root bus" if a == "bridge" and v is None
                                                else f"{a}={v}" for a, v in where.items()) + ")"
        drv = f"`{k.user_driver}`" + "".join(f" (`{a}={v}`)" for a, v in k.env.items())
        out.append(f"| `{k.name}` | {k.arch} | `{k.machine}`{excl} | {dev} | {kern} | {drv} |")
    out += ["", "| controller | serial | namespaces | options | bus | note |",
            "| --- | --- | --- | --- | --- | --- |"]
    for c in CONTROLLERS:
        nss = "; ".join(n.describe() for n in c.namespaces)
        opts = ", ".join(f"`{k}={v}`" for k, v in c.options.items()) or "-"
        bus = "root" if not c.bridge else f"`{c.bridge}` ({bridge(c.bridge).driver})"
        if c.addr:
            bus += f", slot {c.addr}"
        out.append(f"| {c.label} (`{c.qid}`) | `{c.serial}` | {nss} | {opts} | {bus} | {c.note} |")
    out.append("")
    for b in BRIDGES:
        out.append(f"- `{b.id}`: `{_props(b.driver, b.props)}`: {b.note}")
    out += ["", README_END]
    return "\n".join(out) + "\n"


def readme_current(text):
    """The generated section as it stands in a README text ('' if absent)."""
    i = text.find(README_BEGIN)
    j = text.find(README_END)
    if i < 0 or j < i:
        return ""
    return text[i:j + len(README_END)] + "\n"


def main(argv):
    if len(argv) == 2 and argv[1] == "readme":
        sys.stdout.write(readme_section())
        return 0
    if len(argv) == 3 and argv[1] == "check-readme":
        with open(argv[2]) as f:
            got = readme_current(f.read())
        want = readme_section()
        tap = Tap()
        tap.ok(got == want, f"{argv[2]}: topology section matches topology.py",
               detail="regenerate it: replace the section with the output of "
                      "qemu/topology.py readme")
        return tap.done()
    if len(argv) == 3 and argv[1] == "update-readme":
        with open(argv[2]) as f:
            text = f.read()
        old = readme_current(text)
        if not old:
            sys.stderr.write(f"{argv[2]}: no generated topology section ({README_BEGIN})\n")
            return 1
        with open(argv[2], "w") as f:
            f.write(text.replace(old, readme_section()))
        return 0
    if len(argv) in (2, 3) and argv[1] == "configs":
        print("\n".join(configs(argv[2] if len(argv) == 3 else None)))
        return 0
    if len(argv) == 3 and argv[1] == "env" and argv[2] in CONFIGS:
        sys.stdout.write(guest_env(argv[2]))
        return 0
    sys.stderr.write("usage:\n" + __doc__.split("\n\n")[2] + "\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
