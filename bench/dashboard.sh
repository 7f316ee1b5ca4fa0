#!/usr/bin/env bash
# bench/dashboard.sh — the dashboard beside monit's and supervisord's web UIs, in one bounded run.
#
#   sudo bash bench/dashboard.sh       (root: it installs monit, supervisor and chromium if missing)
#
# Each tool supervises N_SVCS `sleep` services (upkeep and monit: half with an HTTP check every
# second against one local /ok server). For each UI, in Debian's headless Chromium
# (bench/dashbench page): first paint of the first page (ms: the first load, cold, and the
# median of 5), page weight (KB of bodies), then the supervisor's CPU (% of one core) and RSS
# while that page stays open for LIVE_SECS. upkeep's page is live (an event stream); monit's
# and supervisord's are static until reloaded. upkeep's service page is measured twice: on the
# real daemon (the history of this run, a minute or two) and on a dashboard fed an hour of
# made-up history (dashbench synthetic: a bench cannot wait an hour). All traffic is to
# 127.0.0.1. Raw figures go to bench/out/dashboard/ (git-ignored).
#
# Knobs (env): N_SVCS (100) LIVE_SECS (60) OUT (bench/out/dashboard)

set -uo pipefail
if [ -z "${UPKEEP_DASH_INNER:-}" ]; then
	export UPKEEP_DASH_INNER=1
	exec timeout -k 30 900 bash "$0" "$@"
fi

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
N_SVCS=${N_SVCS:-100}
LIVE_SECS=${LIVE_SECS:-60}
OUT=${OUT:-$REPO/bench/out/dashboard}

