#!/usr/bin/env bash
# bench-rss.sh: a fresh single MetaStore member's memory through `etcdctl
# check perf --load=l` (60 s of writes, then one DeleteRange of every key it
# wrote): writes/s, peak RSS (VmHWM), RSS when check perf returns and 16 s
# later. With MS_BIN_B set, the rounds alternate two binaries (an A/B of a
# memory change). docs/BENCHMARKS.md, eleventh round, has a run.
#
# Environment:
#   ETCD_BIN   directory with etcdctl; default ../shared/peers/etcd/bin, else /tmp/etcdpeer/bin
#   MS_BIN     the metastore binary (default bin/metastore; `make build`)
#   MS_BIN_B   a second binary to alternate with (optional)
#   ROUNDS     rounds (default 2; each about 80 s per binary)
#   LOAD       check perf's load (default l)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MS_BIN=${MS_BIN:-$ROOT/bin/metastore}
MS_BIN_B=${MS_BIN_B:-}
# shellcheck source=scripts/etcd-bin.sh
source "$ROOT/scripts/etcd-bin.sh"
default_etcd_bin etcdctl
ROUNDS=${ROUNDS:-2}
LOAD=${LOAD:-l}
die() { echo "bench-rss: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $LOAD =~ ^(s|m|l|xl)$ ]] || die "LOAD must be s, m, l or xl"
for b in "$MS_BIN" ${MS_BIN_B:+"$MS_BIN_B"}; do [[ -x "$b" ]] || die "$b not found: run 'make build' first"; done
[[ -n "$ETCD_BIN" && -x "$ETCD_BIN/etcdctl" ]] || die "set ETCD_BIN to a directory holding etcdctl"
for tool in ss timeout awk; do command -v $tool >/dev/null || die "$tool is needed"; done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-rss.XXXXXX")
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh" # PIDS, cleanup on exit, free_port, start_cluster

status_mb() { awk -v k="$2:" '$1 == k {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }

BINS=("$MS_BIN" ${MS_BIN_B:+"$MS_BIN_B"})
echo "| binary | writes/s | verdict | peak RSS MB | RSS at return MB | RSS 16 s later MB |"
echo "|---|---|---|---|---|---|"
for ((r = 1; r <= ROUNDS; r++)); do
	for MS_BIN in "${BINS[@]}"; do # start_cluster starts $MS_BIN
		start_cluster ms 1 2>/dev/null
		pid=${SPIDS[0]} out="$WORK/round$r.txt"
		timeout -k 10 300 "$ETCD_BIN/etcdctl" --endpoints="$EP1" --command-timeout=60s check perf --load="$LOAD" 2>&1 |
			tr '\r' '\n' >"$out"
		at_return=$(status_mb "$pid" VmRSS) peak=$(status_mb "$pid" VmHWM)
		sleep 16
		later=$(status_mb "$pid" VmRSS)
		wps=$(grep -o '[0-9.]* writes/s' "$out" | head -n 1 | awk '{printf "%.0f", $1}')
		verdict=$(grep -E '^(PASS|FAIL)$' "$out" | tail -n 1)
		stop_cluster
		printf '| %s | %s | %s | %s | %s | %s |\n' "$MS_BIN" "${wps:-?}" "${verdict:-?}" "$peak" "$at_return" "$later"
	done
done
