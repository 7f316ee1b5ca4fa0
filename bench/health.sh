#!/usr/bin/env bash
# bench/health.sh — upkeep's health checks: cost under load, failure→restart
# latency (beside monit), and memory over a long run. One bounded run.
#
#   bash bench/health.sh          (as root if monit must be installed; about SOAK_MIN + 9 minutes)
#
# Phases (docs/benchmarks.md, "Health checks", says what each means and the targets):
#   A. failure → restart, upkeep, one service with an HTTP check (interval 1 s, timeout 1 s,
#      1 cycle): the helper server makes the check's endpoint fail (HTTP 500, or hang) and the
#      time until the service runs with a new pid is taken, N_TRIALS times per mode.
#   B. the same with monit (`set daemon 1`, `if failed port … protocol http … then restart`).
#   C. N_SVCS services × 1 HTTP check at 1 s: daemon CPU over CPU_SECS, lateness of the check
#      runs (upkeep's late_ns, and request arrival jitter at the server), failure → restart
#      under that load; the daemon runs SOAK_MIN minutes in all, its RSS sampled every minute.
#   D. monit on the same N_SVCS services and checks: its CPU over CPU_SECS.
#
# The services are `sleep <marker>`. All HTTP servers are one helper process (bench/healthbench)
# listening on N_SVCS+2 ports of 127.0.0.1; nothing else is contacted (apart from apt-get when
# monit is missing). Everything runs from a temp dir; every step is bounded; the EXIT trap stops
# what the run started and removes the temp dir. Figures go to $OUT (bench/out/health, git-ignored).
#
# Knobs (env): N_SVCS (500) CPU_SECS (60) SOAK_MIN (10) N_TRIALS (10) N_LOAD_TRIALS (5)
#              MONIT (1: compare with monit; 0: skip) MONIT_SETTLE (8s) OUT (bench/out/health)

set -uo pipefail

SOAK_MIN=${SOAK_MIN:-10}
if [ -z "${UPKEEP_HEALTH_INNER:-}" ]; then
	# the bound of the whole run: TERM past it (the trap cleans up), KILL 60 s later
	export UPKEEP_HEALTH_INNER=1
	exec timeout -k 60 $((SOAK_MIN * 60 + 1200)) bash "$0" "$@"
fi

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
N_SVCS=${N_SVCS:-500}
CPU_SECS=${CPU_SECS:-60}
N_TRIALS=${N_TRIALS:-10}
N_LOAD_TRIALS=${N_LOAD_TRIALS:-5}
MONIT=${MONIT:-1}
MONIT_SETTLE=${MONIT_SETTLE:-8s}
OUT=${OUT:-$REPO/bench/out/health}

# say, die, wait_gone and the cleanup shared by the bench scripts
. "$HERE/lib.sh"
load() { cut -d' ' -f1-3 /proc/loadavg; }

command -v go >/dev/null || die "go is not installed"
command -v curl >/dev/null || die "curl is not installed"
command -v jq >/dev/null || die "jq is not installed"
[ "$SOAK_MIN" -ge 2 ] 2>/dev/null || die "SOAK_MIN must be at least 2"
if [ "$MONIT" = 1 ] && ! command -v monit >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		say "installing monit (apt-get)"
		export DEBIAN_FRONTEND=noninteractive
		timeout --foreground 300 apt-get update -qq >&2 && timeout --foreground 300 apt-get install -y -qq monit >&2 ||
			{ say "apt-get install monit failed: no monit figures"; MONIT=0; }
	else
		say "monit is missing and this is not root: no monit figures"; MONIT=0
	fi
fi

# ------------------------------------------------------------------ temp dir, cleanup
T=$(mktemp -d /tmp/upkeep-health.XXXXXX) || die "mktemp"
mkdir -p "$T/bin" "$T/logs" "$OUT"
cd "$T" || die "cd $T" # everything launched from here has its cwd under $T: reap finds it
RUN=$(((RANDOM * 32768 + RANDOM) % 900000 + 100000))
M_ONE="8${RUN}1"  # the `sleep` argument of each phase's services
M_LOAD="8${RUN}2"
M_MON1="8${RUN}3"
M_MON500="8${RUN}4"
UPKEEP="$T/bin/upkeep"
HB="$T/bin/healthbench"
MEASURE="$T/bin/measure"
SRV_SOCK="$T/srv.sock"
STARTED=() # "kind:pid" of every long-running process launched
UPKEEP_ROOTS=()

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	say "cleaning up"
	bench_cleanup 50 30 "$M_ONE,$M_LOAD,$M_MON1,$M_MON500"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


