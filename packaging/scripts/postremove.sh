#!/bin/sh
# metastore postremove (deb postrm, rpm %postun): forget the removed unit.
# The data directory /var/lib/metastore and the metastore user are kept, even
# on purge: a member's data is not the package's to delete. Remove them by
# hand (rm -rf /var/lib/metastore; userdel metastore) when it is retired.
set -e

root="${DPKG_ROOT:-}"

if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
