# bench/lib.sh: what every bench script shares, sourced after it has set
# HERE and before it makes its temp dir. The cleanup half relies on the
# script's globals: T (the temp dir everything runs from), STARTED
# ("kind:pid" of each long-running process it launched), UPKEEP_ROOTS (the
# --root of each upkeep daemon), MOUNTS (optional) and MEASURE (the
# bench/measure binary, once built).

say() { printf '%s  %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# wait_gone PID SECS: wait for a process of ours to end; KILL it past SECS.
wait_gone() {
	local pid=$1 n=$(($2 * 10))
	while kill -0 "$pid" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	if kill -0 "$pid" 2>/dev/null; then
		say "warning: pid $pid did not exit in $2 s; killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	# reaped: the pid may be reused by anyone now, so cleanup must not signal it
	local keep=() e
	for e in "${STARTED[@]}"; do [ "${e#*:}" = "$pid" ] || keep+=("$e"); done
	STARTED=("${keep[@]}")
	return 0
}

# bench_stop_started TENTHS: ask each process in STARTED to stop (runsvdir
# wants HUP: TERM to every runsv, then exit; the others TERM) and wait up
# to TENTHS tenths of a second for each.
bench_stop_started() {
	local e kind pid
	for e in "${STARTED[@]}"; do
		kind=${e%%:*} pid=${e#*:}
		kill -0 "$pid" 2>/dev/null || continue
		case $kind in
		runit) kill -HUP "$pid" 2>/dev/null ;;
		*) kill -TERM "$pid" 2>/dev/null ;;
		esac
	done
	for e in "${STARTED[@]}"; do
		pid=${e#*:}
		for _ in $(seq "$1"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	done
}

# bench_reap SECS MARKERS: kill what still runs with its cwd under $T or
# one of the comma-separated `sleep` markers on its command line.
bench_reap() {
	[ -x "${MEASURE:-}" ] || return 0
	local n
	n=$(timeout --foreground "$1" "$MEASURE" reap -dir "$T" -markers "$2")
	[ "${n:-0}" != 0 ] && say "killed $n leftover process(es) of this run"
	return 0
}

# bench_remove_cgroups: a daemon that did not get to shut down leaves its
# (empty) cgroups behind: upkeep-<sha256(root), 8 hex digits>, beside the
# cgroup the daemon was started in (internal/proc's OpenCgroups).
bench_remove_cgroups() {
	local own r h base
	own=$(sed -n 's/^0:://p' /proc/self/cgroup 2>/dev/null)
	for r in "${UPKEEP_ROOTS[@]}"; do
		h=$(printf %s "$r" | sha256sum | cut -c1-8)
		for base in /sys/fs/cgroup/upkeep-"$h" /sys/fs/cgroup/unified/upkeep-"$h" \
			/sys/fs/cgroup"${own%/}"/upkeep-"$h" /sys/fs/cgroup/unified"${own%/}"/upkeep-"$h"; do
			[ -d "$base" ] || continue
			find "$base" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
			rmdir "$base" 2>/dev/null
		done
	done
}

# bench_cleanup TENTHS REAPSECS MARKERS: the whole of an EXIT trap: stop
# what was started, reap the leftovers, remove cgroups and mounts, then
# the temp dir.
bench_cleanup() {
	bench_stop_started "$1"
	bench_reap "$2" "$3"
	bench_remove_cgroups
	local m
	for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null; done
	[ -n "${T:-}" ] && rm -rf "$T"
	return 0
}