# field KEY LINE: the value of KEY=value in a helper's output line
field() { local k=$1; shift; printf '%s\n' "$*" | tr ' ' '\n' | sed -n "s/^$k=//p" | head -1; }
now_ns() { date +%s%N; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null; }

# ------------------------------------------------------------------ build
say "building upkeep and the helpers"
(cd "$REPO" && CGO_ENABLED=0 timeout --foreground 300 go build -o "$UPKEEP" ./cmd/upkeep &&
	timeout --foreground 300 go build -o "$HB" ./bench/healthbench &&
	timeout --foreground 300 go build -o "$MEASURE" ./bench/measure) || die "go build failed"

{
	echo "date: $(date -u +%FT%TZ)"
	echo "nproc: $(nproc)"
	echo "memory: $(free -h | awk '/^Mem:/ { print $2 " total, " $7 " available" }')"
	echo "kernel: $(uname -r)"
	echo "go: $(go version)"
	echo "monit: $(monit -V 2>/dev/null | head -1) ($(dpkg-query -W -f='${Version}' monit 2>/dev/null))"
	echo "load at start: $(load)"
} >"$OUT/machine.txt"
: >"$OUT/raw.txt"
declare -A R # results

# ------------------------------------------------------------------ the servers
NP=$((N_SVCS + 2))
"$HB" serve -n "$NP" -ports-out "$T/ports" -ctl "$SRV_SOCK" -life $((SOAK_MIN + 25))m >>"$T/logs/server.out" 2>&1 &
SRV=$!; STARTED+=("server:$SRV")
for _ in $(seq 100); do [ -s "$T/ports" ] && [ -S "$SRV_SOCK" ] && break; sleep 0.1; done
[ -S "$SRV_SOCK" ] || die "the helper server did not come up"
mapfile -t PORTS <"$T/ports"
[ "${#PORTS[@]}" = "$NP" ] || die "the helper server listed ${#PORTS[@]} ports, not $NP"
P_ONE=${PORTS[$N_SVCS]}      # phase A's service
P_MON1=${PORTS[$((N_SVCS + 1))]} # phase B's service
say "helper server: $NP ports of 127.0.0.1, pid $SRV"

upkeep_service() { # ROOT NAME MARKER PORT GRACE
	mkdir -p "$1/var/www/$2"
	cat >"$1/var/www/$2/service.toml" <<EOF
command = ["/bin/sleep", "$3"]
[restart]
policy = "always"
backoff = "1ms"
max_backoff = "1s"
stable_after = "1s"
limit = 1000
window = "60s"
[stop]
signal = "TERM"
timeout = "2s"
[[check]]
type = "http"
url = "http://127.0.0.1:$4/ok"
interval = "1s"
timeout = "1s"
cycles = 1
grace = "$5"
then = "restart"
EOF
}

# all_running ROOT N SECS: until N services are running with their check passed
all_running() {
	local n=$(($3 * 2)) c
	while [ $n -gt 0 ]; do
		c=$(timeout 10 curl -s --unix-socket "$1/run/upkeep/upkeep.sock" http://x/v1/status 2>/dev/null |
			jq '[.[] | select(.state == "running" and (.checks | all(.last.ok == true)))] | length' 2>/dev/null)
		[ "${c:-0}" -ge "$2" ] && return 0
		sleep 0.5; n=$((n - 1))
	done
	say "only ${c:-0} of $2 running and healthy after $3 s"
	return 1
}

