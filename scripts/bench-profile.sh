#!/usr/bin/env bash
# bench-profile.sh: where a member's CPU goes in the side-by-side cases of
# the speed targets (docs/BENCHMARKS.md), as CPU profiles anyone can take
# again and read with `go tool pprof`. `make bench-compare` runs it for the
# cases whose targets its run did not meet (CASES).
#
# For each case it starts fresh MetaStore members (bin/metastore, RocksDB,
# fsync on, --enable-pprof) on free loopback ports, drives them with etcd's
# benchmark tool and bench-compare's flags (etcdctl check perf for that
# case), and takes a CPU profile of the member that does the most work (the
# leader on 3 members, and one follower too) while the load runs. It writes
# the profiles (PROFILE_DIR/CASE.pprof) and PROFILE_DIR/README.md: per case
# the requests answered (or, on a follower, applied) and the member's CPU
# per request during the profile (from the kernel's accounting, which also
# counts RocksDB's own threads), the share of named parts of the member, and
# the 15 functions with the most CPU of their own.
#
# Environment:
#   ETCD_BIN     directory with etcd, etcdctl and benchmark; default
#                ../shared/peers/etcd/bin, else /tmp/etcdpeer/bin
#   MS_BIN       the metastore binary (default bin/metastore; `make build`)
#   PROFILE_DIR  output directory (default docs/bench/profiles)
#   SECONDS_PER  length of each profile in seconds (default 8; QUICK 2)
#   QUICK=1      short profiles, no check perf (a trial run)
#   CASES        the cases to profile, separated by spaces (default all):
#                put-c1 put-c100 put-c500 txn-put-c100 range-l-c100 range-s-c100
#                check-perf rest-put-c100 rest-get-c100 watch-c1000
#                put-c100-3m (its leader and a follower)
#   KEEP_WORK=1  keep the temp dir (data dirs, server logs)
# Only 127.0.0.1 is used; every process started is stopped on exit and every
# client run is bounded by `timeout`.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MS_BIN=${MS_BIN:-$ROOT/bin/metastore}
# shellcheck source=scripts/etcd-bin.sh
source "$ROOT/scripts/etcd-bin.sh"
default_etcd_bin benchmark
QUICK=${QUICK:-0}
SECONDS_PER=${SECONDS_PER:-$([[ $QUICK == 1 ]] && echo 2 || echo 8)}
PROFILE_DIR=${PROFILE_DIR:-$ROOT/docs/bench/profiles}
die() { echo "bench-profile: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

[[ $SECONDS_PER =~ ^[1-9][0-9]*$ ]] || die "SECONDS_PER must be a positive integer"
ALL_CASES="put-c1 put-c100 put-c500 txn-put-c100 range-l-c100 range-s-c100 check-perf rest-put-c100 rest-get-c100 watch-c1000 put-c100-3m"
CASES=${CASES:-$ALL_CASES}
for c in $CASES; do
	[[ " $ALL_CASES " == *" $c "* ]] || die "unknown case $c in CASES (known: $ALL_CASES)"
done
# wanted CASE: whether CASES names it.
wanted() { [[ " $CASES " == *" $1 "* ]]; }
[[ -x "$MS_BIN" ]] || die "$MS_BIN not found: run 'make build' first"
[[ -n "$ETCD_BIN" && -x "$ETCD_BIN/benchmark" && -x "$ETCD_BIN/etcdctl" ]] ||
	die "set ETCD_BIN to a directory holding etcd's benchmark and etcdctl"
ETCD_BIN=$(cd "$ETCD_BIN" && pwd)
for tool in ss timeout awk curl go; do command -v $tool >/dev/null || die "$tool is needed"; done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-profile.XXXXXX")
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh" # PIDS, cleanup on exit, free_port, start_cluster
MS_EXTRA_FLAGS=(--enable-pprof)
mkdir -p "$PROFILE_DIR"
rm -f "$PROFILE_DIR"/*.pprof # generated: this run's profiles replace the last run's
HZ=$(getconf CLK_TCK)
WARMUP=2

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# requests EP: the KV calls the member at EP has answered (gRPC, and REST
# /v1/kv), or, on a member that answers none (a follower), the proposals it
# has applied.
requests() {
	curl -sf "http://$1/metrics" | awk '
		/^grpc_server_handled_total\{.*grpc_service="etcdserverpb.KV"/ { kv += $2 }
		/^metastore_http_requests_total\{.*route="v1_kv"/ { kv += $2 }
		/^etcd_server_proposals_applied_total / { applied = $2 }
		END { printf "%d %d\n", kv, applied }'
}
# status_field EP FIELD: a number from `etcdctl endpoint status -w json`.
status_field() {
	"$ETCD_BIN/etcdctl" --endpoints="$1" --command-timeout=3s endpoint status -w json 2>/dev/null |
		grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2
}

# The named parts: the cumulative share of one frame each. They nest (the
# raft loop holds the log write, everything holds cgo calls), so they do not
# add up to 100%.
PARTS=(
	"gRPC: requests read and decoded (HTTP/2 frames, headers)|google.golang.org/grpc/internal/transport.(*http2Server).HandleStreams"
	"gRPC: one call (decoding, interceptors, our service, encoding the reply)|google.golang.org/grpc.(*Server).processRPC"
	"gRPC: replies written (loopy writer, socket writes)|google.golang.org/grpc/internal/transport.(*loopyWriter).run"
	"our KV service within the call (a read whole; for a write its checks and proposal, the apply runs on its own goroutine)|github.com/metastore/metastore/grpc.NewServer.AuthUnaryInterceptor.func8"
	"raft goroutine (Ready, the log's write, messages)|github.com/metastore/metastore/raft.(*Node).run"
	"- of it the raft log's synced write|github.com/metastore/metastore/raft.(*logStore).save"
	"apply goroutine (the state machine and its write)|github.com/metastore/metastore/raft.(*Node).applyLoop"
	"raft transport: messages to peers|github.com/metastore/metastore/raft.(*peer).run"
	"raft transport: messages from peers|github.com/metastore/metastore/raft.(*Transport).serveMessages"
	"all cgo calls (RocksDB's C++ and the kernel under it)|runtime.cgocall"
	"garbage collector (background marking)|runtime.gcBgMarkWorker"
	"Go scheduler looking for work|runtime.findRunnable"
	"HTTP/1.1 connections (fasthttp: reads, the handler, writes)|github.com/valyala/fasthttp.(*Server).serveConn"
	"- of it our REST and gateway handler|github.com/metastore/metastore/http.(*Handler).Handle"
	"watch hub: fan-out of events to watchers|github.com/metastore/metastore/mvcc.(*WatchHub).fanOutLoop"
	"watch streams: responses encoded and sent|github.com/metastore/metastore/grpc.(*watchServer).sendLoop"
)

SUMMARY=$WORK/README.md
{
	echo "# Where a member's CPU goes"
	echo
	echo "Written by \`make bench-profile\` (scripts/bench-profile.sh) on $(date -u +%Y-%m-%d): MetaStore built from"
	echo "$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown) on $(nproc) vCPU,"
	echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the start. Each profile is ${SECONDS_PER} s of one member,"
	echo "taken ${WARMUP} s into the load; the client runs on the same cores."
	echo "Open one with \`go tool pprof -top FILE\` (or \`-http=:8080 FILE\`)."
	echo
	echo "Shares are of the profiled member's sampled CPU. The parts nest (the raft"
	echo "goroutine holds the log's write; cgo calls sit under several parts), so they"
	echo "do not add up to 100%. CPU per request comes from the kernel's accounting,"
	echo "which also counts RocksDB's own threads, which the profile does not see."
} >"$SUMMARY"

# profile NAME TITLE EP PID LOAD...: run LOAD in the background, profile the
# member at EP (process PID) over SECONDS_PER seconds, then stop LOAD if it
# is still running, and summarize.
profile() {
	local name=$1 title=$2 ep=$3 pid=$4
	shift 4
	local out=$PROFILE_DIR/$name.pprof lp k0 k1 a0 a1 t0 t1
	log "$name: $title"
	"$@" >"$WORK/$name.load" 2>&1 &
	lp=$!
	PIDS+=("$lp")
	sleep "$WARMUP"
	read -r k0 a0 < <(requests "$ep")
	t0=$(cpu_ticks "$pid")
	curl -sf -o "$out" "http://$ep/debug/pprof/profile?seconds=$SECONDS_PER" || log "$name: no profile"
	read -r k1 a1 < <(requests "$ep")
	t1=$(cpu_ticks "$pid")
	kill "$lp" 2>/dev/null
	wait "$lp" 2>/dev/null
	{
		echo
		echo "## $title"
		echo
		echo "File: [$name.pprof]($name.pprof). Load: \`${*##*/}\`"
		echo
		if [[ ! -s "$out" ]]; then
			echo "No profile was taken (see the member's log)."
			return
		fi
		local n=$((k1 - k0)) what="KV requests answered"
		if ((n == 0)); then n=$((a1 - a0)) what="proposals applied"; fi
		echo "During the profile: $n $what ($((n / SECONDS_PER))/s), member CPU" \
			"$(awk -v d=$((t1 - t0)) -v n="$n" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.1f", d / hz * 1e6 / n; else printf "n/a" }') us per request."
		echo
		echo "| part | share of the member's CPU |"
		echo "|---|---|"
		local top part label frame
		top=$(go tool pprof -top -cum -nodecount=100000 "$out" 2>/dev/null)
		for part in "${PARTS[@]}"; do
			label=${part%%|*} frame=${part#*|}
			awk -v f="$frame" -v l="$label" '$6 == f { printf "| %s | %s |\n", l, $5; found = 1 } END { if (!found) printf "| %s | 0%% |\n", l }' <<<"$top"
		done
		echo
		echo "The 15 functions with the most CPU of their own:"
		echo
		echo '```'
		go tool pprof -top -nodecount=15 "$out" 2>/dev/null | sed -n '/flat%/,$p'
		echo '```'
	} >>"$SUMMARY"
}

