#!/usr/bin/env bash
# bench-ceiling.sh: what the benchmark clients reach on this machine against
# a server that costs nothing but gRPC (bench/nullserver: answers at once,
# stores nothing). Every speed target is a ratio against etcd measured with
# the client on the same cores, so this bounds what any server can show here.
#
# Cases (the client flags of bench-compare.sh): put at 1, 100 and 500
# clients, txn-put at 100, and etcdctl check perf --load=l. For each: the
# client's result, and the CPU the client and the null server used per
# request (microseconds, from the kernel's process accounting).
#
# Environment:
#   ETCD_BIN  directory with etcdctl and etcd's benchmark tool; default
#             ../shared/peers/etcd/bin, else /tmp/etcdpeer/bin
#   QUICK=1   a tenth of the requests and no check perf (a trial run)
# Only 127.0.0.1 is used; the null server is stopped on exit.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/etcd-bin.sh
source "$ROOT/scripts/etcd-bin.sh"
default_etcd_bin benchmark
QUICK=${QUICK:-0}
die() { echo "bench-ceiling: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
[[ -n "$ETCD_BIN" && -x "$ETCD_BIN/benchmark" && -x "$ETCD_BIN/etcdctl" ]] ||
	die "set ETCD_BIN to a directory holding etcd's benchmark and etcdctl"
for tool in ss timeout awk go; do command -v $tool >/dev/null || die "$tool is needed"; done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-ceiling.XXXXXX")
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"

(cd "$ROOT" && go build -o "$WORK/nullserver" ./bench/nullserver) || die "cannot build bench/nullserver"
port=$(free_port)
EP=127.0.0.1:$port
"$WORK/nullserver" --listen "$EP" 2>"$WORK/nullserver.log" &
SRV=$!
PIDS+=("$SRV")
for ((i = 0; i < 100; i++)); do ss -Hltn "( sport = :$port )" | grep -q . && break; sleep 0.1; done
ss -Hltn "( sport = :$port )" | grep -q . || die "nullserver did not start: $(cat "$WORK/nullserver.log")"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# child_ticks: user+system clock ticks of this shell's finished children.
child_ticks() { awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat; }
scale() { if [[ $QUICK == 1 ]]; then echo $(($1 / 10)); else echo "$1"; fi; }
HZ=$(getconf CLK_TCK)

echo "| case | client result | client CPU us/req | null server CPU us/req |"
echo "|---|---|---|---|"
# run LABEL benchmark-args...
run() {
	local label=$1 out=$WORK/$1.out s0 s1 c0 c1 n
	shift
	log "$label"
	s0=$(cpu_ticks "$SRV"); c0=$(child_ticks)
	timeout -k 10 300 "$ETCD_BIN/benchmark" --precise --endpoints="$EP" "$@" >"$out" 2>/dev/null
	s1=$(cpu_ticks "$SRV"); c1=$(child_ticks)
	n=$(awk '/Total:/ && !t {t = $2} /Requests\/sec/ {r = $2} END {printf "%d", t * r}' "$out")
	[[ $n -gt 0 ]] || { echo "| $label | ERR (see $out) | | |"; return; }
	echo "| $label | $(awk '/Requests\/sec/ {printf "%.0f req/s", $2} / 99% in/ {printf ", p99 %.2f ms", $3 * 1000}' "$out") |" \
		"$(awk -v d=$((c1 - c0)) -v n="$n" -v hz="$HZ" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}') |" \
		"$(awk -v d=$((s1 - s0)) -v n="$n" -v hz="$HZ" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}') |"
}
KEY=--key-size=8 VAL=--val-size=256
run "put, 1 client" --conns=1 --clients=1 put $KEY --sequential-keys --total="$(scale 20000)" $VAL
run "put, 100 clients" --conns=10 --clients=100 put $KEY --sequential-keys --total="$(scale 200000)" $VAL
run "put, 500 clients" --conns=50 --clients=500 put $KEY --sequential-keys --total="$(scale 200000)" $VAL
run "txn-put, 100 clients" --conns=10 --clients=100 txn-put --txn-ops=1 $KEY --key-space-size=100000 $VAL --total="$(scale 100000)"

if [[ $QUICK != 1 ]]; then
	log "etcdctl check perf --load=l (60 s)"
	s0=$(cpu_ticks "$SRV"); c0=$(child_ticks)
	timeout -k 10 180 "$ETCD_BIN/etcdctl" --endpoints="$EP" --command-timeout=60s check perf --load=l >"$WORK/cp.out" 2>&1
	s1=$(cpu_ticks "$SRV"); c1=$(child_ticks)
	res=$(tr '\r' '\n' <"$WORK/cp.out" | grep -aoE '(PASS|FAIL): Throughput[^0-9]*[0-9]+ writes/s' | head -1)
	w=$(grep -oE '[0-9]+ writes/s' <<<"$res" | awk '{print $1}')
	if [[ -n "$w" ]]; then
		n=$((w * 60))
		echo "| check perf --load=l | $res (needs 7,200) |" \
			"$(awk -v d=$((c1 - c0)) -v n="$n" -v hz="$HZ" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}') |" \
			"$(awk -v d=$((s1 - s0)) -v n="$n" -v hz="$HZ" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}') |"
	else
		echo "| check perf --load=l | ERR: $(tail -3 "$WORK/cp.out" | tr '\n' ' ') | | |"
	fi
fi
