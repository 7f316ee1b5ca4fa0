#!/usr/bin/env bash
# bench/run.sh — upkeep against supervisord and runit, in one bounded run.
#
#   sudo bash bench/run.sh            (root: it installs the peers with apt-get if missing)
#
# Workloads (see docs/benchmarks.md for what each means and the targets):
#   1. crash → restart latency: SIGKILL a service's `sleep`, time until a new one has exec'd (p50/p95)
#   2. 100 services: launch → all 100 `sleep`s running; then RSS and idle CPU over IDLE_SECS
#   3. status of 100 services: one `upkeep status` (and --json) vs `supervisorctl status` vs `sv status`
#   4. stop a service that ignores TERM, with a 2 s stop timeout: wall time and leftover processes
#
# Everything runs in a temp dir with the peers' own config (never /etc/supervisor, never
# /etc/service); no network is used apart from apt-get when a peer is missing. Every step is
# bounded; the EXIT trap stops whatever the run started and removes the temp dir. Raw figures
# go to bench/out/ (git-ignored).
#
# Knobs (env): N_CRASH (50) N_SVCS (100) IDLE_SECS (30) N_STATUS (20) OUT (bench/out)

set -uo pipefail

if [ -z "${UPKEEP_BENCH_INNER:-}" ]; then
	# the bound of the whole run: TERM after 420 s (the trap cleans up), KILL 60 s later
	export UPKEEP_BENCH_INNER=1
	exec timeout -k 60 420 bash "$0" "$@"
fi

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
N_CRASH=${N_CRASH:-50}
N_SVCS=${N_SVCS:-100}
IDLE_SECS=${IDLE_SECS:-30}
N_STATUS=${N_STATUS:-20}
OUT=${OUT:-$REPO/bench/out}
STOP_TIMEOUT=2

# say, die, wait_gone and the cleanup shared by the bench scripts
. "$HERE/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (the peers and cgroups need it)"
command -v go >/dev/null || die "go is not installed"

# ------------------------------------------------------------------ peers
if ! command -v supervisord >/dev/null || ! command -v runsvdir >/dev/null || ! command -v sv >/dev/null; then
	say "installing supervisor and runit (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	timeout --foreground 300 apt-get update -qq >&2 || die "apt-get update failed"
	timeout --foreground 300 apt-get install -y -qq supervisor runit >&2 || die "apt-get install failed"
fi
# A package install may start system instances (systemd hosts). They are not used and not
# touched: every figure below is taken from the processes this script launches itself.
for p in supervisord runsvdir; do
	if pgrep -x "$p" >/dev/null 2>&1 || pgrep -f "bin/$p" >/dev/null 2>&1; then
		say "note: a $p not started by this run is present; it is left alone and not measured"
	fi
done

# ------------------------------------------------------------------ temp dir, cleanup
T=$(mktemp -d /tmp/upkeep-bench.XXXXXX) || die "mktemp"
mkdir -p "$T/bin" "$T/logs" "$OUT"
cd "$T" || die "cd $T"   # everything launched from here has its cwd under $T: reap finds it
RUN=$(( (RANDOM * 32768 + RANDOM) % 900000 + 100000 ))
M_CRASH="7${RUN}1"   # the `sleep` argument of each workload's processes: how they are found
M_MANY="7${RUN}2"
M_STUCK="7${RUN}3"   # + 1/2/3 per tool: each tool's leftovers are counted apart
UPKEEP="$T/bin/upkeep"
MEASURE="$T/bin/measure"
STARTED=()           # "kind:pid" of every supervisor launched
UPKEEP_ROOTS=()

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	say "cleaning up"
	bench_cleanup 50 20 "$M_CRASH,$M_MANY,${M_STUCK}1,${M_STUCK}2,${M_STUCK}3"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ build
say "building upkeep and the measure helper"
(cd "$REPO" && CGO_ENABLED=0 timeout --foreground 300 go build -o "$UPKEEP" ./cmd/upkeep && timeout --foreground 300 go build -o "$MEASURE" ./bench/measure) ||
	die "go build failed"


