#!/usr/bin/env bash
# compat-force-new-cluster.sh: the --force-new-cluster recovery, step by
# step, against etcd and against MetaStore, printing what an operator sees
# with etcdctl on each: 3 members, 50 keys, two members killed for good,
# the third stopped and restarted with --force-new-cluster, its member list,
# key count, revision and cluster ID (before and after), a write, then one
# of the lost members started again on its old data (it must be told it was
# removed and exit). Read the two halves side by side; docs/operations.md,
# "Losing the quorum", says what they show.
#
# Environment:
#   MS_BIN    the metastore binary (default bin/metastore; `make build`)
#   ETCD_BIN  directory with etcd and etcdctl (default ../shared/peers/etcd/bin,
#             else /tmp/etcdpeer/bin)
# Only 127.0.0.1 is used; every process started is stopped on exit.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MS_BIN=${MS_BIN:-$ROOT/bin/metastore}
# shellcheck source=scripts/etcd-bin.sh
source "$ROOT/scripts/etcd-bin.sh"
default_etcd_bin etcd
die() { echo "compat-force-new-cluster: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

[[ -x "$MS_BIN" ]] || die "$MS_BIN not found: run 'make build' first"
[[ -n "$ETCD_BIN" && -x "$ETCD_BIN/etcd" && -x "$ETCD_BIN/etcdctl" ]] || die "set ETCD_BIN to a directory holding etcd and etcdctl"
for tool in ss curl; do command -v $tool >/dev/null || die "$tool is needed"; done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/compat-fnc.XXXXXX")
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh" # PIDS, cleanup on exit, free_port, stop_pids

# scenario KIND: the recovery against etcd or metastore.
scenario() {
	local kind=$1 dir="$WORK/$1" initial="" i
	local -a cports=() pports=() pid=()
	for i in 1 2 3; do
		cports+=("$(free_port)")
		pports+=("$(free_port)")
		initial+="${initial:+,}m$i=http://127.0.0.1:${pports[i - 1]}"
	done
	mkdir -p "$dir"
	# start I [FLAG...]: member I in the background; its pid in pid[I].
	start() {
		local i=$1 c p
		shift
		c="http://127.0.0.1:${cports[i - 1]}" p="http://127.0.0.1:${pports[i - 1]}"
		if [[ $kind == etcd ]]; then
			"$ETCD_BIN/etcd" --name "m$i" --data-dir "$dir/m$i" --listen-client-urls "$c" --advertise-client-urls "$c" \
				--listen-peer-urls "$p" --initial-advertise-peer-urls "$p" --initial-cluster "$initial" \
				--initial-cluster-state new --initial-cluster-token fnc "$@" >>"$dir/m$i.log" 2>&1 &
		else
			"$MS_BIN" serve --engine rocksdb --name "m$i" --data-dir "$dir/m$i" --listen-client-urls "$c" --advertise-client-urls "$c" \
				--listen-peer-urls "$p" --initial-advertise-peer-urls "$p" --initial-cluster "$initial" \
				--initial-cluster-state new --initial-cluster-token fnc "$@" >>"$dir/m$i.log" 2>&1 &
		fi
		pid[i]=$!
		PIDS+=($!)
	}
	ctl() { timeout 20 "$ETCD_BIN/etcdctl" --endpoints="127.0.0.1:${cports[0]}" --command-timeout=5s "$@"; }
	healthy() {
		local n
		for ((n = 0; n < 150; n++)); do ctl endpoint health >/dev/null 2>&1 && return 0; sleep 0.2; done
		die "$kind: m1 did not become healthy (logs in $dir; KEEP_WORK=1 keeps them)"
	}
	summary() { ctl get k --prefix --count-only -w fields | grep -E '^"(Count|Revision|ClusterID)"' | tr '\n' ' '; echo; }

	echo "## $kind"
	for i in 1 2 3; do start "$i"; done
	healthy
	for i in $(seq -w 0 49); do ctl put "k$i" v >/dev/null || die "$kind: put failed"; done
	echo "before: $(summary)"
	echo "m2 and m3 killed for good; m1 stopped, then restarted with --force-new-cluster"
	{
		kill -KILL "${pid[2]}" "${pid[3]}"
		wait "${pid[2]}" "${pid[3]}"
	} 2>/dev/null
	stop_pids "${pid[1]}"
	start 1 --force-new-cluster
	healthy
	echo "after: $(summary)"
	ctl member list -w table
	ctl put after force
	echo "m2 started again on its old data"
	start 2
	local n
	for ((n = 0; n < 100; n++)); do kill -0 "${pid[2]}" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "${pid[2]}" 2>/dev/null; then echo "m2 still runs after 10 s"; else echo "m2 exited: $(grep -o -m1 -i 'member has been[a-z ]*removed from the cluster' "$dir/m2.log")"; fi
	ctl member list
	stop_pids "${pid[1]}" "${pid[2]}"
	echo
}

scenario etcd
scenario metastore
