# shellcheck shell=bash
# Sourced by the bench-*.sh scripts once WORK (the work directory) and log
# are defined: the members they start (PIDS) are stopped and WORK removed on
# exit, free_port hands out ports, and start_cluster / stop_cluster run
# loopback clusters.

PIDS=()

# stop_pids PID...: SIGTERM, up to 30 s to exit, then SIGKILL.
stop_pids() {
	local p n
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	for p in "$@"; do
		for ((n = 0; n < 300; n++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if ((${#PIDS[@]})); then stop_pids "${PIDS[@]}"; fi
	if [[ "${KEEP_WORK:-0}" == 1 ]]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port: a port in 20000-32767 (below Linux's ephemeral range, so a
# client socket cannot take it meanwhile) that nothing uses and that this run
# has not handed out.
declare -A TAKEN=()
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12768))
		[[ -n "${TAKEN[$p]:-}" ]] && continue
		ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null | grep -q . && continue
		TAKEN[$p]=1
		echo "$p"
		return
	done
}

# start_cluster KIND N -> sets EPS (comma list), EP1 (first endpoint), SPIDS.
# SERVER_WRAP, when set, is a command each member runs under (taskset -c 0).
# KIND is etcd or metastore; the members get identical flags, and MetaStore's
# members MS_EXTRA_FLAGS too (an array, e.g. (--enable-pprof)). Needs
# ETCD_BIN (etcd, etcdctl), MS_BIN, die and log.
start_cluster() {
	local kind=$1 n=$2 i initial=""
	local token="bench-$kind-$n-$$" dir="$WORK/$kind$n"
	local -a cports=() pports=()
	rm -rf "$dir" # a cluster of the same kind and size started before
	mkdir -p "$dir"
	for ((i = 1; i <= n; i++)); do
		cports+=("$(free_port)")
		pports+=("$(free_port)")
		initial+="${initial:+,}$kind$i=http://127.0.0.1:${pports[i - 1]}"
	done
	EPS="" SPIDS=()
	for ((i = 1; i <= n; i++)); do
		local c="http://127.0.0.1:${cports[i - 1]}" p="http://127.0.0.1:${pports[i - 1]}"
		local -a args=(--name "$kind$i" --data-dir "$dir/$kind$i"
			--listen-client-urls "$c" --advertise-client-urls "$c"
			--listen-peer-urls "$p" --initial-advertise-peer-urls "$p"
			--initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token "$token")
		if [[ $kind == etcd ]]; then
			${SERVER_WRAP[@]+"${SERVER_WRAP[@]}"} "$ETCD_BIN/etcd" "${args[@]}" >"$dir/$kind$i.log" 2>&1 &
		else
			${SERVER_WRAP[@]+"${SERVER_WRAP[@]}"} "$MS_BIN" serve --engine rocksdb "${args[@]}" ${MS_EXTRA_FLAGS[@]+"${MS_EXTRA_FLAGS[@]}"} >"$dir/$kind$i.log" 2>&1 &
		fi
		PIDS+=($!)
		SPIDS+=($!)
		EPS+="${EPS:+,}127.0.0.1:${cports[i - 1]}"
	done
	EP1=${EPS%%,*}
	# Ready: every member answers status and they agree on a leader.
	local deadline=$((SECONDS + 60)) leaders
	while :; do
		leaders=$(timeout 10 "$ETCD_BIN/etcdctl" --endpoints="$EPS" --command-timeout=3s endpoint status -w json 2>/dev/null |
			grep -o '"leader":[0-9]*' | sort -u)
		if [[ $(grep -c . <<<"$leaders") == 1 && "$leaders" != '"leader":0' ]] &&
			[[ $(timeout 10 "$ETCD_BIN/etcdctl" --endpoints="$EPS" --command-timeout=3s endpoint status -w json 2>/dev/null | grep -o '"leader"' | wc -l) == "$n" ]]; then
			break
		fi
		((SECONDS > deadline)) && die "$kind x$n did not become ready (logs in $dir; KEEP_WORK=1 keeps them)"
		sleep 0.5
	done
	log "$kind x$n ready at $EPS (pids ${SPIDS[*]})"
}

stop_cluster() {
	stop_pids "${SPIDS[@]}"
	local keep=() p s
	for p in "${PIDS[@]}"; do
		for s in "${SPIDS[@]}"; do [[ $p == "$s" ]] && continue 2; done
		keep+=("$p")
	done
	PIDS=("${keep[@]}")
}