scale() { if [[ $QUICK == 1 ]]; then echo $(($1 / 4)); else echo "$1"; fi; }
KEY=--key-size=8 VAL=--val-size=256
# Each load is sized to outlast the profile on this kind of machine; the
# profile, not the load, ends each case.
BM=(timeout -k 5 120 "$ETCD_BIN/benchmark" --precise)

# one_member CASE TITLE LOAD...: the case on a fresh single member, when
# CASES names it. SETUP, when set, is a function run first with the
# member's endpoint.
one_member() {
	local name=$1 title=$2
	shift 2
	wanted "$name" || return 0
	start_cluster metastore 1
	if [[ -n ${SETUP:-} ]]; then "$SETUP" "$EP1" || die "$name: set-up failed"; fi
	# The load names the member as @EP@, known only now.
	profile "$name" "$title" "$EP1" "${SPIDS[0]}" "${@//@EP@/$EP1}"
	stop_cluster
}
# put_foo EP: the key the range cases read.
put_foo() { "$ETCD_BIN/etcdctl" --endpoints="$1" put foo "$(head -c 256 /dev/zero | tr '\0' v)" >/dev/null; }
# fill_keys EP: the 100,000 keys the REST get case reads.
fill_keys() {
	timeout -k 5 120 "$MS_BIN" bench rest-put --endpoints="$1" --conns=10 --clients=10 $KEY \
		--key-space-size=100000 --sequential-keys $VAL --total=100000 >/dev/null
}
MB=(timeout -k 5 120 "$MS_BIN" bench)

