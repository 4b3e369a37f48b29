#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Fetch the source of the fio that Debian ships (the one /usr/bin/fio comes
# from) and configure it, so that the libupcie fio engine can be compiled
# against the very headers of the binary that will load it. Debian has no
# fio headers package: the source package is the only way.
#
#   scripts/fio-source.sh CACHE_DIR
#
# Installs fio and dpkg-dev when missing, adds a deb-src entry for Debian's
# own archive when apt has none, runs 'apt-get source fio' into CACHE_DIR,
# and './configure --disable-native --prefix=/usr' there. Prints the path of
# the configured tree (CACHE_DIR/fio, a link to fio-<version>) on stdout.
# A tree already there is reused. Exit status 1, with the reason on stderr,
# when the source cannot be had (no root, no network, no deb-src).
set -euo pipefail

cache=${1:?usage: fio-source.sh CACHE_DIR}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
say() { echo "fio-source: $*" >&2; }

if [ -f "$cache/fio/config-host.h" ] && [ -f "$cache/fio/ioengines.h" ]; then
	echo "$cache/fio"
	exit 0
fi

sudo=
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null && sudo -n true 2>/dev/null && sudo="sudo -n"
fi
need=()
for p in fio dpkg-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ] && [ -z "$sudo" ]; then
		say "missing packages ${need[*]} and not root: install them first"
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -q >/dev/null
	$sudo apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null || {
		say "cannot install ${need[*]}"
		exit 1
	}
fi
version=$(dpkg-query -W -f='${Version}' fio)

# apt-get source needs a deb-src entry. Add one for Debian's own archive
# (the deb entries' URIs and suites, as deb-src) when there is none.
has_src() {
	grep -qsE '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
}
if ! has_src; then
	if [ "$(id -u)" != 0 ] && [ -z "$sudo" ]; then
		say "apt has no deb-src entry and this is not root: add one (deb-src of" \
			"Debian's archive) to fetch fio's source"
		exit 1
	fi
	src=/etc/apt/sources.list.d/upcie-deb-src
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
			$sudo tee "$src.sources" >/dev/null
	elif [ -f /etc/apt/sources.list ]; then
		sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list |
			$sudo tee "$src.list" >/dev/null
	fi
	has_src || {
		say "no Debian deb entry to copy as deb-src"
		exit 1
	}
	say "added a deb-src entry for Debian's archive ($src.*)"
	$sudo apt-get update -q >/dev/null || true
fi

work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source -q --download-only "fio=$version" >/dev/null 2>"$work/log" &&
	dpkg-source -x fio_*.dsc src >/dev/null 2>>"$work/log") || {
	cat "$work/log" >&2
	say "apt-get source fio=$version failed (no network, or no deb-src for this release)"
	exit 1
}
(cd "$work/src" && ./configure --disable-native --prefix=/usr >"$work/configure.log" 2>&1) || {
	cat "$work/configure.log" >&2
	say "fio's ./configure failed"
	exit 1
}
rm -rf "$cache/fio-$version"
mv "$work/src" "$cache/fio-$version"
ln -sfn "fio-$version" "$cache/fio"
echo "$cache/fio"
