#!/usr/bin/env bash
# bench-onecpu.sh: a MetaStore member allowed one CPU, with one P
# (GOMAXPROCS=1, what Go picks under a one-CPU quota or affinity mask) and
# with what serve picks itself (two Ps: procs.go), and etcd on the same CPU
# for reference. The member runs on one CPU and etcd's benchmark on another
# (taskset), put at 100 clients; each pair of runs on fresh members, the
# variants alternating. It prints a row per run (req/s, p99, member CPU per
# put from the kernel's accounting, puts per synced log write) and a median
# per variant. docs/BENCHMARKS.md, eleventh round, has a run.
#
# Environment:
#   ETCD_BIN    directory with etcd's benchmark and etcdctl (and etcd, for
#               its rows); default ../shared/peers/etcd/bin, else /tmp/etcdpeer/bin
#   MS_BIN      the metastore binary (default bin/metastore; `make build`)
#   PAIRS       rounds of the variants (default 5)
#   TOTAL       puts per run (default 100000)
#   CLIENTS     benchmark clients (default 100, on CLIENTS/10 connections)
#   ETCD=0      leave etcd out
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MS_BIN=${MS_BIN:-$ROOT/bin/metastore}
# shellcheck source=scripts/etcd-bin.sh
source "$ROOT/scripts/etcd-bin.sh"
default_etcd_bin benchmark
PAIRS=${PAIRS:-5}
TOTAL=${TOTAL:-100000}
CLIENTS=${CLIENTS:-100}
ETCD=${ETCD:-1}
die() { echo "bench-onecpu: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

for v in PAIRS TOTAL CLIENTS; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"; done
[[ -x "$MS_BIN" ]] || die "$MS_BIN not found: run 'make build' first"
[[ -n "$ETCD_BIN" && -x "$ETCD_BIN/benchmark" && -x "$ETCD_BIN/etcdctl" ]] ||
	die "set ETCD_BIN to a directory holding etcd's benchmark and etcdctl"
ETCD_BIN=$(cd "$ETCD_BIN" && pwd)
[[ $ETCD == 1 && ! -x "$ETCD_BIN/etcd" ]] && { log "no $ETCD_BIN/etcd: MetaStore only"; ETCD=0; }
for tool in ss timeout awk curl taskset; do command -v $tool >/dev/null || die "$tool is needed"; done

# The CPUs this process may use, from taskset's list (such as 0-3,6).
CPUS=()
IFS=, read -ra parts <<<"$(taskset -cp $$ | sed 's/.*: //')"
for p in "${parts[@]}"; do
	if [[ $p == *-* ]]; then for ((c = ${p%-*}; c <= ${p#*-}; c++)); do CPUS+=("$c"); done; else CPUS+=("$p"); fi
done
((${#CPUS[@]} >= 2)) || die "needs two CPUs (one for the member, one for the client); this process may use ${CPUS[*]}"
SERVER_CPU=${CPUS[0]} CLIENT_CPU=${CPUS[1]}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-onecpu.XXXXXX")
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh" # PIDS, cleanup on exit, free_port, start_cluster
SERVER_WRAP=(taskset -c "$SERVER_CPU")

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() { curl -s -m 5 "http://$EP1/metrics" | awk -v n="$1" '$1 == n {print $2}'; }

# run VARIANT: one fresh member, one load; prints the variant's row and
# appends "rps p99 cpu" to $WORK/VARIANT.
run() {
	local variant=$1 kind=ms gmp="" out="$WORK/$1.out"
	case $variant in
	ms-1p) gmp=1 ;;
	ms-default) ;;
	etcd) kind=etcd ;;
	esac
	GOMAXPROCS=$gmp start_cluster "$kind" 1 2>/dev/null
	local pid=${SPIDS[0]} c0 c1 rps p99 fs props
	c0=$(cpu_ticks "$pid")
	timeout -k 5 300 taskset -c "$CLIENT_CPU" "$ETCD_BIN/benchmark" --precise --endpoints="$EP1" \
		--conns=$(((CLIENTS + 9) / 10)) --clients="$CLIENTS" put --key-size=8 --sequential-keys \
		--total="$TOTAL" --val-size=256 >"$out" 2>&1
	c1=$(cpu_ticks "$pid")
	rps=$(awk '/Requests\/sec:/ {printf "%.0f", $2}' "$out")
	p99=$(awk '/ 99% in / {printf "%.1f", $3 * 1000}' "$out")
	fs=$(metric etcd_disk_wal_fsync_duration_seconds_count)
	props=$(metric etcd_server_proposals_committed_total)
	stop_cluster
	[[ -n $rps && -n $p99 ]] || die "$variant: no result (benchmark output in $out; KEEP_WORK=1 keeps it)"
	local cpu per
	cpu=$(awk -v a="$c0" -v b="$c1" -v n="$TOTAL" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) / hz * 1e6 / n}')
	per=$(awk -v p="$props" -v f="$fs" 'BEGIN {if (f + 0 > 0) printf "%.1f", p / f; else print "?"}')
	printf '| %s | %s | %s | %s | %s |\n' "$variant" "$rps" "$p99" "$cpu" "$per"
	echo "$rps $p99 $cpu" >>"$WORK/$variant"
}

variants=(ms-1p ms-default)
[[ $ETCD == 1 ]] && variants+=(etcd)
log "member on CPU $SERVER_CPU, client on CPU $CLIENT_CPU; put at $CLIENTS clients, $TOTAL puts; $PAIRS rounds of ${variants[*]}"
echo "| variant | req/s | p99 ms | member CPU us/put | puts per log fsync |"
echo "|---|---|---|---|---|"
for ((r = 1; r <= PAIRS; r++)); do
	for v in "${variants[@]}"; do run "$v"; done
done
echo
echo "Medians over $PAIRS rounds (ms-1p: GOMAXPROCS=1; ms-default: what serve picks; etcd: its own choice, one P):"
for v in "${variants[@]}"; do
	for col in 1 2 3; do
		awk -v c=$col '{print $c}' "$WORK/$v" | sort -g | awk '{a[NR] = $1} END {m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%s ", m}'
	done | awk -v v="$v" '{printf "  %-10s req/s %s, p99 %s ms, member CPU %s us/put\n", v, $1, $2, $3}'
done
