#!/usr/bin/env bash
# bench-compare.sh: MetaStore and etcd side by side, on this machine, with the
# same client, and the result as a table in docs/BENCHMARKS.md.
#
# It starts MetaStore (bin/metastore, RocksDB engine) and etcd with comparable
# settings (fsync on, default raft timing and snapshot count, fresh data
# directories under one temp dir on the same disk, free loopback ports), first
# one member of each, then three of each, and runs the cases of
# shared/peers/etcd/BASELINE.md against both, etcd then MetaStore case by case
# so that both see the same machine load. The client is etcd's own
# bin/benchmark when the etcd directory has it, `metastore bench` otherwise;
# the REST cases (which etcd does not have) use `metastore bench` on both
# sides: MetaStore's REST API against etcd's gRPC.
#
# Environment:
#   ETCD_BIN     directory with etcd, etcdctl (and benchmark); default
#                ../shared/peers/etcd/bin, else /tmp/etcdpeer/bin
#   MS_BIN       the metastore binary (default bin/metastore; `make build`)
#   QUICK=1      a tenth of the operations and check perf --load=s (a trial run)
#   ROUNDS       rounds of each put, range, txn and REST case (default 3, QUICK 1):
#                etcd then MetaStore in every round; the table has the
#                median of each side and the ratio of every round
#   CASE_TIMEOUT seconds any one client run may take (default 300)
#   OUT_MD       the markdown file to update (default docs/BENCHMARKS.md)
#   PLOT_DIR     where plots and raw outputs go (default docs/bench)
#   PROFILE      1 (default): after the runs, `scripts/bench-profile.sh` takes
#                CPU profiles of the cases whose targets this run did not meet,
#                into PLOT_DIR/profiles (needs etcd's benchmark); 0: none
#   KEEP_WORK=1  keep the temp dir (data dirs, server logs) for a post-mortem
#
# Only 127.0.0.1 is used. Every process started here is stopped on exit
# (trap), and every client run is bounded by `timeout`.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MS_BIN=${MS_BIN:-$ROOT/bin/metastore}
# shellcheck source=scripts/etcd-bin.sh
source "$ROOT/scripts/etcd-bin.sh"
default_etcd_bin etcd
QUICK=${QUICK:-0}
ROUNDS=${ROUNDS:-$([[ $QUICK == 1 ]] && echo 1 || echo 3)}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "bench-compare: ROUNDS must be a positive integer" >&2; exit 1; }
CASE_TIMEOUT=${CASE_TIMEOUT:-300}
PROFILE=${PROFILE:-1}
OUT_MD=${OUT_MD:-$ROOT/docs/BENCHMARKS.md}
PLOT_DIR=${PLOT_DIR:-$ROOT/docs/bench}
BEGIN_MARK='<!-- bench-compare:begin -->'
END_MARK='<!-- bench-compare:end -->'

