package compat

import (
	"fmt"
	"math"
	"strings"
	"time"

	"upkeep/internal/spec"
)

// systemd writes <name>.service, and logrotate.d/<name> for the log files
// the unit appends to (systemd does not rotate them).
func (x *exporter) systemd() ([]File, error) {
	s := x.s
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	def := spec.Defaults()

	line("# Exported by `upkeep export systemd` from %s", x.hostPath(s.File))
	line("[Unit]")
	desc := s.Name
	if s.Version != "" {
		desc += " " + s.Version
	}
	line("Description=%s", systemdEscape(desc))
	after := []string{"network.target"}
	var requires []string
	for _, d := range s.DependsOn {
		after = append(after, d+".service")
		requires = append(requires, d+".service")
	}
	line("After=%s", strings.Join(after, " "))
	if len(requires) > 0 {
		line("Requires=%s", strings.Join(requires, " "))
	}
	// upkeep's limit counts starts within the window, as systemd's does.
	line("StartLimitIntervalSec=%s", systemdDuration(s.Restart.Window.D()))
	line("StartLimitBurst=%d", s.Restart.Limit)

	line("")
	line("[Service]")
	ready := s.Readiness()
	switch {
	case s.PIDFile != "":
		line("Type=forking")
		line("PIDFile=%s", x.hostPath(s.PIDFile))
	case ready.Kind == spec.ReadyNotify:
		// NotifyAccess=all: upkeep hears every process of the service
		// (systemd-notify from a script sends from its own pid).
		line("Type=notify")
		line("NotifyAccess=all")
	default:
		line("Type=simple")
	}
	if ready.Kind == spec.ReadyNotify && s.Watchdog != 0 {
		line("WatchdogSec=%s", systemdDuration(s.Watchdog.D()))
	}
	if ready.Announced() && s.ReadyTimeout != def.ReadyTimeout {
		line("TimeoutStartSec=%s", systemdDuration(s.ReadyTimeout.D()))
	}
	switch ready.Kind {
	case spec.ReadyFD:
		x.note("ready", "%q: systemd has no notification-fd; exported as Type=simple (s6-fdholder or a wrapper that calls systemd-notify can bridge it)", s.Ready)
	case spec.ReadyLog:
		x.note("ready", "%q: systemd cannot wait for a log line; exported as Type=simple", s.Ready)
	}
	line("ExecStart=%s", systemdCommand(x.argv()))
	if len(s.StopCommand) > 0 {
		line("ExecStop=%s", systemdCommand(s.StopCommand))
	}
	line("WorkingDirectory=%s", systemdEscape(x.hostPath(s.Directory)))
	if s.User != "" {
		line("User=%s", s.User)
	}
	if s.Group != "" {
		line("Group=%s", s.Group)
	}
	systemdPrivileges(s, line)
	env := x.env()
	for _, k := range sortedKeys(env) {
		line("Environment=%s", systemdQuote(k+"="+env[k]))
	}
	if s.EnvFile != "" {
		line("EnvironmentFile=%s", x.hostPath(s.EnvFile))
	}
	switch s.Restart.Policy {
	case spec.Always:
		line("Restart=always")
	case spec.OnFailure:
		line("Restart=on-failure")
	default:
		line("Restart=no")
	}
	line("RestartSec=%s", systemdDuration(s.Restart.Backoff.D()))
	if s.Restart.Policy != spec.Never && s.Restart.MaxBackoff > s.Restart.Backoff && s.Restart.Backoff > 0 {
		// upkeep doubles the delay up to max_backoff; systemd (v254 and
		// later) grows it over RestartSteps steps, which for these
		// numbers is the same doubling. Older versions warn and ignore them.
		steps := int(math.Ceil(math.Log2(float64(s.Restart.MaxBackoff) / float64(s.Restart.Backoff))))
		line("RestartSteps=%d", steps)
		line("RestartMaxDelaySec=%s", systemdDuration(s.Restart.MaxBackoff.D()))
	}
	line("KillSignal=SIG%s", strings.TrimPrefix(strings.ToUpper(s.Stop.Signal), "SIG"))
	line("TimeoutStopSec=%s", systemdDuration(s.Stop.Timeout.D()))
	line("KillMode=control-group")
	for i := range s.Checks {
		c := &s.Checks[i]
		if c.Type == "memory" && c.Then == "restart" && !strings.Contains(b.String(), "MemoryMax=") {
			// The kernel kills the group above it; Restart= restarts it.
			line("MemoryMax=%d", int64(c.Limit))
			x.note("check "+c.Name, "exported as MemoryMax=: the service is killed at once above it, not after %d check(s)", max(c.Cycles, 1))
			continue
		}
		x.checkNote(c, "systemd has no health checks (a Type=notify service with WatchdogSec= is the nearest thing)")
	}
	out, errLog := x.logPaths()
	line("StandardOutput=append:%s", out)
	line("StandardError=append:%s", errLog)
	if s.Autostart {
		line("")
		line("[Install]")
		line("WantedBy=multi-user.target")
	} else {
		x.note("autostart", "false: the unit has no [Install] section, so `systemctl enable` does nothing")
	}

	if s.ReadyAfter != def.ReadyAfter && !s.HasChecks() {
		x.note("ready_after", "systemd counts a Type=simple service as started at once; not exported")
	}
	if s.Restart.StableAfter != def.Restart.StableAfter {
		x.note("restart.stable_after", "systemd resets the restart delay only with `systemctl reset-failed`; not exported")
	}
	if s.Script != "" && s.PIDFile != "" {
		x.note("script", "with pidfile: upkeep does not run this combination; the unit runs the script as ExecStart")
	}

	files := []File{{Name: s.Name + ".service", Data: []byte(b.String())}}
	// systemd holds the output open for append; logrotate, not upkeep,
	// rotates the files the service writes itself, and systemctl sends
	// the signal.
	rot, skipped, err := LogrotateD{
		HostPath: x.hostPath,
		Signal: func(lf spec.LogFile) string {
			return "systemctl kill --kill-who=main --signal=" + lf.Signal + " " + s.Name + ".service"
		},
		HeldOpen: true,
	}.File(s)
	if err != nil {
		x.note("log", "%v; no logrotate.d file", err)
		return files, nil
	}
	for _, err := range skipped {
		x.note("log.file", "%v; not in the logrotate.d file", err)
	}
	files = append(files, File{Name: "logrotate.d/" + s.Name, Data: []byte("# Exported by `upkeep export systemd` from " + x.hostPath(s.File) + "\n" + rot)})
	return files, nil
}