. "$HERE/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (the peers and cgroups need it)"
need=()
command -v monit >/dev/null || need+=(monit)
command -v supervisord >/dev/null || need+=(supervisor)
command -v chromium >/dev/null || need+=(chromium)
if ((${#need[@]})); then
	say "installing ${need[*]} (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	timeout --foreground 600 apt-get install -y -qq "${need[@]}" >&2 || die "apt-get install failed"
fi

T=$(mktemp -d /tmp/upkeep-dash.XXXXXX) || die "mktemp"
mkdir -p "$T/bin" "$T/logs" "$OUT"
cd "$T" || die "cd $T"
RUN=$(( (RANDOM * 32768 + RANDOM) % 900000 + 100000 ))
MARK="7${RUN}"   # + 1/2/3: upkeep's, monit's and supervisord's sleeps
UPKEEP="$T/bin/upkeep"
DB="$T/bin/dashbench"
MEASURE="$T/bin/measure"
STARTED=()
UPKEEP_ROOTS=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	say "cleaning up"
	[ -n "${MONITRC:-}" ] && monit -c "$MONITRC" quit >/dev/null 2>&1
	bench_cleanup 50 20 "${MARK}1,${MARK}2,${MARK}3"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "building upkeep, dashbench and the measure helper"
(cd "$REPO" && CGO_ENABLED=0 timeout --foreground 300 go build -o "$UPKEEP" ./cmd/upkeep &&
	timeout --foreground 300 go build -o "$DB" ./bench/dashbench &&
	timeout --foreground 300 go build -o "$MEASURE" ./bench/measure) || die "go build failed"

port() { "$DB" port; }
wait_http() { # URL SECS
	local n=$(($2 * 10))
	until curl -fsS -o /dev/null "$1" 2>/dev/null; do
		n=$((n - 1)); [ $n -gt 0 ] || return 1; sleep 0.1
	done
}
command -v curl >/dev/null || die "curl is needed"

OKP=$(port); "$DB" ok "127.0.0.1:$OKP" >"$T/logs/ok.out" 2>&1 &
STARTED+=("ok:$!")
wait_http "http://127.0.0.1:$OKP/ok" 10 || die "the /ok server did not start"

declare -A R
measure_page() { # KEY URL PID
	local j
	j=$(timeout --foreground $((LIVE_SECS + 120)) "$DB" page -url "$2" ${3:+-pid "$3"} -live "${LIVE_SECS}s") || { say "warning: $1: dashbench failed"; return; }
	printf '%s\n' "$j" >"$OUT/$1.json"
	R[$1]=$j
	say "$1: $j"
}

# ---- upkeep
say "upkeep: $N_SVCS services, $((N_SVCS / 2)) with an HTTP check every second"
U="$T/up"; UPKEEP_ROOTS+=("$U")
for i in $(seq 1 "$N_SVCS"); do
	d="$U/var/www/service-$i"; mkdir -p "$d"
	printf 'command = ["/bin/sleep", "%s1"]\nready_after = "0s"\n' "$MARK" >"$d/service.toml"
	if [ $((i % 2)) = 0 ]; then
		printf '[[check]]\ntype = "http"\nurl = "http://127.0.0.1:%s/ok"\ninterval = "1s"\ntimeout = "2s"\n' "$OKP" >>"$d/service.toml"
	fi
done
UP=$(port)
"$UPKEEP" --root "$U" daemon -q --http "127.0.0.1:$UP" >"$T/logs/upkeep.out" 2>&1 &
UPID=$!; STARTED+=("upkeep:$UPID")
wait_http "http://127.0.0.1:$UP/api/status" 20 || die "upkeep's dashboard did not answer"
n=0; until [ "$("$MEASURE" count -marker "${MARK}1")" -ge "$N_SVCS" ] || [ $n -ge 200 ]; do sleep 0.1; n=$((n + 1)); done
sleep 5   # a few check runs in the history
measure_page upkeep-host "http://127.0.0.1:$UP/" "$UPID"
measure_page upkeep-service "http://127.0.0.1:$UP/service/service-2" ""
kill -TERM "$UPID"; wait_gone "$UPID" 20

# ---- upkeep's pages on an hour of history
SP=$(port)
"$DB" synthetic -addr "127.0.0.1:$SP" -services "$N_SVCS" >"$T/logs/synthetic.out" 2>&1 &
SPID=$!; STARTED+=("synthetic:$SPID")
wait_http "http://127.0.0.1:$SP/" 10 || die "the synthetic dashboard did not answer"
measure_page upkeep-host-hour "http://127.0.0.1:$SP/" ""
measure_page upkeep-service-hour "http://127.0.0.1:$SP/service/www-000" ""
kill -TERM "$SPID"; wait_gone "$SPID" 5

# ---- monit (set httpd)
say "monit: $N_SVCS processes, $((N_SVCS / 2)) with an HTTP check every cycle (1 s)"
M="$T/monit"; mkdir -p "$M"; MP=$(port)
MONITRC="$M/monitrc"
{
	echo "set daemon 1"
	echo "set pidfile $M/monit.pid"
	echo "set idfile $M/monit.id"
	echo "set statefile $M/monit.state"
	echo "set logfile $M/monit.log"
	echo "set httpd port $MP and use address 127.0.0.1"
	echo "    allow 127.0.0.1"
	for i in $(seq 1 "$N_SVCS"); do
		echo "check process service-$i with pidfile $M/s$i.pid"
		echo "  start program = \"/bin/sh -c 'cd $T; /bin/sleep ${MARK}2 >/dev/null 2>&1 & echo \$! > $M/s$i.pid'\""
		echo "  stop program = \"/bin/sh -c 'kill \$(cat $M/s$i.pid)'\""
		[ $((i % 2)) = 0 ] && echo "  if failed host 127.0.0.1 port $OKP protocol http request \"/ok\" then alert"
	done
} >"$MONITRC"
chmod 600 "$MONITRC"
monit -c "$MONITRC" -I >"$T/logs/monit.out" 2>&1 &
MPID=$!; STARTED+=("monit:$MPID")
wait_http "http://127.0.0.1:$MP/" 30 || die "monit's httpd did not answer"
n=0; until [ "$("$MEASURE" count -marker "${MARK}2")" -ge "$N_SVCS" ] || [ $n -ge 600 ]; do sleep 0.1; n=$((n + 1)); done
measure_page monit-host "http://127.0.0.1:$MP/" "$MPID"
measure_page monit-service "http://127.0.0.1:$MP/service-2" ""
monit -c "$MONITRC" quit >/dev/null 2>&1; MONITRC=
wait_gone "$MPID" 10

# ---- supervisord (inet_http_server)
say "supervisord: $N_SVCS programs (no health checks: it has none)"
S="$T/sup"; mkdir -p "$S/logs"; SVP=$(port)
{
	echo "[supervisord]"; echo "nodaemon=true"; echo "logfile=$S/supervisord.log"; echo "pidfile=$S/supervisord.pid"; echo "childlogdir=$S/logs"
	echo "[inet_http_server]"; echo "port=127.0.0.1:$SVP"
	echo "[rpcinterface:supervisor]"; echo "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface"
	for i in $(seq 1 "$N_SVCS"); do
		echo "[program:service-$i]"; echo "command=/bin/sleep ${MARK}3"; echo "directory=$T"; echo "startsecs=0"
	done
} >"$S/supervisord.conf"
supervisord -c "$S/supervisord.conf" >"$T/logs/supervisord.out" 2>&1 &
SVPID=$!; STARTED+=("supervisord:$SVPID")
wait_http "http://127.0.0.1:$SVP/" 30 || die "supervisord's web UI did not answer"
n=0; until [ "$("$MEASURE" count -marker "${MARK}3")" -ge "$N_SVCS" ] || [ $n -ge 300 ]; do sleep 0.1; n=$((n + 1)); done
measure_page supervisord-host "http://127.0.0.1:$SVP/" "$SVPID"
kill -TERM "$SVPID"; wait_gone "$SVPID" 20

# ---- table
j() { printf '%s' "${R[$1]:-}" | sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p"; }
{
	echo "bench/dashboard.sh, $(date -u +%FT%TZ), $N_SVCS services, live ${LIVE_SECS} s, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "chromium: $(chromium --version 2>/dev/null | tail -1); monit: $(monit -V 2>/dev/null | head -1); supervisord: $(supervisord --version 2>/dev/null)"
	echo
	echo "| page | first paint, cold (ms) | first paint, median of 5 (ms) | weight (KB) | requests | supervisor CPU, page open (% of a core) | supervisor RSS, page open (MB) |"
	echo "| --- | --- | --- | --- | --- | --- | --- |"
	for k in upkeep-host upkeep-service upkeep-host-hour upkeep-service-hour monit-host monit-service supervisord-host; do
		[ -n "${R[$k]:-}" ] || continue
		rss=$(j "$k" rss_kb_live); [ -n "$rss" ] && rss=$(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')
		cpu=$(j "$k" cpu_percent_live); [ -n "$cpu" ] && cpu=$(awk -v c="$cpu" 'BEGIN{printf "%.2f", c}')
		printf '| %s | %.0f | %.0f | %.1f | %s | %s | %s |\n' "$k" "$(j "$k" first_paint_ms_cold)" "$(j "$k" first_paint_ms_median)" \
			"$(j "$k" weight_kb)" "$(j "$k" requests)" "${cpu:--}" "${rss:--}"
	done
} | tee "$OUT/summary.md"
