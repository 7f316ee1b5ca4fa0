#!/usr/bin/env bash
# bench/scale.sh — 1,000 services on one host: upkeep against supervisord and runit, in one bounded run.
#
#   sudo bash bench/scale.sh          (root: it installs the peers with apt-get if missing)
#
# For each tool in turn (upkeep with N_CHECKED HTTP checks at 1 s, upkeep without checks,
# supervisord, runit), with N_SVCS `sleep` services:
#   1. launch → all N_SVCS sleeps exec'd (ms)
#   2. RSS / PSS of the supervisor and its CPU over IDLE_SECS (% of one core)
#   3. `status` of all services (upkeep: status --json), p50 of N_STATUS calls
#   4. crash → restart of one service, N_CRASH SIGKILLs (p50 / p95)
#   5. stop of all: from the signal (TERM; runsvdir: HUP) until the supervisor has exited and
#      no sleep of the run is left (polled every 50 ms: ±60 ms)
# The checks hit one small HTTP server (bench/healthbench serve) on 127.0.0.1: the only
# traffic the run makes, apart from apt-get when a peer is missing. Every step is bounded, the
# whole run is under `timeout`, and the EXIT trap stops every process and removes every
# cgroup and mount it made. Raw figures go to bench/out/scale/ (git-ignored).
#
# Knobs (env): N_SVCS (1000) N_CHECKED (N_SVCS/2) IDLE_SECS (30) N_STATUS (10) N_CRASH (30)
#              OUT (bench/out/scale) TOOLS ("upkeep upkeep-nochecks supervisord runit")
#              UPKEEP_BIN (a prebuilt upkeep to measure instead of this checkout's)

set -uo pipefail

if [ -z "${UPKEEP_SCALE_INNER:-}" ]; then
	# the bound of the whole run: TERM after 900 s (the trap cleans up), KILL 60 s later
	export UPKEEP_SCALE_INNER=1
	exec timeout -k 60 900 bash "$0" "$@"
fi

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
N_SVCS=${N_SVCS:-1000}
N_CHECKED=${N_CHECKED:-$((N_SVCS / 2))}
IDLE_SECS=${IDLE_SECS:-30}
N_STATUS=${N_STATUS:-10}
N_CRASH=${N_CRASH:-30}
OUT=${OUT:-$REPO/bench/out/scale}
TOOLS=${TOOLS:-upkeep upkeep-nochecks supervisord runit}
STOP_TIMEOUT=5

# say, die, wait_gone and the cleanup shared by the bench scripts
. "$HERE/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (the peers, cgroups and the tmpfs need it)"
command -v go >/dev/null || die "go is not installed"

# The same descriptor limit for all three tools: each service costs a supervisor a few
# descriptors (pipes, log files), and 1,000 of them exceed the usual 1,024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((N_SVCS * 6 + 100)) ] ||
	die "open-file limit $(ulimit -n) is below $((N_SVCS * 6 + 100)); raise the hard limit"
FDS=$(ulimit -n)

# ------------------------------------------------------------------ peers
if ! command -v supervisord >/dev/null || ! command -v runsvdir >/dev/null || ! command -v sv >/dev/null; then
	say "installing supervisor and runit (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	timeout --foreground 300 apt-get update -qq >&2 || die "apt-get update failed"
	timeout --foreground 300 apt-get install -y -qq supervisor runit >&2 || die "apt-get install failed"
fi
for p in supervisord runsvdir; do
	if pgrep -x "$p" >/dev/null 2>&1; then
		say "note: a $p not started by this run is present; it is left alone and not measured"
	fi
done

# ------------------------------------------------------------------ temp dir, cleanup
T=$(mktemp -d /tmp/upkeep-scale.XXXXXX) || die "mktemp"
mkdir -p "$T/bin" "$T/logs" "$OUT"
cd "$T" || die "cd $T"   # everything launched from here has its cwd under $T: reap finds it
RUN=$(( (RANDOM * 32768 + RANDOM) % 900000 + 100000 ))
M="8${RUN}1"         # the `sleep` argument of every service of this run: how they are found
UPKEEP="$T/bin/upkeep"
MEASURE="$T/bin/measure"
HB="$T/bin/healthbench"
STARTED=()           # "kind:pid" of every process launched in the background
UPKEEP_ROOTS=()
MOUNTS=()

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	say "cleaning up"
	bench_cleanup 100 30 "$M"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ build
