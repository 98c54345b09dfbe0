#!/usr/bin/env bash
# bench-startup.sh: how long fresh clusters take from the start of their
# processes until every member answers a status request naming the same
# leader (what a client or a readiness probe waits for): one member and
# three, MetaStore (RocksDB) and etcd with the same flags, ROUNDS rounds
# alternating. With MS_BIN_B set a second MetaStore binary joins each round
# (an A/B of a start-up change). docs/BENCHMARKS.md, sixteenth round, has a
# run.
#
# Environment:
#   MS_BIN     the metastore binary (default bin/metastore; `make build`)
#   MS_BIN_B   a second binary to alternate with (optional)
#   ETCD_BIN   directory with etcd and etcdctl (default ../shared/peers/etcd/bin,
#              else /tmp/etcdpeer/bin); ETCD=0 leaves etcd out
#   ROUNDS     rounds (default 5)
# Only 127.0.0.1 is used; every process started is stopped on exit.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MS_BIN=${MS_BIN:-$ROOT/bin/metastore}
MS_BIN_B=${MS_BIN_B:-}
# shellcheck source=scripts/etcd-bin.sh
source "$ROOT/scripts/etcd-bin.sh"
default_etcd_bin etcd
ROUNDS=${ROUNDS:-5}
die() { echo "bench-startup: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
for b in "$MS_BIN" ${MS_BIN_B:+"$MS_BIN_B"}; do [[ -x "$b" ]] || die "$b not found: run 'make build' first"; done
for tool in ss curl date bc; do command -v $tool >/dev/null || die "$tool is needed"; done
KINDS=(ms)
[[ -n "$MS_BIN_B" ]] && KINDS+=(msb)
if [[ "${ETCD:-1}" != 0 && -n "$ETCD_BIN" && -x "$ETCD_BIN/etcd" ]]; then KINDS+=(etcd); fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-startup.XXXXXX")
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh" # PIDS, cleanup on exit, free_port, stop_pids

# leader EP: the leader a member's status names (empty when it has none or
# does not answer yet).
leader() {
	curl -s -m 1 -X POST "http://$1/v3/maintenance/status" -d '{}' 2>/dev/null |
		grep -o '"leader": *"[1-9][0-9]*"' | grep -o '[0-9]*'
}

# startup KIND N: seconds from starting N fresh members until all name one leader.
startup() {
	local kind=$1 n=$2 i initial="" dir="$WORK/$1-$2-$RANDOM" start end
	local -a cports=() pports=() eps=() pids=() cmd
	for ((i = 1; i <= n; i++)); do
		cports+=("$(free_port)")
		pports+=("$(free_port)")
		initial+="${initial:+,}m$i=http://127.0.0.1:${pports[i - 1]}"
	done
	case $kind in
	ms) cmd=("$MS_BIN" serve --engine rocksdb) ;;
	msb) cmd=("$MS_BIN_B" serve --engine rocksdb) ;;
	etcd) cmd=("$ETCD_BIN/etcd") ;;
	esac
	mkdir -p "$dir"
	start=$(date +%s.%N)
	for ((i = 1; i <= n; i++)); do
		local c="http://127.0.0.1:${cports[i - 1]}" p="http://127.0.0.1:${pports[i - 1]}"
		"${cmd[@]}" --name "m$i" --data-dir "$dir/m$i" --listen-client-urls "$c" --advertise-client-urls "$c" \
			--listen-peer-urls "$p" --initial-advertise-peer-urls "$p" --initial-cluster "$initial" \
			--initial-cluster-state new --initial-cluster-token "startup-$kind" >"$dir/m$i.log" 2>&1 &
		PIDS+=($!)
		pids+=($!)
		eps+=("127.0.0.1:${cports[i - 1]}")
	done
	local deadline=$((SECONDS + 60)) l first ok
	while :; do
		ok=1 first=""
		for e in "${eps[@]}"; do
			l=$(leader "$e")
			if [[ -z "$l" || (-n "$first" && "$l" != "$first") ]]; then ok=0; break; fi
			first=$l
		done
		((ok)) && break
		((SECONDS > deadline)) && die "$kind x$n did not elect a leader in 60 s (KEEP_WORK=1 keeps $dir)"
		sleep 0.02
	done
	end=$(date +%s.%N)
	stop_pids "${pids[@]}"
	echo "$end - $start" | bc
}

declare -A RESULTS=()
for ((r = 1; r <= ROUNDS; r++)); do
	for n in 1 3; do
		for k in "${KINDS[@]}"; do
			RESULTS[$k-$n]+="$(printf '%.2f' "$(startup "$k" "$n")") "
		done
	done
	log "round $r of $ROUNDS done"
done

name() { case $1 in ms) echo "MetaStore ($MS_BIN)" ;; msb) echo "MetaStore B ($MS_BIN_B)" ;; etcd) echo "etcd ($ETCD_BIN/etcd)" ;; esac; }
echo "Seconds from starting fresh members until every member names the same leader, $ROUNDS rounds:"
echo
echo "| server | 1 member | 3 members |"
echo "|---|---|---|"
for k in "${KINDS[@]}"; do
	echo "| $(name "$k") | ${RESULTS[$k-1]% } | ${RESULTS[$k-3]% } |"
done
