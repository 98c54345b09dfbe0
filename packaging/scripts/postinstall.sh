#!/bin/sh
# metastore postinstall (deb postinst, rpm %post): create the data directory
# and tell systemd about the unit. The service is not enabled or started:
# edit /etc/metastore/metastore.yaml, then `systemctl enable --now metastore`.
# On an upgrade a running service is restarted on the new binary.
#
# deb: $1 = configure, $2 = the version upgraded from (empty on install).
# rpm: $1 = 1 on install, 2 on upgrade.
set -e

root="${DPKG_ROOT:-}"

if [ -n "$root" ]; then
	# The user exists only in $root's passwd: name it by number.
	owner=$(awk -F: '$1 == "metastore" { print $3 ":" $4 }' "$root/etc/passwd")
else
	owner=metastore:metastore
fi
# Data stays private to the service user (RocksDB files, raft log).
mkdir -p "$root/var/lib/metastore"
chown "$owner" "$root/var/lib/metastore"
chmod 0700 "$root/var/lib/metastore"

if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	case "$1:${2:-}" in
	configure:?* | 2:*) systemctl try-restart metastore.service || true ;;
	esac
fi
exit 0
