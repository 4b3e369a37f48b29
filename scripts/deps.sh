# SPDX-License-Identifier: BSD-3-Clause
# Sourced by scripts/test and scripts/demo: install the Debian packages the
# build, the tests and the QEMU guest need, skipping those already present.
# Needs root (or sudo) only when something is missing.

UPCIE_BUILD_PKGS="gcc g++ meson ninja-build pkg-config libcunit1-dev libpci-dev pci.ids \
libhugetlbfs-dev libhugetlbfs-bin python3 clang-format abigail-tools debhelper dpkg-dev \
fakeroot lintian valgrind"
UPCIE_GUEST_PKGS="qemu-system-x86 linux-image-amd64 busybox-static cpio kmod"
# The aarch64 cross build and its unit tests under qemu-user (the arm64
# libraries come from a sysroot: scripts/aarch64-sysroot).
UPCIE_AARCH64_PKGS="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static"
# The arm64 guest (its kernel and busybox are unpacked, not installed).
UPCIE_AARCH64_GUEST_PKGS="qemu-system-arm cpio kmod"

# The newest Debian 6.12 uapi headers (linux-headers-6.12.N+deb12-common):
# the abi suite checks the iommufd definitions the library carries against
# them. Printed empty when the package lists have none.
upcie_uapi_pkg() {
	apt-cache pkgnames linux-headers-6.12 2>/dev/null |
		grep -E '^linux-headers-6\.12\.[0-9]+\+deb12-common$' | sort -V | tail -n 1
}

upcie_install_deps() {
	local missing=() p sudo=
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null || {
			echo "missing packages: ${missing[*]}; install them as root" >&2
			return 1
		}
		sudo=sudo
	fi
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -q >/dev/null
	$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}
