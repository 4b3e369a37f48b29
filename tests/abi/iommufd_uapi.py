#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""lib/pci/iommufd_uapi.h against the kernel's own uapi headers, as TAP.

The library carries the few iommufd and VFIO cdev definitions it needs
(Debian 12's linux-libc-dev, 6.1, has none). This checks each of them
against linux/iommufd.h and linux/vfio.h of a 6.6+ kernel: the ioctl
numbers, the map flags and every struct's fields in order with their
widths. The uapi headers come from a linux-headers-*-common package
(scripts/test installs Debian's 6.12 one) or a directory given:

    iommufd_uapi.py SOURCE_ROOT [UAPI_DIR]
"""
import glob
import os
import re
import sys

top = sys.argv[1]
sys.path.insert(0, os.path.join(top, "tests", "lib"))
from tap import Tap, skip_all  # noqa: E402

ours = open(os.path.join(top, "lib", "pci", "iommufd_uapi.h")).read()
if len(sys.argv) > 2:
    uapi = sys.argv[2]
else:
    found = sorted(glob.glob("/usr/src/linux-headers-*-common/include/uapi/linux/iommufd.h"))
    if not found:
        skip_all("no uapi linux/iommufd.h (apt-get install the newest "
                 "linux-headers-6.12.*-common; scripts/test does)")
    uapi = os.path.dirname(os.path.dirname(found[-1]))
iommufd = open(os.path.join(uapi, "linux", "iommufd.h")).read()
vfio = open(os.path.join(uapi, "linux", "vfio.h")).read()

WIDTH = {"__u32": 32, "__s32": 32, "__aligned_u64": 64, "__u64": 64,
         "uint32_t": 32, "int32_t": 32, "uint64_t": 64}


def fields(text, name):
    """[(field, bits)] of struct name, in order."""
    m = re.search(r"struct\s+" + re.escape(name) + r"\s*\{(.*?)\};", text, re.S)
    if not m:
        return None
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    out = []
    for t, f in re.findall(r"(\w+)\s+(\w+)\s*;", body):
        out.append((f.lstrip("_"), WIDTH.get(t)))
    return out


def enum_value(text, name):
    m = re.search(r"\b" + re.escape(name) + r"\s*=\s*([^,\n]+)", text)
    if not m:
        return None
    v = m.group(1).strip()
    if v == "IOMMUFD_CMD_BASE":
        return enum_value(text, "IOMMUFD_CMD_BASE")
    return int(eval(v.replace("1 << ", "1<<")))  # numbers and shifts only


def define(text, name):
    m = re.search(r"#define\s+" + re.escape(name) + r"\s+(.+)", text)
    return m.group(1).strip() if m else None


tap = Tap()
# ioctl numbers: our _IO(';', N) against the kernel's.
for mine, cmd in (("UPCIE_IOMMU_IOAS_ALLOC", "IOMMUFD_CMD_IOAS_ALLOC"),
                  ("UPCIE_IOMMU_IOAS_IOVA_RANGES", "IOMMUFD_CMD_IOAS_IOVA_RANGES"),
                  ("UPCIE_IOMMU_IOAS_MAP", "IOMMUFD_CMD_IOAS_MAP"),
                  ("UPCIE_IOMMU_IOAS_UNMAP", "IOMMUFD_CMD_IOAS_UNMAP")):
    m = re.search(r"_IO\(UPCIE_IOMMUFD_TYPE,\s*(0x[0-9a-f]+)\)", define(ours, mine) or "")
    want = enum_value(iommufd, cmd)
    tap.ok(m and want is not None and int(m.group(1), 16) == want,
           f"{mine}: command {m.group(1) if m else '?'} is {cmd} ({want})")
tap.ok(define(iommufd, "IOMMUFD_TYPE") == "(';')" and define(ours, "UPCIE_IOMMUFD_TYPE") == "';'",
       "the iommufd ioctl type is ';'")
for mine, kernel in (("UPCIE_VFIO_DEVICE_BIND_IOMMUFD", "VFIO_DEVICE_BIND_IOMMUFD"),
                     ("UPCIE_VFIO_DEVICE_ATTACH_IOMMUFD_PT", "VFIO_DEVICE_ATTACH_IOMMUFD_PT")):
    m = re.search(r"_IO\(';',\s*100 \+ (\d+)\)", define(ours, mine) or "")
    k = re.search(r"_IO\(VFIO_TYPE,\s*VFIO_BASE \+ (\d+)\)", define(vfio, kernel) or "")
    tap.ok(m and k and m.group(1) == k.group(1) and define(vfio, "VFIO_BASE") == "100",
           f"{mine}: VFIO_BASE + {m.group(1) if m else '?'} as {kernel}")
for flag in ("FIXED_IOVA", "WRITEABLE", "READABLE"):
    mine = define(ours, f"UPCIE_IOMMU_IOAS_MAP_{flag}") or ""
    m = re.search(r"\(1u << (\d+)\)", mine)
    tap.ok(m and enum_value(iommufd, f"IOMMU_IOAS_MAP_{flag}") == 1 << int(m.group(1)),
           f"IOMMU_IOAS_MAP_{flag} is bit {m.group(1) if m else '?'}")
for mine, kernel, text in (
        ("upcie_iommu_ioas_alloc", "iommu_ioas_alloc", iommufd),
        ("upcie_iommu_iova_range", "iommu_iova_range", iommufd),
        ("upcie_iommu_ioas_iova_ranges", "iommu_ioas_iova_ranges", iommufd),
        ("upcie_iommu_ioas_map", "iommu_ioas_map", iommufd),
        ("upcie_iommu_ioas_unmap", "iommu_ioas_unmap", iommufd),
        ("upcie_vfio_device_bind_iommufd", "vfio_device_bind_iommufd", vfio),
        ("upcie_vfio_device_attach_iommufd_pt", "vfio_device_attach_iommufd_pt", vfio)):
    a, b = fields(ours, mine), fields(text, kernel)
    tap.ok(a is not None and a == b, f"struct {mine} has the fields of struct {kernel}",
           detail=f"ours: {a}\nkernel: {b}")
tap.diag(f"uapi headers: {uapi}")
sys.exit(tap.done())