die() { echo "bench-compare: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

[[ -x "$MS_BIN" ]] || die "$MS_BIN not found: run 'make build' first"
[[ -n "$ETCD_BIN" && -x "$ETCD_BIN/etcd" ]] || die "no etcd binary: set ETCD_BIN to a directory holding etcd and etcdctl"
[[ -x "$ETCD_BIN/etcdctl" ]] || die "$ETCD_BIN/etcdctl not found"
ETCD_BIN=$(cd "$ETCD_BIN" && pwd)
CLIENT=metastore-bench
[[ -x "$ETCD_BIN/benchmark" ]] && CLIENT=etcd-benchmark
for tool in ss timeout awk; do command -v $tool >/dev/null || die "$tool is needed"; done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-compare.XXXXXX")
RAW=$WORK/raw
mkdir -p "$RAW" "$PLOT_DIR"
rm -f "$PLOT_DIR"/*.png # generated: this run's plots replace the last run's
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh" # PIDS, stop_pids, cleanup on exit, free_port, start_cluster

scale() { if [[ "$QUICK" == 1 ]]; then echo $(($1 / 10)); else echo "$1"; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

rss_mb() { awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }

# Results: R[label|server] = "reqs_per_s p50_ms p99_ms" or "ERR message".
declare -A R=()
declare -a ORDER=()
declare -A TITLE=() SHAPE=()

# parse_benchmark FILE [SECTION]: etcd's bin/benchmark report -> "rps p50 p99"
# (SECTION: the summary heading to read after, for watch-latency).
parse_benchmark() {
	awk -v sec="${2:-}" '
		sec != "" && index($0, sec) { on = 1; next }
		sec != "" && !on { next }
		/Requests\/sec:/ && rps == "" { rps = $2 }
		/ 50% in / && p50 == "" { p50 = $3 * 1000 }
		/ 99% in / && p99 == "" { p99 = $3 * 1000 }
		END { if (rps == "" || p99 == "") exit 1; printf "%.0f %.3f %.3f\n", rps, p50, p99 }' "$1"
}

# parse_json FILE: `metastore bench --json` -> "throughput p50 p99" (the
# headline latency comes before per-kind and per-window ones).
parse_json() {
	local tp p50 p99 failed
	tp=$(grep -m1 -o '"throughput": [0-9.e+-]*' "$1" | awk '{print $2}')
	p50=$(grep -m1 -o '"p50_ms": [0-9.e+-]*' "$1" | awk '{print $2}')
	p99=$(grep -m1 -o '"p99_ms": [0-9.e+-]*' "$1" | awk '{print $2}')
	failed=$(grep -m1 -o '"failed": [0-9]*' "$1" | awk '{print $2}')
	[[ -n "$tp" && -n "$p99" ]] || return 1
	awk -v a="$tp" -v b="$p50" -v c="$p99" 'BEGIN { printf "%.0f %.3f %.3f\n", a, b, c }'
	[[ "${failed:-0}" == 0 ]] || echo "  ($failed failed operations)" >&2
}

# short_err TEXT: a failure message short enough for a table cell.
short_err() {
	sed -E 's/^metastore: bench [a-z-]+: //; s/^.*rpc error: code = ([A-Za-z]+) desc = /\1: /; s/\|/\\|/g' <<<"$1" | cut -c1-90
}

# record LABEL SERVER TITLE SHAPE RESULT
declare -A LISTED=()
record() {
	local key="$1|$2"
	[[ -n "${LISTED[$1]:-}" ]] || ORDER+=("$1")
	LISTED[$1]=1
	TITLE[$1]=$3 SHAPE[$1]=$4 R[$key]=$5
	[[ $5 == ERR* ]] && R[$key]="ERR $(short_err "${5#ERR }")"
	log "  $2 $1: $5"
}

# run_client LABEL SERVER ENDPOINTS TITLE SHAPE WORKLOAD POSITIONAL -- FLAGS...
# Runs one case with the chosen client. FLAGS are the workload's flags in
# etcd benchmark spelling (--conns/--clients/--target-leader included).
# With ROUND set (both) the result goes to RR[label|server|round] instead
# of the table, and the raw output file is named after the round.
run_client() {
	local label=$1 server=$2 eps=$3 title=$4 shape=$5 workload=$6 pos=$7
	shift 8
	local out="$RAW/$server-$label${ROUND:+-r$ROUND}.txt"
	local res="" globals=() sub=()
	local a
	for a in "$@"; do
		case $a in
		--conns=* | --clients=* | --target-leader) globals+=("$a") ;;
		*) sub+=("$a") ;;
		esac
	done
	if [[ $CLIENT == etcd-benchmark ]]; then
		echo "# benchmark --precise --endpoints=$eps ${globals[*]} $workload $pos ${sub[*]}" >"$out"
		timeout -k 10 "$CASE_TIMEOUT" "$ETCD_BIN/benchmark" --precise --endpoints="$eps" "${globals[@]}" \
			$workload $pos "${sub[@]}" 2>>"$RAW/$server-$label.err" | tr '\r' '\n' | grep -av '^ *[0-9]* / [0-9]* \[' >>"$out"
		if [[ $workload == watch-latency ]]; then
			res=$(parse_benchmark "$out" "Watch events summary") &&
				res="$(parse_benchmark "$out" "Put summary" | awk '{print $1}') ${res#* }"
		else
			res=$(parse_benchmark "$out")
		fi
	else
		run_ms_raw "$label" "$server" "$eps" "$workload" "$pos" "${globals[@]}" "${sub[@]}"
		res=$MS_RES
	fi
	if [[ -z "${res:-}" ]]; then
		res="ERR $(tail -n 3 "$RAW/$server-$label.err" "$out" 2>/dev/null | grep -v '^==>' | grep . | tail -n 1)"
	else
		rm -f "$RAW/$server-$label.err" # gRPC's INFO log, once the run worked
	fi
	if [[ -n "${ROUND:-}" ]]; then
		RR["$label|$server|$ROUND"]=$res
		log "  $server $label round $ROUND: $res"
		return
	fi
	record "$label" "$server" "$title" "$shape" "$res"
}

# run_ms LABEL SERVER ENDPOINTS WORKLOAD POSITIONAL FLAGS...: one
# `metastore bench` run with --json and a plot; sets MS_RES. With ROUND set
# the raw files are named after the round, and only the last round plots.
run_ms_raw() {
	local label=$1 server=$2 eps=$3 workload=$4 pos=$5
	shift 5
	local base=$label${ROUND:+-r$ROUND}
	local out="$RAW/$server-$base.json" plotf=()
	local plot="$PLOT_DIR/$server-$label.png"
	[[ -z "${ROUND:-}" || "$ROUND" == "$ROUNDS" ]] && plotf=(--plot "$plot")
	echo "# metastore bench $workload --endpoints=$eps $* $pos" >"$RAW/$server-$base.cmd"
	# shellcheck disable=SC2086
	if timeout -k 10 "$CASE_TIMEOUT" "$MS_BIN" bench "$workload" --endpoints="$eps" --json \
		"${plotf[@]}" --title "$server $label" "$@" $pos >"$out" 2>"$RAW/$server-$base.err"; then
		MS_RES=$(parse_json "$out" 2>>"$RAW/$server-$base.err") || MS_RES="ERR unreadable output"
	else
		MS_RES="ERR $(grep . "$RAW/$server-$base.err" | tail -n 1)"
		rm -f "$plot"
	fi
	if [[ $workload == watch* && $MS_RES != ERR* ]]; then
		# Watch rows report the puts/s reached and the event delay.
		local pps
		pps=$(grep -o '"puts_per_sec": [0-9.e+-]*' "$out" | awk '{printf "%.0f", $2}')
		MS_RES="$pps ${MS_RES#* }"
	fi
}
run_ms() {
	local label=$1 server=$2
	run_ms_raw "$@"
	record "$label" "$server" "${TITLE[$label]:-$CUR_TITLE}" "${SHAPE[$label]:-$CUR_SHAPE}" "$MS_RES"
}

# both LABEL TITLE SHAPE WORKLOAD POSITIONAL FLAGS...: the case on etcd, then
# on MetaStore, with the same client, ROUNDS times; the table gets each
# side's median run (by req/s) and the ratio of every round. A side with a
# failed round is recorded as failed.
declare -A RR=() RATIOS=()
both() {
	local label=$1 title=$2 shape=$3 workload=$4 pos=$5 r
	shift 5
	CUR_TITLE=$title CUR_SHAPE=$shape
	for ((r = 1; r <= ROUNDS; r++)); do
		ROUND=$r run_client "$label" etcd "$ETCD_EPS" "$title" "$shape" "$workload" "$pos" -- "$@"
		ROUND=$r run_client "$label" metastore "$MS_EPS" "$title" "$shape" "$workload" "$pos" -- "$@"
	done
	summarize "$label" "$title" "$shape"
}

# both_ms LABEL ETCD_WORKLOAD ETCD_EXTRA MS_WORKLOAD FLAGS...: like both,
# through `metastore bench` on each side with a workload of its own (REST
# against gRPC); ETCD_EXTRA (split on spaces) goes to the etcd side only.
# Title and shape come from CUR_TITLE and CUR_SHAPE.
both_ms() {
	local label=$1 ewl=$2 eextra=$3 mwl=$4 r
	shift 4
	for ((r = 1; r <= ROUNDS; r++)); do
		# shellcheck disable=SC2086
		ROUND=$r run_ms_raw "$label" etcd "$ETCD_EPS" "$ewl" "" "$@" $eextra
		RR["$label|etcd|$r"]=$MS_RES
		log "  etcd $label round $r: $MS_RES"
		ROUND=$r run_ms_raw "$label" metastore "$MS_EPS" "$mwl" "" "$@"
		RR["$label|metastore|$r"]=$MS_RES
		log "  metastore $label round $r: $MS_RES"
	done
	summarize "$label" "$CUR_TITLE" "$CUR_SHAPE"
}

# summarize LABEL TITLE SHAPE: from the rounds in RR, the ratio of every
# round and each side's median run into the table.
summarize() {
	local label=$1 title=$2 shape=$3 r server res e m
	RATIOS[$label]=""
	for ((r = 1; r <= ROUNDS; r++)); do
		e=${RR["$label|etcd|$r"]} m=${RR["$label|metastore|$r"]}
		[[ $e == ERR* || $m == ERR* ]] && continue
		RATIOS[$label]+="${RATIOS[$label]:+, }$(ratio "${m%% *}" "${e%% *}")"
	done
	for server in etcd metastore; do
		res=""
		for ((r = 1; r <= ROUNDS; r++)); do
			if [[ ${RR["$label|$server|$r"]} == ERR* ]]; then
				res=${RR["$label|$server|$r"]}
				break
			fi
			res+="${RR["$label|$server|$r"]}"$'\n'
		done
		# The median run by req/s (the middle line; the upper middle of an even count).
		[[ $res != ERR* ]] && res=$(grep . <<<"$res" | sort -n -k1,1 | awk '{l[NR] = $0} END {print l[int(NR / 2) + 1]}')
		record "$label" "$server" "$title" "$shape" "$res"
	done
}

# check_perf LABEL LOAD: etcdctl check perf on each single member, and the
# member's RSS right after it and 15 s later (check perf ends by deleting
# every key it wrote: a server may still be handing that memory back).
check_perf() {
	local label=$1 load=$2 server eps pid out res
	for server in etcd metastore; do
		if [[ $server == etcd ]]; then eps=$ETCD_EPS pid=$ETCD_PID; else eps=$MS_EPS pid=$MS_PID; fi
		out="$RAW/$server-$label.txt"
		# NB: the verdict lines follow the progress bar on the same line.
		timeout -k 10 300 "$ETCD_BIN/etcdctl" --endpoints="$eps" --command-timeout=60s check perf --load="$load" 2>&1 |
			tr '\r' '\n' | grep -aoE '(PASS|FAIL)(: .*)?$|^[A-Z][a-z].*[^%]$' |
			sed -E 's/^.*((PASS|FAIL): Throughput)/\1/' >"$out"
		local wps verdict
		wps=$(grep -o '[0-9.]* writes/s' "$out" | head -n 1 | awk '{printf "%.0f", $1}')
		verdict=$(grep -E '^(PASS|FAIL)$' "$out" | tail -n 1)
		if [[ -n "$wps" ]]; then
			res="$wps ${verdict:-?} $(rss_mb "$pid")"
			sleep 15
			res+=" $(rss_mb "$pid")"
		else
			res="ERR $(grep . "$out" | tail -n 1)"
		fi
		record "$label" "$server" "etcdctl check perf --load=$load (writes/s, verdict, RSS MB after)" "-" "$res"
	done
}

# watch_works ENDPOINTS: whether a tiny watch-latency run succeeds (etcd's
# benchmark spins forever on a watch stream that fails).
watch_works() {
	timeout -k 5 30 "$MS_BIN" bench watch-latency --endpoints="$1" --streams=1 --watchers-per-stream=1 \
		--total=3 --rate=100 --request-timeout=5s >"$RAW/watch-probe.txt" 2>&1
}

log "client: $CLIENT; etcd: $ETCD_BIN; metastore: $MS_BIN; work dir: $WORK"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
VAL=--val-size=256
KEY=--key-size=8

# ---- one member each -------------------------------------------------------
start_cluster etcd 1
ETCD_EPS=$EPS ETCD_PID=${SPIDS[0]} ETCD1_SPIDS=("${SPIDS[@]}")
start_cluster metastore 1
MS_EPS=$EPS MS_PID=${SPIDS[0]} MS1_SPIDS=("${SPIDS[@]}")

both put-c1 "put, 1 member" 1/1 put "" --conns=1 --clients=1 $KEY --sequential-keys --total="$(scale 20000)" $VAL
both put-c100 "put, 1 member" 10/100 put "" --conns=10 --clients=100 $KEY --sequential-keys --total="$(scale 100000)" $VAL
both put-c500 "put, 1 member" 50/500 put "" --conns=50 --clients=500 $KEY --sequential-keys --total="$(scale 100000)" $VAL
"$ETCD_BIN/etcdctl" --endpoints="$ETCD_EPS" put foo "$(head -c 256 /dev/zero | tr '\0' v)" >/dev/null
"$ETCD_BIN/etcdctl" --endpoints="$MS_EPS" put foo "$(head -c 256 /dev/zero | tr '\0' v)" >/dev/null
both range-l-c100 "range linearizable, 1 member" 10/100 range foo --conns=10 --clients=100 --consistency=l --total="$(scale 100000)"
both range-s-c100 "range serializable, 1 member" 10/100 range foo --conns=10 --clients=100 --consistency=s --total="$(scale 100000)"
both txn-put-c100 "txn-put, 1 op, 100k keys, 1 member" 10/100 txn-put "" --conns=10 --clients=100 --txn-ops=1 $KEY --key-space-size=100000 $VAL --total="$(scale 50000)"

# Watch: 1,000 watchers (10 streams x 100) on one key, asked 1,000 puts/s.
WL=(--conns=1 --clients=1 --streams=10 --watchers-per-stream=100 --put-rate=1000 --put-total="$(scale 5000)" $KEY $VAL)
WT="watch-latency, 1,000 watchers, asked 1,000 puts/s (puts/s reached, event delay)"
CUR_TITLE=$WT CUR_SHAPE=1/1
run_client watch-c1000 etcd "$ETCD_EPS" "$WT" 1/1 watch-latency "" -- "${WL[@]}"
if watch_works "$MS_EPS"; then
	run_client watch-c1000 metastore "$MS_EPS" "$WT" 1/1 watch-latency "" -- "${WL[@]}"
else
	record watch-c1000 metastore "$WT" 1/1 "ERR $(grep . "$RAW/watch-probe.txt" | tail -n 1)"
fi
# The same 1,000 watchers through `metastore bench`, which reads raw watch
# streams (etcd's tool spends more CPU in clientv3's watcher than either
# server spends on the fan-out) and paces the puts over 4 clients, so one
# slow put does not hold back the rate.
CUR_TITLE="watch-latency, 1,000 watchers, asked 1,000 puts/s, through metastore bench (4 put clients)" CUR_SHAPE=1/4
TITLE[watch-c1000-msbench]=$CUR_TITLE SHAPE[watch-c1000-msbench]=$CUR_SHAPE
WM=(--conns=1 --clients=4 --streams=10 --watchers-per-stream=100 --rate=1000 --total="$(scale 5000)" $KEY $VAL)
run_ms watch-c1000-msbench etcd "$ETCD_EPS" watch-latency "" "${WM[@]}"
run_ms watch-c1000-msbench metastore "$MS_EPS" watch-latency "" "${WM[@]}"

# REST (MetaStore) against gRPC (etcd), both through `metastore bench`, 100
# connections, 100 clients, the same 100k keys filled by the puts first;
# ROUNDS rounds each, as the put cases.
RESTF=(--conns=100 --clients=100 $KEY --key-space-size=100000 --sequential-keys $VAL --total="$(scale 100000)")
CUR_TITLE="put: MetaStore REST PUT /v1/kv vs etcd gRPC Put" CUR_SHAPE=100/100
both_ms rest-put-c100 put "" rest-put "${RESTF[@]}"
CUR_TITLE="get: MetaStore REST GET /v1/kv vs etcd gRPC Range (one key, linearizable)"
both_ms rest-get-c100 mixed "--put-ratio=0 --get-ratio=1 --delete-ratio=0 --range-ratio=0" rest-get "${RESTF[@]}"
if [[ $CLIENT == etcd-benchmark ]]; then
	# The same put case through `metastore bench`: a cross-check of the
	# two clients, and its latency plots.
	CUR_TITLE="put, 1 member, through metastore bench (cross-check, plotted)" CUR_SHAPE=10/100
	TITLE[put-c100-msbench]=$CUR_TITLE SHAPE[put-c100-msbench]=$CUR_SHAPE
	for s in etcd metastore; do
		eps=$ETCD_EPS; [[ $s == metastore ]] && eps=$MS_EPS
		run_ms put-c100-msbench $s "$eps" put "" --conns=10 --clients=100 $KEY --sequential-keys --total="$(scale 100000)" $VAL
	done
fi

if [[ "$QUICK" == 1 ]]; then check_perf check-perf s; else check_perf check-perf l; fi
SPIDS=("${ETCD1_SPIDS[@]}" "${MS1_SPIDS[@]}")
stop_cluster

# ---- three members each ----------------------------------------------------
start_cluster etcd 3
ETCD_EPS=$EPS ETCD3_SPIDS=("${SPIDS[@]}")
start_cluster metastore 3
MS_EPS=$EPS MS3_SPIDS=("${SPIDS[@]}")
both put-c1-3m "put to the leader, 3 members" 1/1 put "" --target-leader --conns=1 --clients=1 $KEY --sequential-keys --total="$(scale 10000)" $VAL
both put-c100-3m "put to the leader, 3 members" 10/100 put "" --target-leader --conns=10 --clients=100 $KEY --sequential-keys --total="$(scale 100000)" $VAL
"$ETCD_BIN/etcdctl" --endpoints="$ETCD_EPS" put foo "$(head -c 256 /dev/zero | tr '\0' v)" >/dev/null
"$ETCD_BIN/etcdctl" --endpoints="$MS_EPS" put foo "$(head -c 256 /dev/zero | tr '\0' v)" >/dev/null
both range-l-c100-3m "range linearizable, all 3 members" 10/100 range foo --conns=10 --clients=100 --consistency=l --total="$(scale 100000)"
both range-s-c100-3m "range serializable, all 3 members" 10/100 range foo --conns=10 --clients=100 --consistency=s --total="$(scale 100000)"
SPIDS=("${ETCD3_SPIDS[@]}" "${MS3_SPIDS[@]}")
stop_cluster

# ---- the table -------------------------------------------------------------
# ms_commit: the commit the binary says it was built from, else the work
# tree's (make build builds the work tree).
ms_commit() {
	local c
	c=$("$MS_BIN" version 2>/dev/null | awk -F': *' '/git commit/ {print $2}')
	if [[ -z "$c" || "$c" == unknown ]]; then
		c=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
		git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || c+=" plus uncommitted changes"
	fi
	echo "$c"
}
fmt_int() { awk -v a="$1" 'BEGIN { s = sprintf("%.0f", a); n = length(s); o = ""; for (i = 1; i <= n; i++) { o = o substr(s, i, 1); if ((n - i) % 3 == 0 && i < n) o = o "," } print o }'; }
# ---- the issue's targets ---------------------------------------------------
# Each target of issue 8 against this run: the measured ratio (of the two
# medians; the rounds' ratios after it), whether it is met, and for a target
# not met the CPU profile of that case (bench-profile.sh, run below).
declare -a UNMET=()
# cell LABEL SERVER FIELD: field 1 (req/s or puts/s), 2 (p50) or 3 (p99) of
# a result, empty when the run failed or did not happen.
cell() {
	local r=${R["$1|$2"]:-ERR}
	[[ $r == ERR* ]] && return
	awk -v f="$3" '{print $f}' <<<"$r"
}
# target TEXT LABEL PROFILE_CASE MEASURED VERDICT: one row; VERDICT is met,
# "not met" or "not measured".
target() {
	local text=$1 label=$2 pcase=$3 measured=$4 verdict=$5 prof=-
	if [[ $verdict == "not met" && -n $pcase ]]; then
		UNMET+=("$pcase")
		prof="[$pcase](bench/profiles/README.md)"
	fi
	echo "| $text | $measured | **$verdict** | $prof |"
}
# rps_target TEXT LABEL PROFILE_CASE MIN [P99]: req/s ratio at least MIN
# (and, with P99 set, MetaStore's p99 no worse than etcd's).
rps_target() {
	local text=$1 label=$2 pcase=$3 min=$4 p99=${5:-} er mr ep mp rr pr verdict
	er=$(cell "$label" etcd 1) mr=$(cell "$label" metastore 1)
	if [[ -z $er || -z $mr ]]; then
		target "$text" "$label" "$pcase" "a run failed or did not run" "not measured"
		return
	fi
	rr=$(ratio "$mr" "$er")
	verdict=$(awk -v r="$rr" -v m="$min" 'BEGIN { print (r + 0 >= m) ? "met" : "not met" }')
	local measured="${rr}x (rounds: ${RATIOS[$label]:--})"
	if [[ -n $p99 ]]; then
		ep=$(cell "$label" etcd 3) mp=$(cell "$label" metastore 3)
		pr=$(ratio "$mp" "$ep")
		measured+="; p99 ${pr} of etcd's"
		awk -v r="$pr" 'BEGIN { exit !(r + 0 > 1) }' && verdict="not met"
	fi
	target "$text" "$label" "$pcase" "$measured" "$verdict"
}
{
	echo "The issue's targets against this run (ratios MetaStore/etcd of the two medians, each"
	echo "round's after it; a profile of every case not met is in [bench/profiles](bench/profiles/README.md)):"
	echo
	echo "| target | measured | | where the time goes |"
	echo "|---|---|---|---|"
	ep=$(cell put-c1 etcd 3) mp=$(cell put-c1 metastore 3)
	if [[ -n $ep && -n $mp ]]; then
		target "put, 1 member, 1 client: p99 <= etcd's" put-c1 put-c1 "$mp vs $ep ms ($(ratio "$mp" "$ep"))" \
			"$(awk -v a="$mp" -v b="$ep" 'BEGIN { print (a + 0 <= b + 0) ? "met" : "not met" }')"
	else
		target "put, 1 member, 1 client: p99 <= etcd's" put-c1 put-c1 "a run failed" "not measured"
	fi
	rps_target "put, 1 member, 100 clients: >= 1.5x, p99 no worse" put-c100 put-c100 1.5 p99
	rps_target "put, 1 member, 500 clients: >= 1.5x, p99 no worse" put-c500 put-c500 1.5 p99
	rps_target "put, 3 members, 100 clients: >= 1.5x" put-c100-3m put-c100-3m 1.5
	rps_target "range linearizable, 100 clients: >= 1.5x" range-l-c100 range-l-c100 1.5
	rps_target "range serializable, 100 clients: >= 1.5x" range-s-c100 range-s-c100 1.5
	rps_target "txn-put, 100 clients: >= 1.5x" txn-put-c100 txn-put-c100 1.5
	m=${R["check-perf|metastore"]:-ERR not run} e=${R["check-perf|etcd"]:-ERR not run}
	if [[ $QUICK == 1 || $m == ERR* ]]; then
		target "\`etcdctl check perf --load=l\` passes" check-perf check-perf "not run with --load=l" "not measured"
		target "RSS after check perf < 300 MB" check-perf "" "not run with --load=l" "not measured"
	else
		read -r mw mv mr mr15 <<<"$m"
		ecp="etcd: failed"
		[[ $e != ERR* ]] && ecp="etcd: $(awk '{print $2}' <<<"$e") at $(fmt_int "${e%% *}")"
		target "\`etcdctl check perf --load=l\` passes" check-perf check-perf \
			"$mv at $(fmt_int "$mw") writes/s ($ecp)" "$([[ $mv == PASS ]] && echo met || echo "not met")"
		v="not met"
		[[ $mr =~ ^[0-9]+$ ]] && ((mr < 300)) && v=met
		target "RSS after check perf < 300 MB" check-perf "" "$mr MB when it returns, $mr15 MB 15 s later" "$v"
	fi
	mpps=$(cell watch-c1000-msbench metastore 1) mp=$(cell watch-c1000-msbench metastore 3)
	if [[ -n $mpps && -n $mp ]]; then
		v=$(awk -v r="$mpps" -v p="$mp" 'BEGIN { print (r + 0 >= 990 && p + 0 < 20) ? "met" : "not met" }')
		target "watch-latency, 1,000 watchers: 1,000 puts/s reached, event delay p99 < 20 ms" watch-c1000-msbench watch-c1000 \
			"$(fmt_int "$mpps") puts/s, p99 $mp ms through \`metastore bench\`; through etcd's tool $(cell watch-c1000 metastore 1) puts/s, p99 $(cell watch-c1000 metastore 3) ms" "$v"
	else
		target "watch-latency, 1,000 watchers: 1,000 puts/s reached, event delay p99 < 20 ms" watch-c1000-msbench watch-c1000 "a run failed" "not measured"
	fi
	rps_target "REST put >= 2x etcd's gRPC put" rest-put-c100 rest-put-c100 2
	rps_target "REST get >= 2x etcd's gRPC range" rest-get-c100 rest-get-c100 2
} >"$WORK/targets.md"

# Profiles of the cases not met, before the table names them.
PROFILED=""
if ((${#UNMET[@]})); then
	if [[ $PROFILE == 1 && $CLIENT == etcd-benchmark ]]; then
		log "profiling the cases not met: ${UNMET[*]}"
		if CASES="${UNMET[*]}" QUICK=$QUICK ETCD_BIN=$ETCD_BIN MS_BIN=$MS_BIN PROFILE_DIR=$PLOT_DIR/profiles \
			"$ROOT/scripts/bench-profile.sh"; then
			PROFILED="Profiles of the cases not met were taken after the runs (\`make bench-profile\` with CASES=\"${UNMET[*]}\")."
		else
			PROFILED="Taking the profiles of the cases not met failed (\`make bench-profile\` with CASES=\"${UNMET[*]}\" again)."
		fi
	else
		PROFILED="No profiles were taken this run (PROFILE=0, or no etcd benchmark tool): the links show the last ones."
	fi
	echo >>"$WORK/targets.md"
	echo "$PROFILED" >>"$WORK/targets.md"
fi

TABLE=$WORK/table.md
{
	echo "Measured $(date -u +%Y-%m-%d) by \`make bench-compare\` (scripts/bench-compare.sh): MetaStore built from"
	echo "$(ms_commit) on $(nproc) vCPU, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo),"
	echo "load average $LOAD_START (1/5/15 min) at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end,"
	echo "client \`$CLIENT\`$([[ $CLIENT == etcd-benchmark ]] && echo " (etcd's bin/benchmark --precise)"), etcd $("$ETCD_BIN/etcd" --version 2>/dev/null | awk '/etcd Version/ {print $3}'),"
	echo "MetaStore on RocksDB; both with fsync, default raft timing, loopback only.$([[ $QUICK == 1 ]] && echo " QUICK run: a tenth of the operations.")"
	echo "Put, range, txn and REST cases: $ROUNDS round(s), etcd then MetaStore in each; each side's cells are its"
	echo "median run by req/s, and the last column has the req/s ratio of every round. The other"
	echo "cases: one run each. The machine is shared with other work: take a single run's ratio as ±15%."
	echo "Ratios are MetaStore/etcd: above 1 is better for req/s, below 1 for p99."
	echo
	echo "| case | conns/clients | etcd req/s | MetaStore req/s | req/s ratio | etcd p99 ms | MetaStore p99 ms | p99 ratio | req/s ratio per round |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for label in "${ORDER[@]}"; do
		[[ $label == check-perf ]] && continue
		e=${R["$label|etcd"]:-ERR not run} m=${R["$label|metastore"]:-ERR not run}
		if [[ $e == ERR* || $m == ERR* ]]; then
			ecell=$([[ $e == ERR* ]] && echo "failed: ${e#ERR }" || fmt_int "${e%% *}")
			mcell=$([[ $m == ERR* ]] && echo "failed: ${m#ERR }" || fmt_int "${m%% *}")
			ep99=$([[ $e == ERR* ]] && echo - || awk '{print $3}' <<<"$e")
			mp99=$([[ $m == ERR* ]] && echo - || awk '{print $3}' <<<"$m")
			echo "| ${TITLE[$label]} | ${SHAPE[$label]} | $ecell | $mcell | n/a | $ep99 | $mp99 | n/a | ${RATIOS[$label]:--} |"
			continue
		fi
		read -r er _ ep <<<"$e"
		read -r mr _ mp <<<"$m"
		echo "| ${TITLE[$label]} | ${SHAPE[$label]} | $(fmt_int "$er") | $(fmt_int "$mr") | $(ratio "$mr" "$er") | $ep | $mp | $(ratio "$mp" "$ep") | ${RATIOS[$label]:--} |"
	done
	e=${R["check-perf|etcd"]:-ERR not run} m=${R["check-perf|metastore"]:-ERR not run}
	echo
	echo "| \`etcdctl check perf --load=$([[ $QUICK == 1 ]] && echo s || echo l)\` (60 s) | etcd | MetaStore | ratio |"
	echo "|---|---|---|---|"
	if [[ $e != ERR* && $m != ERR* ]]; then
		read -r ew ev er er15 <<<"$e"
		read -r mw mv mr mr15 <<<"$m"
		echo "| writes/s | $(fmt_int "$ew") ($ev) | $(fmt_int "$mw") ($mv) | $(ratio "$mw" "$ew") |"
		echo "| server RSS right after it, MB | $er | $mr | $(ratio "$mr" "$er") |"
		echo "| server RSS 15 s later, MB | $er15 | $mr15 | $(ratio "$mr15" "$er15") |"
	else
		echo "| writes/s, RSS MB | ${e/ERR/failed:} | ${m/ERR/failed:} | n/a |"
	fi
	if [[ -s $WORK/targets.md ]]; then
		echo
		cat "$WORK/targets.md"
	fi
	echo
	echo "Plots (latency over time, throughput, latency distribution) of the runs made with"
	echo "\`metastore bench\`: $(cd "$PLOT_DIR" && ls -1 *.png 2>/dev/null | sed 's|.*|[&](bench/&)|' | paste -sd, | sed 's/,/, /g')."
	echo "Raw client output: docs/bench/raw/."
} >"$TABLE"

# Raw output next to the plots: empty stderr files dropped, and the
# per-window series left out of the JSON when jq is there (the plots show it).
mkdir -p "$PLOT_DIR/raw"
rm -f "$PLOT_DIR"/raw/*
find "$RAW" -type f -empty -delete
for f in "$RAW"/*; do
	if [[ $f == *.json ]] && command -v jq >/dev/null; then
		jq 'del(.series)' "$f" >"$PLOT_DIR/raw/${f##*/}" 2>/dev/null || cp "$f" "$PLOT_DIR/raw/"
	else
		cp "$f" "$PLOT_DIR/raw/"
	fi
done

if ! grep -qF "$BEGIN_MARK" "$OUT_MD"; then
	printf '\n## Side by side with etcd\n\n%s\n%s\n' "$BEGIN_MARK" "$END_MARK" >>"$OUT_MD"
fi
awk -v table="$TABLE" -v b="$BEGIN_MARK" -v e="$END_MARK" '
	$0 == b { print; while ((getline l < table) > 0) print l; skip = 1; next }
	$0 == e { skip = 0 }
	!skip { print }' "$OUT_MD" >"$WORK/out.md" && cat "$WORK/out.md" >"$OUT_MD"
cat "$TABLE"
log "table written to $OUT_MD; plots and raw output in $PLOT_DIR"
