#!/bin/sh
# metastore preremove (deb prerm, rpm %preun): on removal (not on upgrade)
# stop and disable the service. Data in /var/lib/metastore is never touched.
#
# deb: $1 = remove on removal, upgrade on upgrade. rpm: $1 = 0 on removal,
# 1 on upgrade.
set -e

root="${DPKG_ROOT:-}"

case "$1" in
remove | 0)
	if [ -z "$root" ] && [ -d /run/systemd/system ]; then
		systemctl --no-reload disable --now metastore.service || true
	fi
	;;
esac
exit 0