// systemdDuration writes a time span systemd reads back exactly.
func systemdDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	if d%time.Millisecond == 0 {
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
	return fmt.Sprintf("%dus", d/time.Microsecond)
}

// systemdCommand writes argv for ExecStart=: each word as systemd splits
// it, with $ and % (variables and specifiers) doubled so that nothing is
// expanded, as upkeep expands nothing either.
func systemdCommand(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = systemdWord(a)
		if a == ";" {
			out[i] = `\;` // a lone ; separates commands
		}
	}
	return strings.Join(out, " ")
}

func systemdWord(a string) string {
	a = strings.ReplaceAll(a, "$", "$$")
	if a != "" && !strings.ContainsAny(a, " \t\n\"'\\") {
		return systemdEscape(a)
	}
	return systemdQuote(a)
}

// systemdEscape doubles %, which starts a specifier in every setting.
func systemdEscape(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// systemdQuote writes a double-quoted word with C escapes, % doubled ($
// is not expanded in Environment= and is doubled for ExecStart= by the
// caller).
func systemdQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '%':
			b.WriteString("%%")
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// systemdPrivileges writes the privilege keys as the unit directives that
// mean the same, with upkeep's defaults made explicit: systemd's own
// defaults differ (a unit keeps root's bounding set and may gain
// privileges unless told otherwise), and an export must not loosen what
// the service ran with.
func systemdPrivileges(s *spec.Service, line func(string, ...any)) {
	root := s.User == "" || s.User == "root" || s.User == "0"
	switch {
	case s.Capabilities != nil:
		line("CapabilityBoundingSet=%s", strings.Join(s.Capabilities, " "))
		if !root && len(s.Capabilities) > 0 {
			line("AmbientCapabilities=%s", strings.Join(s.Capabilities, " "))
		}
	case !root:
		line("CapabilityBoundingSet=")
	}
	nnp := !root
	if s.NoNewPrivileges != nil {
		nnp = *s.NoNewPrivileges
	}
	if nnp {
		line("NoNewPrivileges=yes")
	}
	if s.Umask != "" {
		line("UMask=%s", s.Umask)
	}
	if len(s.Groups) > 0 {
		line("SupplementaryGroups=%s", strings.Join(s.Groups, " "))
	}
	for _, l := range []struct {
		key string
		v   *spec.Limit
	}{{"LimitNOFILE", s.Limits.Nofile}, {"LimitNPROC", s.Limits.Nproc}, {"LimitCORE", s.Limits.Core}} {
		if l.v != nil {
			text, _ := l.v.MarshalText()
			line("%s=%s", l.key, text)
		}
	}
}