# wait_count MARKER N SECS: until N `sleep MARKER` processes exist
wait_count() {
	local n=$(( $3 * 10 ))
	while [ $n -gt 0 ]; do
		[ "$("$MEASURE" count -marker "$1")" -ge "$2" ] && return 0
		sleep 0.1; n=$((n - 1))
	done
	return 1
}

# field KEY LINE: the value of KEY=value in a measure output line
field() { local k=$1; shift; printf '%s\n' "$*" | tr ' ' '\n' | sed -n "s/^$k=//p" | head -1; }

# ------------------------------------------------------------------ configs
upkeep_service() { # ROOT NAME COMMAND(toml array)
	mkdir -p "$1/var/www/$2"
	cat >"$1/var/www/$2/service.toml" <<EOF
command = $3
ready_after = "0s"
[restart]
policy = "always"
backoff = "1ms"
max_backoff = "1s"
stable_after = "100ms"
limit = 1000
window = "60s"
[stop]
signal = "TERM"
timeout = "${STOP_TIMEOUT}s"
EOF
}

supervisor_conf() { # DIR, then program sections on stdin
	mkdir -p "$1/childlogs"
	{
		cat <<EOF
[supervisord]
nodaemon=true
logfile=$1/supervisord.log
pidfile=$1/supervisord.pid
childlogdir=$1/childlogs
loglevel=warn

[unix_http_server]
file=$1/supervisor.sock
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$1/supervisor.sock
EOF
		cat
	} >"$1/supervisord.conf"
}

supervisor_program() { # NAME COMMAND
	cat <<EOF

[program:$1]
command=$2
directory=$T
startsecs=0
autorestart=true
startretries=1000
stopsignal=TERM
stopwaitsecs=$STOP_TIMEOUT
EOF
}

runit_service() { # SVDIR NAME COMMAND(sh)
	mkdir -p "$1/$2"
	printf '#!/bin/sh\nexec %s\n' "$3" >"$1/$2/run"
	chmod +x "$1/$2/run"
}

declare -A R   # results: R[metric,tool]

# ================================================================== 1 + 4: crash and stop
# the service that ignores TERM: a shell and two sleeps, all with TERM ignored (inherited)
stuck_sh() { echo "trap '' TERM; sleep $M_STUCK$1 & sleep $M_STUCK$1"; }

stop_figures() { # TOOL N STOPCMD...: time one stop, then count what is left of the service
	local tool=$1 m=$M_STUCK$2 allow=
	shift 2
	[ "$tool" = runit ] && allow=-allow-fail # sv force-stop exits 1 when it had to kill
	if ! wait_count "$m" 2 10; then
		say "$tool: the TERM-ignoring service did not come up"; return
	fi
	local line
	line=$("$MEASURE" timecmd -n 1 -timeout 30s $allow -out "$OUT/stop-$tool.txt" -- "$@")
	sleep 0.5
	R[stop_ms,$tool]=$(field p50 "$line")
	R[stop_left,$tool]=$("$MEASURE" count -marker "$m")
	say "$tool: stop took ${R[stop_ms,$tool]} ms; ${R[stop_left,$tool]} process(es) left"
	echo "$tool stop: $line left=${R[stop_left,$tool]}" >>"$OUT/raw.txt"
	"$MEASURE" reap -markers "$m" >/dev/null # the leftovers go now
}

crash_figures() { # TOOL PARENT GAP
	local line
	line=$(timeout --foreground 150 "$MEASURE" restart -parent "$2" -marker "$M_CRASH" -n "$N_CRASH" -gap "$3" -timeout 140s \
		-raw "$OUT/crash-$1.txt") || { say "$1: restart measurement failed"; return; }
	R[crash_p50,$1]=$(field p50 "$line")
	R[crash_p95,$1]=$(field p95 "$line")
	R[crash_fail,$1]=$(field failures "$line")
	say "$1: crash→restart $line"
	echo "$1 crash: $line" >>"$OUT/raw.txt"
}