say "building upkeep and the helpers"
# UPKEEP_BIN: measure that upkeep binary instead of this checkout's (a before/after comparison)
(cd "$REPO" && export CGO_ENABLED=0 && if [ -n "${UPKEEP_BIN:-}" ]; then cp "$UPKEEP_BIN" "$UPKEEP"; else
	timeout --foreground 300 go build -o "$UPKEEP" ./cmd/upkeep; fi &&
	timeout --foreground 300 go build -o "$MEASURE" ./bench/measure &&
	timeout --foreground 300 go build -o "$HB" ./bench/healthbench) || die "go build failed"

# the check target: one small HTTP server on 127.0.0.1
"$HB" serve -n 1 -ports-out "$T/ports" -ctl "$T/hb.sock" -life 20m >>"$T/logs/server.out" 2>&1 &
STARTED+=("server:$!")
for _ in $(seq 100); do [ -s "$T/ports" ] && break; sleep 0.05; done
PORT=$(head -1 "$T/ports" 2>/dev/null)
[ -n "$PORT" ] || die "the check server did not start"


field() { local k=$1; shift; printf '%s\n' "$*" | tr ' ' '\n' | sed -n "s/^$k=//p" | head -1; }

# ------------------------------------------------------------------ configs
upkeep_root() { # ROOT CHECKED: N_SVCS services, the first CHECKED odd-numbered ones with an HTTP check
	local root=$1 checked=$2 i n=0 d
	for i in $(seq -f %04g "$N_SVCS"); do
		d="$root/var/www/service-$i"
		mkdir -p "$d"
		cat >"$d/service.toml" <<EOF
command = ["/bin/sleep", "$M"]
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
		# every other service from 0002 on: service-0001, the crash target, has none
		if [ $((10#$i % 2)) = 0 ] && [ $n -lt "$checked" ]; then
			n=$((n + 1))
			cat >>"$d/service.toml" <<EOF
[[check]]
type = "http"
url = "http://127.0.0.1:$PORT/ok"
interval = "1s"
timeout = "1s"
cycles = 3
then = "restart"
EOF
		fi
	done
	# run/ is a tmpfs on every systemd host (/run): the pid files go there, not to the disk
	mkdir -p "$root/run"
	mount -t tmpfs -o size=64m,mode=0755 tmpfs "$root/run" && MOUNTS+=("$root/run")
}

supervisor_conf() { # DIR
	local d=$1 i
	mkdir -p "$d/childlogs"
	{
		cat <<EOF
[supervisord]
nodaemon=true
logfile=$d/supervisord.log
pidfile=$d/supervisord.pid
childlogdir=$d/childlogs
loglevel=warn
minfds=$((N_SVCS * 6 + 100))

[unix_http_server]
file=$d/supervisor.sock
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$d/supervisor.sock
EOF
		for i in $(seq -f %04g "$N_SVCS"); do
			cat <<EOF

[program:service-$i]
command=/bin/sleep $M
directory=$T
startsecs=0
autorestart=true
startretries=1000
stopsignal=TERM
stopwaitsecs=$STOP_TIMEOUT
EOF
		done
	} >"$d/supervisord.conf"
}

runit_dir() { # SVDIR
	local i
	for i in $(seq -f %04g "$N_SVCS"); do
		mkdir -p "$1/service-$i"
		printf '#!/bin/sh\nexec /bin/sleep %s\n' "$M" >"$1/service-$i/run"
		chmod +x "$1/service-$i/run"
	done
}

declare -A R   # results: R[metric,tool]

: >"$OUT/raw.txt"
{
	echo "date: $(date -u +%FT%TZ)"
	echo "nproc: $(nproc)"
	echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
	echo "memory: $(free -h | awk '/^Mem:/ { print $2 " total, " $7 " available" }')"
	echo "kernel: $(uname -r)"
	echo "go: $(go version)"
	echo "supervisord: $(supervisord --version 2>&1) ($(dpkg-query -W -f='${Version}' supervisor 2>/dev/null))"
	echo "runit: $(dpkg-query -W -f='${Version}' runit 2>/dev/null)"
	echo "open-file limit (all tools): $FDS"
	echo "services: $N_SVCS, checked (upkeep): $N_CHECKED"
	echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"

# ------------------------------------------------------------------ one tool
# bench TOOL: launch, idle, status, crash, stop; figures into R[*,TOOL]
bench() {
	local tool=$1 lp t0 line pid statcmd=() crashparent gap
	local dir="$T/$tool"
	case $tool in
	upkeep) upkeep_root "$dir" "$N_CHECKED"; UPKEEP_ROOTS+=("$dir") ;;
	upkeep-nochecks) upkeep_root "$dir" 0; UPKEEP_ROOTS+=("$dir") ;;
	supervisord) supervisor_conf "$dir" ;;
	runit) runit_dir "$dir" ;;
	esac
	say "$tool: launching $N_SVCS services"
	read -r lp </proc/sys/kernel/ns_last_pid
	t0=$EPOCHREALTIME
	case $tool in
	upkeep*) "$UPKEEP" --root "$dir" daemon -q >>"$T/logs/$tool.out" 2>&1 & ;;
	supervisord) supervisord -c "$dir/supervisord.conf" >>"$T/logs/$tool.out" 2>&1 & ;;
	runit) runsvdir -P "$dir" >>"$T/logs/$tool.out" 2>&1 & ;;
	esac
	pid=$!
	case $tool in runit) STARTED+=("runit:$pid") ;; *) STARTED+=("$tool:$pid") ;; esac
	if line=$(timeout --foreground 130 "$MEASURE" startup -root "$pid" -since "$lp" -t0 "$t0" -marker "$M" \
		-count "$N_SVCS" -timeout 120s); then
		R[start_ms,$tool]=$line
		say "$tool: $N_SVCS running after $line ms"
	else
		say "$tool: startup measurement failed"
	fi
	echo "$tool startup: ${line:-failed}" >>"$OUT/raw.txt"
	sleep 3 # the start-up burst settles (upkeep hands its memory back a second after it)

	say "$tool: CPU over ${IDLE_SECS} s, then memory"
	local grp="$tool=$pid"
	[ "$tool" = runit ] && grp="$tool=$pid+runsv"
	if line=$(timeout --foreground $((IDLE_SECS + 60)) "$MEASURE" usage -secs "$IDLE_SECS" "$grp"); then
		echo "$line" >>"$OUT/raw.txt"
		line=${line#* }
		R[rss_kb,$tool]=$(field rss_kb "$line")
		R[pss_kb,$tool]=$(field pss_kb "$line")
		R[procs,$tool]=$(field procs "$line")
		R[cpu_pct,$tool]=$(field cpu_pct "$line")
		R[cpu_ticks,$tool]=$(field cpu_ticks "$line")
		say "$tool: $line"
	fi
	R[fds,$tool]=$(ls /proc/"$pid"/fd 2>/dev/null | wc -l)
	R[threads,$tool]=$(sed -n 's/^Threads:[[:space:]]*//p' /proc/"$pid"/status 2>/dev/null)

	case $tool in
	upkeep*) statcmd=("$UPKEEP" --root "$dir" status --json) ;;
	supervisord) statcmd=(supervisorctl -c "$dir/supervisord.conf" status) ;;
	runit) statcmd=(sv status "$dir"/*) ;;
	esac
	line=$(timeout --foreground 300 "$MEASURE" timecmd -n "$N_STATUS" -timeout 20s -allow-fail -out "$OUT/status-$tool.txt" -- "${statcmd[@]}")
	R[status_ms,$tool]=$(field p50 "$line")
	R[status_p95,$tool]=$(field p95 "$line")
	say "$tool: status $line"
	echo "$tool status: $line" >>"$OUT/raw.txt"
	case $tool in
	upkeep*)
		R[running,$tool]=$(grep -c '"state": "running"' "$OUT/status-$tool.txt")
		R[restarts,$tool]=$(grep -o '"restarts": [0-9]*' "$OUT/status-$tool.txt" | awk '{ s += $2 } END { print s + 0 }')
		;;
	supervisord) R[running,$tool]=$(grep -c ' RUNNING ' "$OUT/status-$tool.txt") ;;
	runit) R[running,$tool]=$(grep -c '^run: ' "$OUT/status-$tool.txt") ;;
	esac

	crashparent=$pid gap=300ms
	if [ "$tool" = runit ]; then
		crashparent=$("$MEASURE" pids -parent "$pid" -comm runsv -arg service-0001 -wait 10s | head -1)
		gap=1200ms # runsv waits 1 s before restarting a ./run that ran less than 1 s
	fi
	if [ -n "$crashparent" ] && line=$(timeout --foreground 200 "$MEASURE" restart -parent "$crashparent" -marker "$M" \
		-n "$N_CRASH" -gap "$gap" -timeout 190s -raw "$OUT/crash-$tool.txt"); then
		R[crash_p50,$tool]=$(field p50 "$line")
		R[crash_p95,$tool]=$(field p95 "$line")
		R[crash_fail,$tool]=$(field failures "$line")
		say "$tool: crash→restart $line"
		echo "$tool crash: $line" >>"$OUT/raw.txt"
	else
		say "$tool: restart measurement failed"
	fi

	say "$tool: stopping all"
	t0=$EPOCHREALTIME
	case $tool in runit) kill -HUP "$pid" ;; *) kill -TERM "$pid" ;; esac
	local left n=0
	while [ $n -lt 1200 ]; do # 60 s
		if ! kill -0 "$pid" 2>/dev/null || [ "$(awk '{ print $3 }' /proc/"$pid"/stat 2>/dev/null)" = Z ]; then
			left=$("$MEASURE" count -marker "$M")
			[ "$left" = 0 ] && break
		fi
		sleep 0.05; n=$((n + 1))
	done
	R[stop_ms,$tool]=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
	wait_gone "$pid" 30
	R[stop_left,$tool]=$("$MEASURE" count -marker "$M")
	say "$tool: all stopped after ${R[stop_ms,$tool]} ms; ${R[stop_left,$tool]} left"
	echo "$tool stop: ms=${R[stop_ms,$tool]} left=${R[stop_left,$tool]}" >>"$OUT/raw.txt"
	"$MEASURE" reap -markers "$M" >/dev/null
	sleep 2
}

for tool in $TOOLS; do bench "$tool"; done

# ================================================================== table
v() { local x=${R[$1,$2]:-}; printf '%s' "${x:-n/a}"; }
mb() { local x=${R[$1,$2]:-}; [ -n "$x" ] && awk -v k="$x" 'BEGIN { printf "%.1f", k / 1024 }' || printf 'n/a'; }
verdict() { # VALUE OP LIMIT
	awk -v x="$1" -v l="$3" -v op="$2" 'BEGIN { if (x == "n/a" || x == "") { print "?"; exit }
		ok = (op == "<=") ? (x + 0 <= l + 0) : (x + 0 == l + 0); print ok ? "met" : "NOT met" }'
}
row() { # LABEL METRIC-FN METRIC TARGET VERDICT-TOOL OP LIMIT
	local label=$1 fn=$2 key=$3 target=$4 vt=$5 op=$6 lim=$7 t cells=""
	for t in upkeep upkeep-nochecks supervisord runit; do cells+=" $($fn "$key" "$t") |"; done
	local verd=""
	[ -n "$vt" ] && verd=$(verdict "$($fn "$key" "$vt")" "$op" "$lim")
	printf '| %s |%s %s | %s |\n' "$label" "$cells" "$target" "$verd"
}
{
	echo "| metric ($N_SVCS services) | upkeep, $N_CHECKED HTTP checks at 1 s | upkeep, no checks | supervisord | runit | target | upkeep |"
	echo "| --- | ---: | ---: | ---: | ---: | --- | --- |"
	row "launch → all running (ms)" v start_ms "≤ 1000" upkeep "<=" 1000
	row "supervisor RSS (MB)" mb rss_kb "≤ 60" upkeep "<=" 60
	row "supervisor PSS (MB)" mb pss_kb "" "" "" ""
	row "supervisor processes" v procs "" "" "" ""
	row "CPU over ${IDLE_SECS} s (% of one core)" v cpu_pct "≤ 0.5 without checks" upkeep-nochecks "<=" 0.5
	row "CPU ticks (10 ms) over ${IDLE_SECS} s" v cpu_ticks "" "" "" ""
	row "status of all, p50 (ms)" v status_ms "≤ 50" upkeep "<=" 50
	row "status of all, p95 (ms)" v status_p95 "" "" "" ""
	row "services running per status" v running "$N_SVCS" upkeep "==" "$N_SVCS"
	row "crash→restart p50 (ms)" v crash_p50 "≤ 5" upkeep "<=" 5
	row "crash→restart p95 (ms)" v crash_p95 "" "" "" ""
	row "stop of all: signal → all gone (ms)" v stop_ms "" "" "" ""
	row "processes left after the stop" v stop_left "0" upkeep "==" 0
	row "supervisor's open descriptors" v fds "" "" "" ""
	row "supervisor's threads" v threads "" "" "" ""
	echo
	echo "crash→restart: $N_CRASH kills each, of one service's sleep (the lowest-pid child at first, then each new one); failed restarts (none within 5 s): upkeep $(v crash_fail upkeep), upkeep without checks $(v crash_fail upkeep-nochecks), supervisord $(v crash_fail supervisord), runit $(v crash_fail runit)."
	echo "restarts upkeep counted by the status after the idle window (the checked run; a failed check restarts after 3 cycles): $(v restarts upkeep)."
	echo "status: \`upkeep status --json\`, \`supervisorctl -c CONF status\`, \`sv status DIR/*\`; open-file limit $FDS for all."
	echo "load average (1/5/15 min) at start: $(sed -n 's/^load at start: //p' "$OUT/machine.txt"); at end: $(cut -d' ' -f1-3 /proc/loadavg)."
} | tee "$OUT/results.md"
say "done; raw figures in $OUT"
