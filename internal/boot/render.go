package boot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"text/template"
	"time"
)

// Options are what a boot file says about this host.
type Options struct {
	Binary      string        // the upkeep binary's real path
	Root        string        // --root; "" or "/" for the host itself
	StopTimeout time.Duration // how long a stop of the whole host may take (StopBudget)
}

// File is a rendered boot file and where it goes beneath the root.
type File struct {
	Path string // relative to the root: etc/systemd/system/upkeep.service
	Mode uint32
	Data []byte
	// Enable is the symlink that enables it (relative to the root) and
	// its target, as systemctl enable, update-rc.d or rc-update make
	// them; several for sysvinit's runlevels.
	Enable []Link
}

// Link is one symlink beneath the root.
type Link struct{ Path, Target string }

// Render renders the boot file of init. Each carries a checksum line, so
// that provision can tell its own outdated file from one an operator
// edited (which it replaces only when forced).
func Render(init Init, o Options) (*File, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	stop := o.StopTimeout.Round(time.Second)
	if stop < time.Second {
		stop = time.Second
	}
	data := struct {
		Options
		Args    string // the global flags before the verb
		StopSec int
	}{o, "", int(stop / time.Second)}
	if o.Root != "/" {
		data.Args = " --root " + shellQuote(o.Root)
	}
	var f File
	var tmpl string
	switch init {
	case Systemd:
		f = File{Path: "etc/systemd/system/upkeep.service", Mode: 0o644, Enable: []Link{
			{"etc/systemd/system/multi-user.target.wants/upkeep.service", "/etc/systemd/system/upkeep.service"},
		}}
		// systemd does not use a shell: a path with a space would need
		// its own quoting, which shellQuote's single quotes also are.
		tmpl = unitTmpl
	case SysV:
		f = File{Path: "etc/init.d/upkeep", Mode: 0o755}
		for _, l := range []string{"2", "3", "4", "5"} {
			f.Enable = append(f.Enable, Link{"etc/rc" + l + ".d/S02upkeep", "../init.d/upkeep"})
		}
		for _, l := range []string{"0", "1", "6"} {
			f.Enable = append(f.Enable, Link{"etc/rc" + l + ".d/K01upkeep", "../init.d/upkeep"})
		}
		tmpl = sysvTmpl
	case OpenRC:
		f = File{Path: "etc/init.d/upkeep", Mode: 0o755, Enable: []Link{{"etc/runlevels/default/upkeep", "/etc/init.d/upkeep"}}}
		tmpl = openrcTmpl
	default:
		return nil, fmt.Errorf("no boot file for init %q", init)
	}
	var b bytes.Buffer
	if err := template.Must(template.New(string(init)).Funcs(template.FuncMap{"q": shellQuote, "comm": comm}).Parse(tmpl)).Execute(&b, data); err != nil {
		return nil, err
	}
	f.Data = Seal(b.Bytes())
	return &f, nil
}

const checksumTag = "# upkeep-checksum: sha256:"

// Seal puts the checksum of data in its checksum line (the line
// "# upkeep-checksum: sha256:" it holds), over the rest of the file.
func Seal(data []byte) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	sum := sha256.Sum256([]byte(strip(lines)))
	for i, l := range lines {
		if strings.HasPrefix(l, checksumTag) {
			lines[i] = checksumTag + hex.EncodeToString(sum[:]) + "\n"
		}
	}
	return []byte(strings.Join(lines, ""))
}

// Sealed reports whether data is a boot file as upkeep wrote it: its
// checksum line matches the rest, so nobody has edited it since.
func Sealed(data []byte) bool {
	lines := strings.SplitAfter(string(data), "\n")
	sum := sha256.Sum256([]byte(strip(lines)))
	for _, l := range lines {
		if strings.HasPrefix(l, checksumTag) {
			return strings.TrimSpace(strings.TrimPrefix(l, checksumTag)) == hex.EncodeToString(sum[:])
		}
	}
	return false
}

func strip(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		if !strings.HasPrefix(l, checksumTag) {
			b.WriteString(l)
		}
	}
	return b.String()
}