: >"$OUT/raw.txt"
{
	echo "date: $(date -u +%FT%TZ)"
	echo "nproc: $(nproc)"
	echo "memory: $(free -h | awk '/^Mem:/ { print $2 " total, " $7 " available" }')"
	echo "kernel: $(uname -r)"
	echo "go: $(go version)"
	echo "supervisord: $(supervisord --version 2>&1) ($(dpkg-query -W -f='${Version}' supervisor 2>/dev/null))"
	echo "runit: $(dpkg-query -W -f='${Version}' runit 2>/dev/null)"
	echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"

# ---- upkeep
say "workload 1+4: upkeep"
U1="$T/upkeep1"
UPKEEP_ROOTS+=("$U1")
upkeep_service "$U1" service-crash "[\"/bin/sleep\", \"$M_CRASH\"]"
upkeep_service "$U1" service-stuck "[\"/bin/sh\", \"-c\", \"$(stuck_sh 1)\"]"
"$UPKEEP" --root "$U1" daemon -q 2>>"$T/logs/upkeep1.err" &
UP1=$!; STARTED+=("upkeep:$UP1")
# gap: longer than stable_after (100ms), so each kill hits a service that runs "stably"
crash_figures upkeep "$UP1" 300ms
stop_figures upkeep 1 "$UPKEEP" --root "$U1" stop --timeout 20s service-stuck
R[stop_how,upkeep]="upkeep stop (stop.timeout=2s)"
kill -TERM "$UP1"; wait_gone "$UP1" 15

# ---- supervisord
say "workload 1+4: supervisord"
S1="$T/supervisor1"
{
	supervisor_program service-crash "/bin/sleep $M_CRASH"
	supervisor_program service-stuck "/bin/sh -c \"$(stuck_sh 2)\""
} | supervisor_conf "$S1"
supervisord -c "$S1/supervisord.conf" >>"$T/logs/supervisord1.out" 2>&1 &
SP1=$!; STARTED+=("supervisord:$SP1")
crash_figures supervisord "$SP1" 300ms
stop_figures supervisord 2 supervisorctl -c "$S1/supervisord.conf" stop service-stuck
R[stop_how,supervisord]="supervisorctl stop (stopwaitsecs=2, stopasgroup/killasgroup default false)"
kill -TERM "$SP1"; wait_gone "$SP1" 15

# ---- runit
say "workload 1+4: runit"
V1="$T/runit1"
runit_service "$V1" service-crash "/bin/sleep $M_CRASH"
runit_service "$V1" service-stuck "/bin/sh -c \"$(stuck_sh 3)\""
runsvdir -P "$V1" >>"$T/logs/runsvdir1.out" 2>&1 &
RP1=$!; STARTED+=("runit:$RP1")
RSV=$("$MEASURE" pids -parent "$RP1" -comm runsv -arg service-crash -wait 10s | head -1)
if [ -n "$RSV" ]; then
	# gap: runsv waits 1 s before restarting a ./run that ran less than 1 s
	crash_figures runit "$RSV" 1200ms
else
	say "runit: no runsv for service-crash"
fi
stop_figures runit 3 sv -w "$STOP_TIMEOUT" force-stop "$V1/service-stuck"
R[stop_how,runit]="sv -w 2 force-stop (TERM+CONT, after 2 s KILL to ./run's pid)"
kill -HUP "$RP1"; wait_gone "$RP1" 15

# ================================================================== 2 + 3: 100 services
say "workload 2+3: $N_SVCS services each"
U2="$T/upkeep2"; S2="$T/supervisor2"; V2="$T/runit2"
UPKEEP_ROOTS+=("$U2")
for i in $(seq -f %03g "$N_SVCS"); do
	upkeep_service "$U2" "service-$i" "[\"/bin/sleep\", \"$M_MANY\"]"
	runit_service "$V2" "service-$i" "/bin/sleep $M_MANY"
done
for i in $(seq -f %03g "$N_SVCS"); do supervisor_program "service-$i" "/bin/sleep $M_MANY"; done | supervisor_conf "$S2"

startup() { # TOOL CMD...: launch in the background; time until all N_SVCS sleeps run
	local tool=$1 lp t0 line; shift
	local before
	before=$("$MEASURE" count -marker "$M_MANY")
	read -r lp </proc/sys/kernel/ns_last_pid
	t0=$EPOCHREALTIME
	"$@" >>"$T/logs/$tool-many.out" 2>&1 &
	LAST=$!
	STARTED+=("$tool:$LAST")
	if line=$(timeout --foreground 40 "$MEASURE" startup -root "$LAST" -since "$lp" -t0 "$t0" -marker "$M_MANY" \
		-count "$N_SVCS" -timeout 30s); then
		R[start_ms,$tool]=$line
		say "$tool: $N_SVCS services running after $line ms"
	else
		say "$tool: startup measurement failed"
	fi
	echo "$tool startup: ${line:-failed} (marked sleeps before launch: $before)" >>"$OUT/raw.txt"
	sleep 2 # let it settle before the next one is timed
}

startup upkeep "$UPKEEP" --root "$U2" daemon -q; UP2=$LAST
startup supervisord supervisord -c "$S2/supervisord.conf"; SP2=$LAST
startup runit runsvdir -P "$V2"; RP2=$LAST

say "idle: CPU of all three over ${IDLE_SECS} s (the three idle side by side), then memory"
if line=$(timeout --foreground $((IDLE_SECS + 30)) "$MEASURE" usage -secs "$IDLE_SECS" \
	"upkeep=$UP2" "supervisord=$SP2" "runit=$RP2+runsv"); then
	printf '%s\n' "$line" >>"$OUT/raw.txt"
	while read -r tool rest; do
		R[rss_kb,$tool]=$(field rss_kb "$rest")
		R[pss_kb,$tool]=$(field pss_kb "$rest")
		R[procs,$tool]=$(field procs "$rest")
		R[cpu_pct,$tool]=$(field cpu_pct "$rest")
		R[cpu_ticks,$tool]=$(field cpu_ticks "$rest")
		say "$tool: $rest"
	done <<<"$line"
else
	say "usage measurement failed"
fi

say "status of $N_SVCS services, $N_STATUS calls each"
status_figures() { # KEY TOOL CMD...
	local key=$1 tool=$2 line; shift 2
	line=$(timeout --foreground 120 "$MEASURE" timecmd -n "$N_STATUS" -timeout 10s -out "$OUT/status-$key-$tool.txt" -- "$@")
	R[$key,$tool]=$(field p50 "$line")
	say "$key ($tool): $line"
	echo "$key $tool: $line" >>"$OUT/raw.txt"
}
status_figures status upkeep "$UPKEEP" --root "$U2" status
status_figures status_json upkeep "$UPKEEP" --root "$U2" status --json
status_figures status supervisord supervisorctl -c "$S2/supervisord.conf" status
status_figures status runit sv status "$V2"/*
running=$(grep -c '"state": "running"' "$OUT/status-status_json-upkeep.txt" 2>/dev/null)
say "upkeep reports $running of $N_SVCS running"
echo "upkeep status --json: $running running" >>"$OUT/raw.txt"

say "stopping the $N_SVCS-service supervisors"
kill -TERM "$UP2" "$SP2" 2>/dev/null
kill -HUP "$RP2" 2>/dev/null
wait_gone "$UP2" 30; wait_gone "$SP2" 30; wait_gone "$RP2" 30

# ================================================================== table
ratio() { # A B: A/B, or "—"
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "n/a" || b == "n/a" || b + 0 == 0) print "—"; else printf "%.3g", a / b }'
}
v() { local x=${R[$1,$2]:-}; printf '%s' "${x:-n/a}"; }
mb() { local x=${R[$1,$2]:-}; [ -n "$x" ] && awk -v k="$x" 'BEGIN { printf "%.1f", k / 1024 }' || printf 'n/a'; }
verdict() { # VALUE OP LIMIT
	awk -v x="$1" -v l="$3" -v op="$2" 'BEGIN { if (x == "n/a" || x == "") { print "?"; exit }
		ok = (op == "<=") ? (x + 0 <= l + 0) : (x + 0 == l + 0); print ok ? "met" : "NOT met" }'
}
row() { # LABEL U S R TARGET VERDICT
	printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$(ratio "$2" "$3")" "$(ratio "$2" "$4")" "$5" "$6"
}

{
	echo "| metric | upkeep | supervisord | runit | upkeep/supervisord | upkeep/runit | target | upkeep |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"
	row "crash→restart p50 (ms)" "$(v crash_p50 upkeep)" "$(v crash_p50 supervisord)" "$(v crash_p50 runit)" "≤ 5" "$(verdict "$(v crash_p50 upkeep)" "<=" 5)"
	row "crash→restart p95 (ms)" "$(v crash_p95 upkeep)" "$(v crash_p95 supervisord)" "$(v crash_p95 runit)" "≤ 20" "$(verdict "$(v crash_p95 upkeep)" "<=" 20)"
	row "$N_SVCS services: launch → all running (ms)" "$(v start_ms upkeep)" "$(v start_ms supervisord)" "$(v start_ms runit)" "≤ 300" "$(verdict "$(v start_ms upkeep)" "<=" 300)"
	row "supervisor RSS, $N_SVCS services (MB)" "$(mb rss_kb upkeep)" "$(mb rss_kb supervisord)" "$(mb rss_kb runit)" "≤ 20" "$(verdict "$(mb rss_kb upkeep)" "<=" 20)"
	row "supervisor PSS (MB)" "$(mb pss_kb upkeep)" "$(mb pss_kb supervisord)" "$(mb pss_kb runit)" "" ""
	row "supervisor processes" "$(v procs upkeep)" "$(v procs supervisord)" "$(v procs runit)" "" ""
	row "idle CPU over ${IDLE_SECS} s (% of one core)" "$(v cpu_pct upkeep)" "$(v cpu_pct supervisord)" "$(v cpu_pct runit)" "≤ 0.2" "$(verdict "$(v cpu_pct upkeep)" "<=" 0.2)"
	row "status of $N_SVCS services, p50 (ms)" "$(v status upkeep)" "$(v status supervisord)" "$(v status runit)" "≤ 20" "$(verdict "$(v status upkeep)" "<=" 20)"
	row "status --json of $N_SVCS services, p50 (ms)" "$(v status_json upkeep)" "$(v status supervisord)" "$(v status runit)" "≤ 20" "$(verdict "$(v status_json upkeep)" "<=" 20)"
	row "stop, TERM ignored, 2 s timeout (ms)" "$(v stop_ms upkeep)" "$(v stop_ms supervisord)" "$(v stop_ms runit)" "" ""
	row "processes left after that stop" "$(v stop_left upkeep)" "$(v stop_left supervisord)" "$(v stop_left runit)" "0" "$(verdict "$(v stop_left upkeep)" "==" 0)"
	echo
	echo "crash→restart: $N_CRASH kills each; failed restarts (none within 5 s): upkeep $(v crash_fail upkeep), supervisord $(v crash_fail supervisord), runit $(v crash_fail runit)."
	echo "status of the peers: \`supervisorctl -c CONF status\`, \`sv status DIR/*\` (all $N_SVCS)."
	echo "stop: upkeep: ${R[stop_how,upkeep]}; supervisord: ${R[stop_how,supervisord]}; runit: ${R[stop_how,runit]}."
	echo "idle CPU from utime+stime in /proc/<pid>/stat (10 ms ticks): upkeep $(v cpu_ticks upkeep), supervisord $(v cpu_ticks supervisord), runit $(v cpu_ticks runit) ticks."
	echo "load average (1/5/15 min) at start: $(sed -n 's/^load at start: //p' "$OUT/machine.txt"); at end: $(cut -d' ' -f1-3 /proc/loadavg)."
} | tee "$OUT/results.md"
say "done; raw figures in $OUT"