# trials KEY MODE N ARGS...: failure → restart trials; figures into R[KEY,*]
trials() {
	local key=$1 mode=$2 n=$3 line; shift 3
	say "$key: $n trials, the endpoint fails with '$mode'"
	line=$(timeout --foreground 600 "$HB" restart -ctl "$SRV_SOCK" -mode "$mode" -n "$n" -timeout 550s \
		-raw "$OUT/trials-$key.txt" "$@") || { say "$key: trials failed"; return; }
	echo "$key: $line" >>"$OUT/raw.txt"
	say "$key: $line"
	R[$key,line]=$line
	R[$key,p50]=$(printf '%s\n' "$line" | sed -n 's/.*new_pid: p50=\([0-9.]*\).*/\1/p')
	R[$key,max]=$(printf '%s\n' "$line" | sed -n 's/.*new_pid: p50=[0-9.]* max=\([0-9.]*\).*/\1/p')
	R[$key,min]=$(printf '%s\n' "$line" | sed -n 's/.*new_pid: p50=[0-9.]* max=[0-9.]* min=\([0-9.]*\).*/\1/p')
	R[$key,fail]=$(field failures "$line")
}

# ================================================================== A: failure → restart, upkeep
say "A: failure → restart, upkeep (load $(load))"
R[A,load0]=$(load)
U1="$T/upkeep1"; UPKEEP_ROOTS+=("$U1")
upkeep_service "$U1" svc "$M_ONE" "$P_ONE" 3s
"$UPKEEP" --root "$U1" daemon -q 2>>"$T/logs/upkeep1.err" &
UP1=$!; STARTED+=("upkeep:$UP1")
all_running "$U1" 1 30 || die "phase A: the service did not come up"
RESET="$UPKEEP --root $U1 restart --timeout 20s svc >/dev/null"
trials A500 500 "$N_TRIALS" -port "$P_ONE" -upkeep "$U1/run/upkeep/upkeep.sock" -name svc -before "$RESET"
trials Ahang hang "$N_TRIALS" -port "$P_ONE" -upkeep "$U1/run/upkeep/upkeep.sock" -name svc -before "$RESET"
# the same without resetting between trials: what repeated check failures cost
trials Aseries 500 6 -port "$P_ONE" -upkeep "$U1/run/upkeep/upkeep.sock" -name svc
kill -TERM "$UP1"; wait_gone "$UP1" 15
R[A,load1]=$(load)

# ================================================================== B: failure → restart, monit
monit_head() { # DIR: the global part of a monit control file
	cat <<EOF
set daemon 1
set logfile $1/monit.log
set pidfile $1/monit.pid
set idfile $1/monit.id
set statefile $1/monit.state
EOF
}
monit_check() { # DIR NAME MARKER PORT
	cat <<EOF
check process $2 with pidfile $1/$2.pid
  start program = "/bin/sh -c 'cd $T; /bin/sleep $3 >/dev/null 2>&1 & echo \$! > $1/$2.pid'" with timeout 5 seconds
  stop program = "/bin/sh -c 'kill \$(cat $1/$2.pid)'" with timeout 5 seconds
  if failed host 127.0.0.1 port $4 protocol http request "/ok" with timeout 1 seconds for 1 cycles then restart
EOF
}
if [ "$MONIT" = 1 ]; then
	say "B: failure → restart, monit (load $(load))"
	R[B,load0]=$(load)
	MD="$T/monit1"; mkdir -p "$MD"
	{ monit_head "$MD"; monit_check "$MD" svc "$M_MON1" "$P_MON1"; } >"$MD/monitrc"
	chmod 600 "$MD/monitrc"
	monit -I -c "$MD/monitrc" >>"$T/logs/monit1.out" 2>&1 &
	MP1=$!; STARTED+=("monit:$MP1")
	# monit starts the service at its first cycle; after a restart it tests the port again
	# only some seconds later, so each trial waits MONIT_SETTLE of health (see the docs)
	trials B500 500 "$N_TRIALS" -port "$P_MON1" -pidfile "$MD/svc.pid" -settle "$MONIT_SETTLE"
	trials Bhang hang "$N_TRIALS" -port "$P_MON1" -pidfile "$MD/svc.pid" -settle "$MONIT_SETTLE"
	kill -TERM "$MP1"; wait_gone "$MP1" 15
	cp "$MD/monit.log" "$OUT/monit1.log" 2>/dev/null
	"$MEASURE" reap -markers "$M_MON1" >/dev/null # monit leaves its service running
	R[B,load1]=$(load)
fi

