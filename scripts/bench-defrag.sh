#!/usr/bin/env bash
# bench-defrag.sh: write latency with and without a running defragment and a
# running compaction, on a database of at least 1 GiB (issue 7).
#
# One member (RocksDB engine, fsync on, default raft timing) on free loopback
# ports and a fresh temp data dir is filled with FILL_MB values of 1 MiB of
# random bytes (incompressible: `metastore bench` values are one repeated
# byte, which RocksDB's lz4/zstd would shrink to almost nothing) over
# FILL_KEYS keys, so most of it is superseded history, then HISTORY_OPS puts
# of 256 B over 20,000 keys (many small superseded versions for compaction to
# walk). Then the same fixed-rate write workload (`metastore bench put
# --rate RATE --duration DURATION --clients 50`) runs, each case once the
# member is idle again (under 10% of a core for 2 s, at most 180 s):
#   a. alone (baseline);
#   b. with `metastore defrag` started 1 s into it;
#   c. with a compaction of all history up to the current revision
#      (/v3/kv/compaction with physical: true, which waits until the old
#      versions are deleted) started 1 s into it;
#   d. with `metastore defrag` again, now that the compaction left space to
#      give back.
# For each case it prints req/s, p50/p99/p99.9/max, errors, how long the
# operation took, and the load while it ran: req/s and the worst 100 ms
# window's p99 between the operation's start and end.
#
# With etcd at hand (ETCD_BIN, default ../shared/peers/etcd/bin, else
# /tmp/etcdpeer/bin; ETCD=0 skips it) the same runs against one etcd member
# (same fill, --quota-backend-bytes 8 GiB as MetaStore's default) afterwards.
#
# Environment:
#   MS_BIN       the metastore binary (default bin/metastore; `make build`)
#   FILL_MB      MiB of 1 MiB values to write first (default 1200)
#   FILL_KEYS    keys they go to (default 300: 4 versions each)
#   HISTORY_OPS  256 B puts over 20,000 keys after that (default 200000)
#   RATE         puts/s of the measured workload (default 2000)
#   DURATION     length of each measured run (default 30s)
#   ETCD_FILL_MB FILL_MB for etcd (default FILL_MB)
#   MIN_DB_BYTES fail unless the fill reaches this dbSize (default 1 GiB)
#   OP_TIMEOUT   seconds a defrag or compaction may take (default 900)
#   KEEP_WORK=1  keep the temp dir (data dirs, logs, raw JSON)
#
# Only 127.0.0.1 is used. Every process started here is stopped on exit
# (trap), and every step is bounded by `timeout`.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MS_BIN=${MS_BIN:-$ROOT/bin/metastore}
# shellcheck source=scripts/etcd-bin.sh
source "$ROOT/scripts/etcd-bin.sh"
default_etcd_bin etcd
ETCD=${ETCD:-1}
FILL_MB=${FILL_MB:-1200}
FILL_KEYS=${FILL_KEYS:-300}
HISTORY_OPS=${HISTORY_OPS:-200000}
RATE=${RATE:-2000}
DURATION=${DURATION:-30s}
ETCD_FILL_MB=${ETCD_FILL_MB:-$FILL_MB}
OP_TIMEOUT=${OP_TIMEOUT:-900}
MIN_DB_BYTES=${MIN_DB_BYTES:-1073741824}
WORKLOAD_KEYS=20000

