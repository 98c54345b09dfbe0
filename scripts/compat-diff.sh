#!/usr/bin/env bash
# compat-diff.sh: sends the same requests to etcd's JSON gateway and to
# MetaStore's, and shows where the answers differ.
#
# Each file in scripts/compat-requests/ is one sequence, run against a fresh
# etcd member and then a fresh MetaStore member (bin/metastore, RocksDB) on
# free loopback ports. A line is one request:
#   POST PATH BODY     the body as given (it may be empty or not JSON)
#   WATCH BODY         a /v3/watch stream, read for 1.5 s
#   STREAM PATH BODY   another streaming call, read for 1.5 s
# The answers are normalised (cluster, member and lease IDs, raft terms,
# hashes, TTLs and JSON spacing) and the two transcripts diffed per file.
# Differences that are kept on purpose are listed in docs/compatibility.md;
# anything else is a finding. Exit status 0 when the run completed (whatever
# the diff shows), 1 when it could not.
#
# Environment:
#   ETCD_BIN   directory with etcd and etcdctl; default ../shared/peers/etcd/bin,
#              else /tmp/etcdpeer/bin
#   MS_BIN     the metastore binary (default bin/metastore; `make build`)
#   OUT        directory for the transcripts (default: a temp dir, removed
#              unless KEEP_WORK=1)
#   ONLY       run only the request files whose name contains this
#   MEMBERS    members per cluster (default 1); with 3 the requests go to
#              the last member started, which is a follower or the leader
#              as the election went
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MS_BIN=${MS_BIN:-$ROOT/bin/metastore}
# shellcheck source=scripts/etcd-bin.sh
source "$ROOT/scripts/etcd-bin.sh"
default_etcd_bin etcdctl
die() { echo "compat-diff: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
[[ -x "$ETCD_BIN/etcd" && -x "$ETCD_BIN/etcdctl" ]] || die "no etcd/etcdctl in $ETCD_BIN (set ETCD_BIN; ../shared/peers/etcd/build.sh builds them)"
[[ -x "$MS_BIN" ]] || die "no $MS_BIN (make build)"
command -v curl >/dev/null || die "curl is needed"
WORK=$(mktemp -d /tmp/compat-diff.XXXXXX)
OUT=${OUT:-$WORK/out}
mkdir -p "$OUT"
declare -A TAKEN
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"

# normalise: what differs between any two members by design.
normalise() {
	tr -d '\n' | sed -E 's/, /,/g; s/": /":/g;
		s/"(cluster_id|member_id|raft_term)":"?[0-9]+"?/"\1":X/g;
		s/"(ID|id|leader)":"?-?[0-9]{6,}"?/"\1":X/g;
		s/"hash":[0-9]+/"hash":X/g; s/"(TTL|grantedTTL)":"[0-9]+"/"\1":T/g;
		s/"key":"L[A-Za-z0-9+\/]{20,}=*"/"key":LEASEKEY/g; s/"took":"[^"]*"/"took":T/g'
}

# transcript FILE EP: every request of FILE against EP, one line each.
transcript() {
	local file=$1 ep=$2 verb path body
	while IFS= read -r line || [[ -n "$line" ]]; do
		[[ -z "$line" || "$line" == \#* ]] && continue
		verb=${line%% *}
		case $verb in
		POST | STREAM)
			path=${line#* }
			body=${path#* }
			path=${path%% *}
			[[ "$body" == "$path" ]] && body=""
			;;
		WATCH) path=/v3/watch body=${line#* } ;;
		*) die "$file: unknown request kind in: $line" ;;
		esac
		printf '%s => ' "$line"
		if [[ $verb == POST ]]; then
			printf '%s' "$body" | curl -s -m 5 "http://$ep$path" --data-binary @- | normalise
		else
			printf '%s' "$body" | curl -s -N -m 1.5 "http://$ep$path" --data-binary @- | normalise
		fi
		echo
	done <"$file"
}

found=0
for file in "$ROOT"/scripts/compat-requests/*"${ONLY:-}"*.txt; do
	[[ -f "$file" ]] || die "no request file matches ONLY=${ONLY:-}"
	name=$(basename "$file" .txt)
	for kind in etcd metastore; do
		start_cluster "$kind" "${MEMBERS:-1}"
		transcript "$file" "${EPS##*,}" >"$OUT/$name.$kind.txt"
		stop_cluster
	done
	if diff -u "$OUT/$name.etcd.txt" "$OUT/$name.metastore.txt" >"$OUT/$name.diff"; then
		log "$name: the same answers ($(grep -c . "$file") requests)"
	else
		n=$(grep -c '^+[^+]' "$OUT/$name.diff")
		found=$((found + n))
		log "$name: $n answers differ ($(grep -c . "$file") requests):"
		cat "$OUT/$name.diff"
	fi
done
log "done: $found differing answers in all; transcripts in $OUT${KEEP_WORK:+ (kept)}"
[[ "${KEEP_WORK:-0}" == 1 || "$OUT" != "$WORK/out" ]] || log "(set KEEP_WORK=1 or OUT=dir to keep them)"
exit 0