# ================================================================== C: N_SVCS checked services
say "C: $N_SVCS services × 1 HTTP check at 1 s (load $(load))"
R[C,load0]=$(load)
U2="$T/upkeep2"; UPKEEP_ROOTS+=("$U2")
for i in $(seq 0 $((N_SVCS - 1))); do
	name=$(printf 'service-%03d' "$i")
	grace=0s
	[ "$i" = 0 ] && grace=3s # the one failed on purpose: its new run must not fail on a server not yet healed
	upkeep_service "$U2" "$name" "$M_LOAD" "${PORTS[$i]}" "$grace"
done
MPORT=$("$HB" freeport)
t_launch=$(now_ns)
"$UPKEEP" --root "$U2" daemon -q --metrics "127.0.0.1:$MPORT" 2>>"$T/logs/upkeep2.err" &
UP2=$!; STARTED+=("upkeep:$UP2")
all_running "$U2" "$N_SVCS" 120 || die "phase C: the services did not come up"
R[C,up_ms]=$((($(now_ns) - t_launch) / 1000000))
say "all $N_SVCS running and healthy after ${R[C,up_ms]} ms (polled every 0.5 s); warming up 10 s"
sleep 10

metrics() { # the daemon's own figures from its Prometheus endpoint
	timeout 10 curl -s "http://127.0.0.1:$MPORT/metrics" |
		awk '$1 == "go_goroutines" { g = $2 } $1 == "go_memstats_heap_inuse_bytes" { h = $2 }
		     $1 == "process_open_fds" { f = $2 }
		     END { printf "goroutines=%d heap_inuse_kb=%d fds=%d", g, h / 1024, f }'
}
SOAK="$OUT/soak.tsv"
printf 'min\tt_s\tload1\trss_kb\tcpu_ticks\tgoroutines\theap_inuse_kb\tfds\n' >"$SOAK"
soak_sample() { # MINUTE
	local m
	m=$(metrics)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$((($(now_ns) - t0) / 1000000))" "$(cut -d' ' -f1 /proc/loadavg)" \
		"$(rss_kb "$UP2")" "$(ticks "$UP2")" \
		"$(field goroutines "$m")" "$(field heap_inuse_kb "$m")" "$(field fds "$m")" >>"$SOAK"
}
t0=$(now_ns)
soak_sample 0
R[C,rss0]=$(rss_kb "$UP2")

say "C: CPU of the daemon (and of the helper server) over $CPU_SECS s"
line=$(timeout --foreground $((CPU_SECS + 30)) "$HB" usage -secs "$CPU_SECS" "$UP2" "$SRV")
t1=$(now_ns)
echo "C usage (daemon, then server): $line" >>"$OUT/raw.txt"
R[C,cpu]=$(field cpu_pct "$(head -1 <<<"$line")")
R[C,ticks]=$(field cpu_ticks "$(head -1 <<<"$line")")
R[C,srv_cpu]=$(field cpu_pct "$(tail -1 <<<"$line")")
say "C: daemon CPU ${R[C,cpu]} % of one core (${R[C,ticks]} ticks); helper server ${R[C,srv_cpu]} %"
R[C,load_cpu]=$(load)

late_figures() { # KEY FROM TO
	local line
	line=$(timeout --foreground 120 "$HB" lateness -sock "$U2/run/upkeep/upkeep.sock" -from "$2" -to "$3" -raw "$OUT/late-$1.txt")
	echo "$1 lateness (late_ns): $line" >>"$OUT/raw.txt"
	say "$1 lateness: $line"
	R[$1,late_n]=$(field n "$line"); R[$1,late_p50]=$(field p50 "$line"); R[$1,late_p99]=$(field p99 "$line")
	R[$1,late_p999]=$(field p999 "$line"); R[$1,late_max]=$(field max "$line"); R[$1,late_over]=$(field over50 "$line")
	R[$1,failed_runs]=$(field failed_runs "$line")
	R[$1,late_secs]=$(field late_secs "$line"); R[$1,fail_secs]=$(field fail_secs "$line"); R[$1,first]=$(field first "$line")
	line=$(timeout --foreground 120 "$HB" arrivals -ctl "$SRV_SOCK" -from "$2" -to "$3" -exclude "${PORTS[0]}")
	echo "$1 arrival jitter at the server: $line" >>"$OUT/raw.txt"
	say "$1 arrivals: $line"
	R[$1,arr_p50]=$(field p50 "$line"); R[$1,arr_p99]=$(field p99 "$line"); R[$1,arr_max]=$(field max "$line")
	R[$1,arr_period]=$(field mean_period_ms "$line"); R[$1,arr_breaks]=$(field breaks "$line")
}
late_figures Ccpu "$t0" "$t1"