die() { echo "bench-defrag: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

[[ -x "$MS_BIN" ]] || die "$MS_BIN not found: run 'make build' first"
MS_BIN=$(cd "$(dirname "$MS_BIN")" && pwd)/$(basename "$MS_BIN")
for tool in ss timeout awk curl jq base64 du; do command -v $tool >/dev/null || die "$tool is needed"; done
if [[ $ETCD == 1 && ( -z "$ETCD_BIN" || ! -x "$ETCD_BIN/etcd" ) ]]; then
	log "no etcd binary (ETCD_BIN): MetaStore only"
	ETCD=0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-defrag.XXXXXX")
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh" # PIDS, stop_pids, cleanup on exit, free_port
now() { date +%s.%N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# status FIELD: a field of the member's status (dbSize, dbSizeInUse, header.revision).
status() {
	timeout 30 "$MS_BIN" endpoint status --endpoints "$EP" --command-timeout 20s -w json 2>/dev/null |
		jq -r ".[0].Status.$1"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }

# start KIND: one member on fresh ports and data dir; sets EP, SPID, DIR.
start() {
	local kind=$1 c p
	c=$(free_port) p=$(free_port)
	DIR=$WORK/$kind
	mkdir -p "$DIR"
	local -a args=(--name "${kind}1" --data-dir "$DIR/data"
		--listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c"
		--listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p"
		--initial-cluster "${kind}1=http://127.0.0.1:$p" --initial-cluster-state new
		--quota-backend-bytes 8589934592)
	if [[ $kind == etcd ]]; then
		"$ETCD_BIN/etcd" "${args[@]}" >"$DIR/server.log" 2>&1 &
	else
		"$MS_BIN" serve --engine rocksdb "${args[@]}" >"$DIR/server.log" 2>&1 &
	fi
	SPID=$!
	PIDS+=("$SPID")
	EP=127.0.0.1:$c
	local deadline=$((SECONDS + 60))
	until [[ "$(status leader 2>/dev/null)" =~ ^[1-9][0-9]*$ ]]; do
		((SECONDS > deadline)) && die "$kind did not become ready (KEEP_WORK=1 keeps $DIR/server.log)"
		kill -0 "$SPID" 2>/dev/null || die "$kind exited (KEEP_WORK=1 keeps $DIR/server.log)"
		sleep 0.5
	done
	log "$kind ready at $EP (pid $SPID)"
}

# forget PID: drop an exited process from the ones the trap stops.
forget() {
	local keep=() p
	for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}
stop() {
	stop_pids "$SPID"
	forget "$SPID"
}

# put_big N: a 1 MiB value of random bytes to key fill/(N mod FILL_KEYS),
# through the JSON gateway (/v3/kv/put, which etcd serves too); prints the
# HTTP status.
put_big() {
	local k
	k=$(printf 'fill/%06d' $(($1 % FILL_KEYS)) | base64 -w0)
	{
		printf '{"key":"%s","value":"' "$k"
		head -c 1048576 /dev/urandom | base64 -w0
		printf '"}'
	} | curl -sS -o /dev/null -w '%{http_code}\n' --max-time 120 -X POST --data-binary @- "http://$EP/v3/kv/put"
}
export -f put_big
export FILL_KEYS

# fill MB: MB big puts, 4 at a time, then the small-value history.
fill() {
	local mb=$1 codes t0
	t0=$(now)
	log "filling: $mb x 1 MiB random values over $FILL_KEYS keys"
	codes=$(seq 1 "$mb" | EP=$EP timeout -k 10 1800 xargs -P 4 -I{} bash -c 'put_big {}' | sort | uniq -c)
	log "  HTTP status counts: $(tr -s ' \n' ' ' <<<"$codes")"
	grep -qv ' 200$' <<<"$codes" && die "some fill puts failed: $codes"
	log "  $HISTORY_OPS puts of 256 B over $WORKLOAD_KEYS keys"
	timeout -k 10 900 "$MS_BIN" bench put --endpoints "$EP" --conns 10 --clients 100 --total "$HISTORY_OPS" \
		--key-size 8 --val-size 256 --key-space-size "$WORKLOAD_KEYS" --json >"$DIR/history.json" 2>"$DIR/history.err" ||
		die "history fill failed: $(tail -n 1 "$DIR/history.err")"
	FILL_SEC=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
	FILL_DB=$(status dbSize) FILL_INUSE=$(status dbSizeInUse) FILL_REV=$(status header.revision)
	FILL_DU=$(du -sb "$DIR/data" | awk '{print $1}')
	log "  filled in ${FILL_SEC} s: dbSize $(mib "$FILL_DB"), in use $(mib "$FILL_INUSE"), du $(mib "$FILL_DU"), revision $FILL_REV"
	((FILL_DB >= MIN_DB_BYTES)) || die "dbSize $FILL_DB is below $MIN_DB_BYTES bytes: raise FILL_MB"
}

# settle: wait (up to 180 s) until the member uses under 10% of a core, so
# that each case starts without the previous step's background work (RocksDB
# compacting what the fill wrote, etcd's snapshot) still running.
CLK_TCK=$(getconf CLK_TCK)
settle() {
	local t0=$SECONDS a b
	while ((SECONDS - t0 < 180)); do
		a=$(awk '{print $14 + $15}' "/proc/$SPID/stat") || return
		sleep 2
		b=$(awk '{print $14 + $15}' "/proc/$SPID/stat") || return
		((b - a < CLK_TCK / 5)) && break
	done
	SETTLE=$((SECONDS - t0))
}

# The operations run next to the workload. Each sets OP_OK (ok or the error).
op_none() { OP_OK=ok; }
op_defrag() {
	if timeout -k 10 "$OP_TIMEOUT" "$MS_BIN" defrag --endpoints "$EP" --command-timeout "${OP_TIMEOUT}s" \
		>"$1.op" 2>&1; then OP_OK=ok; else OP_OK="failed: $(tail -n 1 "$1.op")"; fi
}
op_compact() {
	local rev
	rev=$(status header.revision)
	echo "compaction at revision $rev (physical)" >"$1.op"
	if timeout -k 10 "$OP_TIMEOUT" curl -sS --max-time "$OP_TIMEOUT" -X POST \
		--data "{\"revision\":\"$rev\",\"physical\":true}" "http://$EP/v3/kv/compaction" >>"$1.op" 2>&1 &&
		! grep -q '"error"\|"code"' "$1.op"; then OP_OK=ok; else OP_OK="failed: $(tail -c 200 "$1.op")"; fi
}

# run_case SERVER LABEL TITLE OP: the workload, and OP started 1 s into it.
run_case() {
	local server=$1 label=$2 title=$3 op=$4 out="$DIR/$2" bpid t0 s e db0 db1 l0
	settle
	db0=$(status dbSize) l0=$(load)
	log "$server $label: $title (dbSize $(mib "$db0"), load $l0, settled in $SETTLE s)"
	t0=$(now)
	timeout -k 10 300 "$MS_BIN" bench put --endpoints "$EP" --conns 10 --clients 50 --rate "$RATE" \
		--duration "$DURATION" --total 0 --key-size 8 --val-size 256 --key-space-size "$WORKLOAD_KEYS" \
		--request-timeout 10s --json >"$out.json" 2>"$out.err" &
	bpid=$!
	PIDS+=("$bpid")
	sleep 1
	s=$(now)
	"$op" "$out"
	e=$(now)
	wait "$bpid"
	local brc=$?
	forget "$bpid"
	db1=$(status dbSize)
	local opsec="-"
	[[ $op != op_none ]] && opsec=$(awk -v a="$s" -v b="$e" 'BEGIN { printf "%.1f s", b - a }')
	[[ $OP_OK == ok ]] || opsec="$opsec, $OP_OK"
	if ((brc != 0)) || ! jq -e .latency "$out.json" >/dev/null 2>&1; then
		ROWS+=("| $server | $title | failed: $(tail -n 1 "$out.err" | cut -c1-80) | | | | | | | $opsec | | | $(mib "$db0") -> $(mib "$db1") |")
		log "  workload failed: $(tail -n 1 "$out.err")"
		return
	fi
	# The 100 ms windows whose end falls while the operation ran (their
	# sec counts from the workload's start, about t0).
	local during="-" wp99="-"
	if [[ $op != op_none ]]; then
		read -r during wp99 < <(jq -r --argjson a "$(awk -v a="$s" -v b="$t0" 'BEGIN { print a - b }')" \
			--argjson b "$(awk -v a="$e" -v b="$t0" 'BEGIN { print a - b }')" '
			.window_sec as $ws
			| [.series[] | select(.sec > $a and .sec - $ws < $b)] as $w
			| if ($w | length) == 0 then "- -"
			  else "\(($w | map(.ops) | add) / (($w | length) * $ws) | floor) \($w | map(.p99_ms) | max)" end' "$out.json")
		[[ $(awk -v a="$e" -v b="$t0" -v d="${DURATION%s}" 'BEGIN { print (a - b > d + 1) }') == 1 ]] &&
			during="$during (op outlasted the workload)"
	fi
	ROWS+=("$(jq -r --arg srv "$server" --arg t "$title" --arg op "$opsec" --arg dur "$during" --arg wp "$wp99" \
		--arg db "$(mib "$db0") -> $(mib "$db1")" --arg l "$l0" '
		def f: . * 100 | round / 100;
		"| \($srv) | \($t) | \(.throughput | floor) | \(.latency.p50_ms | f) | \(.latency.p99_ms | f) | \(.latency.p999_ms | f) | \(.latency.max_ms | f) | \(.failed)\(if .failed > 0 then " (" + (.errors | to_entries | map("\(.key) \(.value)") | join(", ")) + ")" else "" end) | \($op) | \($dur) | \($wp) | \($db) | \($l) |"' "$out.json")")
	log "  ${ROWS[-1]}"
}

bench_server() {
	local server=$1 mb=$2
	start "$server"
	fill "$mb"
	INFO+=("$server: filled with $mb x 1 MiB random values over $FILL_KEYS keys and $HISTORY_OPS x 256 B puts over $WORKLOAD_KEYS keys in $FILL_SEC s: dbSize $(mib "$FILL_DB") (in use $(mib "$FILL_INUSE")), data dir (du) $(mib "$FILL_DU"), revision $FILL_REV.")
	run_case "$server" a "a. baseline" op_none
	run_case "$server" b "b. during defrag" op_defrag
	run_case "$server" c "c. during compaction of all history" op_compact
	run_case "$server" d "d. during defrag after the compaction" op_defrag
	INFO+=("$server: at the end dbSize $(mib "$(status dbSize)"), data dir (du) $(mib "$(du -sb "$DIR/data" | awk '{print $1}')").")
	stop
}

ROWS=() INFO=()
LOAD_START=$(load)
log "metastore: $MS_BIN ($("$MS_BIN" version 2>/dev/null | awk -F': *' '/git commit/ {print $2}')); work dir: $WORK"
bench_server metastore "$FILL_MB"
if [[ $ETCD == 1 ]]; then bench_server etcd "$ETCD_FILL_MB"; fi

echo
echo "Measured $(date -u +%Y-%m-%d) by \`make bench-defrag\` (scripts/bench-defrag.sh), MetaStore"
echo "$("$MS_BIN" version 2>/dev/null | awk -F': *' '/git commit/ {print $2}') on RocksDB$([[ $ETCD == 1 ]] && echo ", etcd $("$ETCD_BIN/etcd" --version 2>/dev/null | awk '/etcd Version/ {print $3}')"), one member, fsync on, $(nproc) vCPU,"
echo "load average $LOAD_START at the start and $(load) at the end. Workload: \`metastore bench put"
echo "--rate $RATE --duration $DURATION --conns 10 --clients 50 --val-size 256 --key-space-size $WORKLOAD_KEYS\`."
for i in "${INFO[@]}"; do echo "$i"; done
echo
echo "| server | case | req/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | operation took | req/s while it ran | worst 100 ms p99 while it ran, ms | dbSize before -> after | load avg at start |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for r in "${ROWS[@]}"; do echo "$r"; done
