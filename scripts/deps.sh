# SPDX-License-Identifier: BSD-3-Clause
# Sourced by scripts/test and scripts/demo: install the Debian packages the
# build, the tests and the QEMU guest need, skipping those already present.
# Needs root (or sudo) only when something is missing.

UPCIE_BUILD_PKGS="gcc g++ meson ninja-build pkg-config libcunit1-dev libpci-dev pci.ids \
libhugetlbfs-dev libhugetlbfs-bin python3 clang-format abigail-tools debhelper dpkg-dev \
fakeroot lintian"
UPCIE_GUEST_PKGS="qemu-system-x86 linux-image-amd64 busybox-static cpio kmod"

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
