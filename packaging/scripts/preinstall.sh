#!/bin/sh
# metastore preinstall (deb preinst, rpm %pre): create the metastore system
# group and user before the files are unpacked.
#
# NB: $DPKG_ROOT is set when dpkg installs into another root without chroot
# (dpkg --root DIR --force-script-chrootless), as the package tests do: then
# every change goes under it and nothing touches the running system.
set -e

root="${DPKG_ROOT:-}"

has_entry() { # has_entry passwd|group NAME
	if [ -n "$root" ]; then
		grep -q "^$2:" "$root/etc/$1"
	else
		getent "$1" "$2" >/dev/null
	fi
}

if ! has_entry group metastore; then
	groupadd --system ${root:+--prefix "$root"} metastore
fi
if ! has_entry passwd metastore; then
	useradd --system --gid metastore --home-dir /var/lib/metastore --no-create-home \
		--shell /usr/sbin/nologin --comment "MetaStore" ${root:+--prefix "$root"} metastore
fi
exit 0
