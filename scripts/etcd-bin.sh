# shellcheck shell=bash
# Sourced by the bench scripts (ROOT set to the repository).
# default_etcd_bin TOOL: unless the environment set ETCD_BIN, set it to the
# first of ../shared/peers/etcd/bin and /tmp/etcdpeer/bin that holds TOOL
# (empty when neither does).
default_etcd_bin() {
	local d
	if [[ -z "${ETCD_BIN:-}" ]]; then
		for d in "$ROOT/../shared/peers/etcd/bin" /tmp/etcdpeer/bin; do
			if [[ -x "$d/$1" ]]; then ETCD_BIN=$d; break; fi
		done
	fi
	ETCD_BIN=${ETCD_BIN:-}
}