one_member put-c1 "put, 1 member, 1 client" \
	"${BM[@]}" --endpoints=@EP@ --conns=1 --clients=1 put $KEY --sequential-keys --total="$(scale 100000)" $VAL
one_member put-c100 "put, 1 member, 100 clients" \
	"${BM[@]}" --endpoints=@EP@ --conns=10 --clients=100 put $KEY --sequential-keys --total="$(scale 1000000)" $VAL
one_member put-c500 "put, 1 member, 500 clients" \
	"${BM[@]}" --endpoints=@EP@ --conns=50 --clients=500 put $KEY --sequential-keys --total="$(scale 1000000)" $VAL
one_member txn-put-c100 "txn-put, 1 op, 100k keys, 1 member, 100 clients" \
	"${BM[@]}" --endpoints=@EP@ --conns=10 --clients=100 txn-put --txn-ops=1 $KEY --key-space-size=100000 $VAL --total="$(scale 1000000)"
SETUP=put_foo one_member range-l-c100 "range linearizable, one key, 1 member, 100 clients" \
	"${BM[@]}" --endpoints=@EP@ --conns=10 --clients=100 range foo --consistency=l --total="$(scale 4000000)"
SETUP=put_foo one_member range-s-c100 "range serializable, one key, 1 member, 100 clients" \
	"${BM[@]}" --endpoints=@EP@ --conns=10 --clients=100 range foo --consistency=s --total="$(scale 4000000)"
if [[ $QUICK != 1 ]]; then
	one_member check-perf "etcdctl check perf --load=l, 1 member" \
		timeout -k 5 120 "$ETCD_BIN/etcdctl" --endpoints=@EP@ --command-timeout=60s check perf --load=l
fi
one_member rest-put-c100 "REST PUT /v1/kv, 1 member, 100 connections (metastore bench)" \
	"${MB[@]}" rest-put --endpoints=@EP@ --conns=100 --clients=100 $KEY --key-space-size=100000 --sequential-keys $VAL --total="$(scale 1000000)"
SETUP=fill_keys one_member rest-get-c100 "REST GET /v1/kv, 100k keys, 1 member, 100 connections (metastore bench)" \
	"${MB[@]}" rest-get --endpoints=@EP@ --conns=100 --clients=100 $KEY --key-space-size=100000 --sequential-keys $VAL --total="$(scale 4000000)"
one_member watch-c1000 "watch-latency, 1,000 watchers on one key, 1,000 puts/s asked (metastore bench, 4 put clients; a request is a put and its 1,000 events)" \
	"${MB[@]}" watch-latency --endpoints=@EP@ --conns=1 --clients=4 --streams=10 --watchers-per-stream=100 --rate=1000 --total="$(scale 100000)" $KEY $VAL

for role in leader follower; do
	wanted put-c100-3m || break
	start_cluster metastore 3
	lead=$(status_field "$EP1" leader)
	target="" tpid="" i=0
	for ep in ${EPS//,/ }; do
		id=$(status_field "$ep" member_id)
		if [[ ($role == leader && $id == "$lead") || ($role == follower && $id != "$lead" && -z $target) ]]; then
			target=$ep tpid=${SPIDS[i]}
		fi
		i=$((i + 1))
	done
	[[ -n $target ]] || die "no $role found among $EPS"
	profile "put-c100-3m-$role" "put to the leader, 3 members, 100 clients: the $role" "$target" "$tpid" \
		"${BM[@]}" --endpoints="$EPS" --target-leader --conns=10 --clients=100 put $KEY --sequential-keys --total="$(scale 1000000)" $VAL
	stop_cluster
done

cp "$SUMMARY" "$PROFILE_DIR/README.md"
log "profiles and $PROFILE_DIR/README.md written"
