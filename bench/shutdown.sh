#!/usr/bin/env bash
# bench/shutdown.sh — how long a host takes to stop: 100 services, half of them slow to stop
# (1 s after SIGTERM), in 20 dependency chains of 5, from the stop signal until every
# service has exited, for upkeep beside supervisord and runit, in one bounded run.
#
#   sudo bash bench/shutdown.sh
#
# The chains: service-cK-1 ← service-cK-2 ← … ← service-cK-5 (each depends on the one
# before). Chains 1-10 are all slow, 11-20 all fast, so 50 services take 1 s each and the
# longest chain takes 5 × 1 s. A tool that stops dependents first, in parallel where the
# graph allows, needs 5 s; the goal for upkeep is that + ≤ 50 ms.
#   upkeep:      SIGTERM to `upkeep daemon` → the daemon has exited (it waits for every service).
#   supervisord: SIGTERM to supervisord → it has exited; priorities (level 5 highest) give it the
#                chains' order, and it stops one program at a time in that order.
#   runit:       SIGHUP to runsvdir (TERM to every runsv) → the last service's process is gone;
#                runit knows no order, so it stops all at once and ignores the chains.
# Each stop is timed ROUNDS times (supervisord once: it is serial). A slow service kills its
# own child in its trap, since supervisord and runit signal only the process they started.
#
# Knobs (env): ROUNDS (3) OUT (bench/out)

set -uo pipefail

if [ -z "${UPKEEP_BENCH_INNER:-}" ]; then
	# the bound of the whole run: TERM after 400 s (the trap cleans up), KILL 60 s later
	export UPKEEP_BENCH_INNER=1
	exec timeout -k 60 400 bash "$0" "$@"
fi

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-$REPO/bench/out}
CHAINS=20 LEVELS=5 SLOW_CHAINS=10

. "$HERE/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (the peers and cgroups need it)"
command -v go >/dev/null || die "go is not installed"
command -v supervisord >/dev/null && command -v runsvdir >/dev/null ||
	die "supervisord and runsvdir are needed: apt-get install supervisor runit (or run bench/run.sh once)"

T=$(mktemp -d /tmp/upkeep-shutdown.XXXXXX) || die "mktemp"
mkdir -p "$T/bin" "$T/logs" "$OUT"
cd "$T" || die "cd $T"
RUN=$(( (RANDOM * 32768 + RANDOM) % 900000 + 100000 ))
M_U="8${RUN}1" M_S="8${RUN}2" M_R="8${RUN}3"
UPKEEP="$T/bin/upkeep" MEASURE="$T/bin/measure"
STARTED=() UPKEEP_ROOTS=()

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	say "cleaning up"
	bench_cleanup 100 20 "$M_U,$M_S,$M_R"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "building upkeep (CGO_ENABLED=0) and the measure helper"
(cd "$REPO" && CGO_ENABLED=0 timeout --foreground 300 go build -o "$UPKEEP" ./cmd/upkeep &&
	timeout --foreground 300 go build -o "$MEASURE" ./bench/measure) || die "go build failed"

now_ns() { date +%s%N; }
count() { "$MEASURE" count -marker "$1"; }
# wait_count MARKER N SECS: until N `sleep MARKER` processes exist
wait_count() {
	local n=$(($3 * 10))
	while [ $n -gt 0 ]; do
		[ "$(count "$1")" -ge "$2" ] && return 0
		sleep 0.1; n=$((n - 1))
	done
	return 1
}
# service_sh MARKER CHAIN: the service's shell: slow chains take 1 s after TERM
service_sh() {
	if [ "$2" -le $SLOW_CHAINS ]; then
		echo "trap 'sleep 1; kill \$! 2>/dev/null; exit 0' TERM; sleep $1 & wait"
	else
		echo "trap 'kill \$! 2>/dev/null; exit 0' TERM; sleep $1 & wait"
	fi
}
N=$((CHAINS * LEVELS))
declare -a FIG_U=() FIG_R=() FIG_S=()

# ---------------------------------------------------------------- upkeep
U="$T/upkeep"; UPKEEP_ROOTS+=("$U")
for c in $(seq $CHAINS); do
	for l in $(seq $LEVELS); do
		d="$U/var/www/service-c$c-$l"; mkdir -p "$d"
		dep=""; [ "$l" -gt 1 ] && dep="depends_on = [\"service-c$c-$((l - 1))\"]"
		cat >"$d/service.toml" <<EOF
autostart = true
$dep
command = ["/bin/sh", "-c", "$(service_sh "$M_U" "$c")"]
[stop]
timeout = "5s"
EOF
	done
done
for r in $(seq "$ROUNDS"); do
	"$UPKEEP" --root "$U" daemon -q >>"$T/logs/upkeep.out" 2>&1 &
	UP=$!; STARTED+=("upkeep:$UP")
	wait_count "$M_U" $N 60 || die "upkeep: the $N services did not come up"
	t0=$(now_ns); kill -TERM "$UP"; wait "$UP"; rc=$?; t1=$(now_ns)
	STARTED=("${STARTED[@]/upkeep:$UP}")
	left=$(count "$M_U")
	FIG_U+=("$(( (t1 - t0) / 1000000 ))")
	say "upkeep round $r: $(( (t1 - t0) / 1000000 )) ms, exit $rc, $left left"