# failure → restart under this load, on service-000
RESET2="$UPKEEP --root $U2 restart --timeout 20s service-000 >/dev/null"
trials C500 500 "$N_LOAD_TRIALS" -port "${PORTS[0]}" -upkeep "$U2/run/upkeep/upkeep.sock" -name service-000 -before "$RESET2"
trials Chang hang "$N_LOAD_TRIALS" -port "${PORTS[0]}" -upkeep "$U2/run/upkeep/upkeep.sock" -name service-000 -before "$RESET2"

say "C: soak until $SOAK_MIN min after the start, RSS every minute"
for m in $(seq 1 "$SOAK_MIN"); do
	target=$((t0 + m * 60 * 1000000000))
	while [ "$(now_ns)" -lt "$target" ]; do sleep 1; done
	soak_sample "$m"
	kill -0 "$UP2" 2>/dev/null || die "the daemon died during the soak"
	say "C: minute $m: $(tail -1 "$SOAK" | tr '\t' ' ')"
done
t2=$(now_ns)
R[C,rss1]=$(rss_kb "$UP2")
R[C,load1]=$(load)
late_figures Csoak "$t0" "$t2"
R[C,restarts]=$(timeout 10 curl -s --unix-socket "$U2/run/upkeep/upkeep.sock" http://x/v1/status |
	jq '[.[] | select(.name != "service-000") | .restarts] | add')
R[C,running]=$(timeout 10 curl -s --unix-socket "$U2/run/upkeep/upkeep.sock" http://x/v1/status |
	jq '[.[] | select(.state == "running")] | length')