// comm is the name /proc/PID/comm gives a process of binary: its base
// name, cut to the kernel's 15 bytes.
func comm(binary string) string {
	b := binary[strings.LastIndexByte(binary, '/')+1:]
	if len(b) > 15 {
		b = b[:15]
	}
	return b
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:=@,%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// KillMode=process: systemd signals only the daemon, which then stops the
// services in dependency order with their own timeouts; the default
// (control-group) would signal every service at once. Delegate=yes hands
// the unit's cgroup subtree to upkeep, which makes one cgroup per service.
const unitTmpl = `# Written by upkeep provision --boot: edit service.toml files, not this
# (provision replaces this file only while this checksum matches).
# upkeep-checksum: sha256:
[Unit]
Description=upkeep: keeps the host's services up
After=network.target local-fs.target remote-fs.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={{.Binary}}{{.Args}} daemon
ExecReload={{.Binary}}{{.Args}} reload
KillMode=process
Delegate=yes
Restart=always
RestartSec=1s
TimeoutStopSec={{.StopSec}}s

[Install]
WantedBy=multi-user.target
`

// The pid is the one the daemon writes in its lock file; /proc's comm
// tells it from an unrelated process that got the same pid later.
const sysvTmpl = `#!/bin/sh
# Written by upkeep provision --boot (replaced only while this checksum matches).
# upkeep-checksum: sha256:
### BEGIN INIT INFO
# Provides:          upkeep
# Required-Start:    $local_fs $remote_fs $network $syslog
# Required-Stop:     $local_fs $remote_fs $network $syslog
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: upkeep keeps the host's services up
# Description:       Starts upkeep daemon, which starts the services under
#                    var/www and stops them in dependency order.
### END INIT INFO

DAEMON={{q .Binary}}
ROOT={{q .Root}}
LOCK="$ROOT/run/upkeep/upkeep.lock"
COMM={{q (comm .Binary)}}
STOP_TIMEOUT={{.StopSec}}

pid() {
	p=$(cat "$LOCK" 2>/dev/null) || return 1
	[ -n "$p" ] && [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$COMM" ] && echo "$p"
}

# alive: the process started here has not exited. Its lock file is not
# written yet in the first milliseconds, and a dead child stays a zombie
# of this shell, so neither the lock nor kill -0 can say it.
alive() {
	s=$(cat /proc/"$1"/stat 2>/dev/null) || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ]
}

case "$1" in
start)
	if pid >/dev/null; then echo "upkeep is already running"; exit 0; fi
	if command -v setsid >/dev/null 2>&1; then
		setsid "$DAEMON" --root "$ROOT" daemon --quiet </dev/null >/dev/null 2>&1 &
	else
		"$DAEMON" --root "$ROOT" daemon --quiet </dev/null >/dev/null 2>&1 &
	fi
	started=$!
	i=0
	while [ $i -lt 300 ]; do
		"$DAEMON" --root "$ROOT" status >/dev/null 2>&1
		case $? in 0 | 3) exit 0 ;; esac
		alive "$started" || { echo "upkeep daemon failed to start; see $ROOT/var/log/upkeep.log" >&2; exit 1; }
		sleep 0.1 2>/dev/null || sleep 1
		i=$((i + 1))
	done
	echo "upkeep daemon is not answering; see $ROOT/var/log/upkeep.log" >&2
	exit 1
	;;
stop)
	p=$(pid) || { echo "upkeep is not running"; exit 0; }
	kill -TERM "$p"
	i=0
	while [ $i -lt $((STOP_TIMEOUT * 10)) ]; do
		pid >/dev/null || exit 0
		sleep 0.1 2>/dev/null || sleep 1
		i=$((i + 1))
	done
	echo "upkeep did not stop within ${STOP_TIMEOUT}s; hurrying it" >&2
	kill -TERM "$p"
	exit 1
	;;
restart|force-reload)
	"$0" stop && "$0" start
	;;
reload)
	exec "$DAEMON" --root "$ROOT" reload
	;;
status)
	if pid >/dev/null; then echo "upkeep is running"; exit 0; fi
	echo "upkeep is not running"
	exit 3
	;;
*)
	echo "usage: $0 {start|stop|restart|reload|force-reload|status}" >&2
	exit 2
	;;
esac
`

// retry: TERM, then the whole host's stop budget, then a second TERM,
// which hurries the daemon (SIGKILL to what is left).
const openrcTmpl = `#!/sbin/openrc-run
# Written by upkeep provision --boot (replaced only while this checksum matches).
# upkeep-checksum: sha256:

description="upkeep: keeps the host's services up"
command={{q .Binary}}
command_args="--root {{q .Root}} daemon --quiet"
command_background=true
pidfile=/run/upkeep.openrc.pid
retry="TERM/{{.StopSec}}/TERM/5/KILL/5"
extra_started_commands="reload"

depend() {
	need localmount net
	after bootmisc
}

reload() {
	ebegin "Reloading upkeep"
	"$command" --root {{q .Root}} reload
	eend $?
}
`