done
slowest=$(grep -o '"slowest":"[^"]*"' "$U/var/log/upkeep.log" | tail -1)
# Where upkeep's time went, per round, from its event log: the services' own stop times
# along the heaviest chain (each "took": TERM sent → stopped, which includes the shell's
# fork+exec of `sleep 1` and its exit), and the rest, the daemon's own.
breakdown=""
if command -v python3 >/dev/null; then
	breakdown=$(python3 - "$U/var/log/upkeep.log" "${FIG_U[@]}" <<'PY'
import json, re, sys
log, totals = sys.argv[1], [int(x) for x in sys.argv[2:]]
rounds, cur = [], None
for line in open(log):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("msg") == "stopping all services":
        cur = {}
        rounds.append(cur)
    elif r.get("msg") == "stopped at shutdown" and cur is not None:
        m = re.match(r"service-c(\d+)-\d+$", r["service"])
        t = r["took"]
        sec = float(t[:-2]) / 1000 if t.endswith("ms") else float(t[:-1]) if t.endswith("s") else 0.0
        if m:
            cur[m.group(1)] = cur.get(m.group(1), 0.0) + sec
for i, (c, tot) in enumerate(zip(rounds, totals)):
    chain = max(c.values()) * 1000
    print(f"  round {i+1}: {tot} ms = heaviest chain's own stops {chain:.0f} ms + the daemon's own {tot - chain:.0f} ms")
PY
)
fi

# ---------------------------------------------------------------- runit
V="$T/runit"
for c in $(seq $CHAINS); do
	for l in $(seq $LEVELS); do
		mkdir -p "$V/service-c$c-$l"
		# the run script is the service's shell itself: no -c, no second quoting
		printf '#!/bin/sh\n%s\n' "$(service_sh "$M_R" "$c")" >"$V/service-c$c-$l/run"
		chmod +x "$V/service-c$c-$l/run"
	done
done
for r in $(seq "$ROUNDS"); do
	runsvdir -P "$V" >>"$T/logs/runsvdir.out" 2>&1 &
	RP=$!; STARTED+=("runit:$RP")
	wait_count "$M_R" $N 60 || die "runit: the $N services did not come up"
	t0=$(now_ns); kill -HUP "$RP"
	n=600; while [ "$(count "$M_R")" -gt 0 ]; do
		n=$((n - 1)); [ $n -le 0 ] && break; sleep 0.01
	done
	t1=$(now_ns)
	wait_gone "$RP" 10
	# runsv waits for its ./run, then exits; supervise/ is kept: the next round starts afresh
	n=100; while pgrep -x runsv >/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	FIG_R+=("$(( (t1 - t0) / 1000000 ))")
	say "runit round $r: $(( (t1 - t0) / 1000000 )) ms (polled every 10 ms)"
done

# ---------------------------------------------------------------- supervisord
S="$T/supervisor"; mkdir -p "$S/childlogs"
{
	cat <<EOF
[supervisord]
nodaemon=true
logfile=$S/supervisord.log
pidfile=$S/supervisord.pid
childlogdir=$S/childlogs
loglevel=warn
EOF
	for c in $(seq $CHAINS); do
		for l in $(seq $LEVELS); do
			cat <<EOF

[program:service-c$c-$l]
command=/bin/sh -c "$(service_sh "$M_S" "$c")"
directory=$T
priority=$((100 * l))
startsecs=0
stopwaitsecs=5
EOF
		done
	done
} >"$S/supervisord.conf"
supervisord -c "$S/supervisord.conf" >>"$T/logs/supervisord.out" 2>&1 &
SP=$!; STARTED+=("supervisord:$SP")
wait_count "$M_S" $N 60 || die "supervisord: the $N services did not come up"
t0=$(now_ns); kill -TERM "$SP"; wait "$SP"; t1=$(now_ns)
STARTED=("${STARTED[@]/supervisord:$SP}")
FIG_S+=("$(( (t1 - t0) / 1000000 ))")
say "supervisord: $(( (t1 - t0) / 1000000 )) ms, $(count "$M_S") left"

# ---------------------------------------------------------------- report
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
	echo "shutdown of $N services ($SLOW_CHAINS of $CHAINS chains of $LEVELS slow: 1 s each; longest chain 5 s), $(date -u '+%F %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
	printf '%-12s %-28s %s\n' tool "signal → all stopped (ms)" "median; overhead beyond the 5 s chain"
	for t in upkeep runit supervisord; do
		case $t in upkeep) f=("${FIG_U[@]}") ;; runit) f=("${FIG_R[@]}") ;; supervisord) f=("${FIG_S[@]}") ;; esac
		m=$(med "${f[@]}")
		printf '%-12s %-28s %s ms; %+d ms\n' "$t" "${f[*]}" "$m" "$((m - 5000))"
	done
	echo "upkeep's event log: $slowest"
	[ -n "$breakdown" ] && printf '%s\n' "upkeep, where the time went:" "$breakdown"
} | tee "$OUT/shutdown.txt"