say "C: at the end ${R[C,running]} running; restarts of the $((N_SVCS - 1)) untouched services: ${R[C,restarts]}"
kill -TERM "$UP2"; wait_gone "$UP2" 30
# the daemon's log: every failed check run, every stop that ran into its timeout
cp "$U2/var/log/upkeep.log" "$OUT/upkeep-500.log" 2>/dev/null
R[C,log_failed]=$(grep -c '"msg":"check failed"' "$OUT/upkeep-500.log" 2>/dev/null)
R[C,log_killed]=$(grep -c '"msg":"stop timeout; killing"' "$OUT/upkeep-500.log" 2>/dev/null)
R[C,log_maxlat]=$(grep '"msg":"check failed"' "$OUT/upkeep-500.log" 2>/dev/null | jq -r .latency | awk '
	{ v = $1; s = 0 # a Go duration: 549.2µs, 12ms, 1.0005s, 1m2.5s
	  if (v ~ /(µs|us)$/) { sub(/(µs|us)$/, "", v); s = v / 1e6 } else if (v ~ /ns$/) { sub(/ns$/, "", v); s = v / 1e9 }
	  else if (v ~ /ms$/) { sub(/ms$/, "", v); s = v / 1000 } else if (v ~ /m[0-9]/) { split(v, p, "m"); sub(/s$/, "", p[2]); s = p[1] * 60 + p[2] }
	  else { sub(/s$/, "", v); s = v }
	  if (s > m) m = s }
	END { printf "%.2f", m }')

# ================================================================== D: monit, N_SVCS checked services
if [ "$MONIT" = 1 ]; then
	say "D: monit, $N_SVCS services × 1 HTTP check, set daemon 1 (load $(load))"
	R[D,load0]=$(load)
	MD2="$T/monit2"; mkdir -p "$MD2"
	monit_head "$MD2" >"$MD2/monitrc"
	for i in $(seq 0 $((N_SVCS - 1))); do
		name=$(printf 'service-%03d' "$i")
		/bin/sleep "$M_MON500" >/dev/null 2>&1 & # running before monit starts: monit only watches
		echo $! >"$MD2/$name.pid"
		disown $! # the reap at the end kills them; no job notices
		monit_check "$MD2" "$name" "$M_MON500" "${PORTS[$i]}" >>"$MD2/monitrc"
	done
	chmod 600 "$MD2/monitrc"
	monit -I -c "$MD2/monitrc" >>"$T/logs/monit2.out" 2>&1 &
	MP2=$!; STARTED+=("monit:$MP2")
	sleep 15
	d0=$(now_ns)
	line=$(timeout --foreground $((CPU_SECS + 30)) "$HB" usage -secs "$CPU_SECS" "$MP2" "$SRV")
	d1=$(now_ns)
	echo "D monit usage (monit, then server): $line" >>"$OUT/raw.txt"
	R[D,cpu]=$(field cpu_pct "$(head -1 <<<"$line")")
	R[D,ticks]=$(field cpu_ticks "$(head -1 <<<"$line")")
	R[D,rss]=$(field rss_kb "$(head -1 <<<"$line")")
	R[D,srv_cpu]=$(field cpu_pct "$(tail -1 <<<"$line")")
	say "D: monit CPU ${R[D,cpu]} % of one core; helper server ${R[D,srv_cpu]} %"
	line=$(timeout --foreground 120 "$HB" arrivals -ctl "$SRV_SOCK" -from "$d0" -to "$d1")
	echo "D arrivals at the server (monit): $line" >>"$OUT/raw.txt"
	R[D,period]=$(field mean_period_ms "$line"); R[D,requests]=$(field requests "$line")
	R[D,failed]=$(grep -c "failed protocol test" "$MD2/monit.log" 2>/dev/null)
	cp "$MD2/monit.log" "$OUT/monit2.log" 2>/dev/null
	kill -TERM "$MP2"; wait_gone "$MP2" 15
	"$MEASURE" reap -markers "$M_MON500" >/dev/null
	R[D,load1]=$(load)
fi

# ================================================================== table
v() { local x=${R[$1]:-}; printf '%s' "${x:-n/a}"; }
verdict() { # VALUE LIMIT
	awk -v x="$1" -v l="$2" 'BEGIN { if (x == "n/a" || x == "") { print "?"; exit } print (x + 0 <= l + 0) ? "met" : "NOT met" }'
}
restart_max=2050 # interval + timeout + 50 ms
rss_growth=$(awk -v a="$(v C,rss0)" -v b="$(v C,rss1)" 'BEGIN { if (a > 0) printf "%+.1f", (b - a) / a * 100; else print "n/a" }')
{
	echo "| metric | upkeep | monit | target | upkeep |"
	echo "| --- | ---: | ---: | --- | --- |"
	echo "| $N_SVCS checks at 1 s: daemon CPU over ${CPU_SECS} s (% of one core) | $(v C,cpu) | $(v D,cpu) | ≤ 10 | $(verdict "$(v C,cpu)" 10) |"
	echo "| check lateness p50 / p99 / max over ${CPU_SECS} s (ms) | $(v Ccpu,late_p50) / $(v Ccpu,late_p99) / $(v Ccpu,late_max) | | p99 ≤ 50 | $(verdict "$(v Ccpu,late_p99)" 50) |"
	echo "| check lateness p50 / p99 / max over the ${SOAK_MIN}-min run (ms) | $(v Csoak,late_p50) / $(v Csoak,late_p99) / $(v Csoak,late_max) | | max ≤ 50 | $(verdict "$(v Csoak,late_max)" 50) |"
	echo "| arrival jitter at the server p50 / p99 / max over ${CPU_SECS} s (ms) | $(v Ccpu,arr_p50) / $(v Ccpu,arr_p99) / $(v Ccpu,arr_max) | | | |"
	echo "| mean period between a check's requests (ms) | $(v Ccpu,arr_period) | $(v D,period) | | |"
	echo "| failure (HTTP 500) → new pid, p50 / max of $N_TRIALS (ms) | $(v A500,p50) / $(v A500,max) | $(v B500,p50) / $(v B500,max) | ≤ $restart_max | $(verdict "$(v A500,max)" $restart_max) |"
	echo "| failure (hang) → new pid, p50 / max of $N_TRIALS (ms) | $(v Ahang,p50) / $(v Ahang,max) | $(v Bhang,p50) / $(v Bhang,max) | ≤ $restart_max | $(verdict "$(v Ahang,max)" $restart_max) |"
	echo "| same under the $N_SVCS-check load: 500 / hang, max of $N_LOAD_TRIALS (ms) | $(v C500,max) / $(v Chang,max) | | ≤ $restart_max | $(verdict "$(awk -v a="$(v C500,max)" -v b="$(v Chang,max)" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else print (a > b ? a : b) }')" $restart_max) |"
	echo "| daemon RSS at start → after ${SOAK_MIN} min (MB) | $(awk -v a="$(v C,rss0)" -v b="$(v C,rss1)" 'BEGIN { printf "%.1f → %.1f", a / 1024, b / 1024 }') (${rss_growth} %) | $(awk -v a="$(v D,rss)" 'BEGIN { printf "%.1f", a / 1024 }') | flat | $(awk -v a="$(v C,rss0)" -v b="$(v C,rss1)" 'BEGIN { print (a > 0 && b <= a * 1.10) ? "met" : "NOT met" }') |"
	echo
	echo "- $N_SVCS services running and healthy $(v C,up_ms) ms after the daemon was launched (polled every 0.5 s); daemon CPU $(v C,ticks) ticks of 10 ms over ${CPU_SECS} s; the helper server (load generator, same machine) used $(v C,srv_cpu) % meanwhile."
	echo "- lateness = start of a check run − its slot, from upkeep's /v1/history (late_ns): $(v Ccpu,late_n) runs in the CPU window, $(v Csoak,late_n) over the whole run (the history keeps each service's last 1024 runs: from $(v Csoak,first) UTC); runs over 50 ms late: $(v Ccpu,late_over) / $(v Csoak,late_over), in $(v Ccpu,late_secs) / $(v Csoak,late_secs) distinct seconds; p99.9 $(v Ccpu,late_p999) / $(v Csoak,late_p999) ms; failed runs: $(v Ccpu,failed_runs) / $(v Csoak,failed_runs) in $(v Ccpu,fail_secs) / $(v Csoak,fail_secs) distinct seconds (the latter includes the trials' failures)."
	echo "- arrival jitter = how late each request reached the server against a fixed-rate schedule fitted to each stretch of regular arrivals of its port (a constant offset is not seen); breaks (a gap off the 1 s interval by more than 0.5 s: a restart or a stall): $(v Ccpu,arr_breaks) over ${CPU_SECS} s, $(v Csoak,arr_breaks) over the whole run; whole-run p99 / max $(v Csoak,arr_p99) / $(v Csoak,arr_max) ms."
	echo "- the daemon's log over the whole run: $(v C,log_failed) failed check runs (the longest took $(v C,log_maxlat) s against a 1 s timeout), $(v C,log_killed) stops that ran into the 2 s stop timeout (the services are \`sleep\`s, which exit on TERM at once)."
	echo "- restarts of the $((N_SVCS - 1)) services not failed on purpose, over the whole run: $(v C,restarts); running at the end: $(v C,running) of $N_SVCS."
	echo "- failure → restart: upkeep $(v A500,line) (500); $(v Ahang,line) (hang). Without a reset between trials: $(v Aseries,line)."
	echo "- monit: $(v B500,line) (500); $(v Bhang,line) (hang); $N_SVCS checks: RSS $(v D,rss) kB, $(v D,requests) requests in ${CPU_SECS} s, $(v D,failed) failed tests logged."
	echo "- load average (1/5/15 min): A $(v A,load0) → $(v A,load1); B $(v B,load0) → $(v B,load1); C $(v C,load0) → after the CPU window $(v C,load_cpu) → end $(v C,load1); D $(v D,load0) → $(v D,load1)."
	echo
	echo "The daemon over the whole run (CPU: % of one core since the previous sample; the trials under load come between the samples of minute 0 and 1):"
	echo
	echo "| minute | s | load (1 min) | RSS (MB) | CPU (%) | goroutines | Go heap in use (MB) | open fds |"
	echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	awk -F'\t' 'NR > 1 { cpu = (NR > 2 && $2 > pt) ? sprintf("%.2f", ($5 - prev) / (($2 - pt) / 1000)) : "—"; prev = $5; pt = $2
		printf "| %s | %.0f | %s | %.1f | %s | %s | %.1f | %s |\n", $1, $2 / 1000, $3, $4 / 1024, cpu, $6, $7 / 1024, $8 }' "$SOAK"
} | tee "$OUT/results.md"
echo "load at end: $(load)" >>"$OUT/machine.txt"
say "done; raw figures in $OUT"
