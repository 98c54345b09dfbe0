# shellcheck shell=bash
# Sourced by bench-compare.sh and bench-defrag.sh once WORK (the work
# directory) and log are defined: the members they start (PIDS) are stopped
# and WORK removed on exit, and free_port hands out ports.

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
