package compat

import (
	"path"
	"strings"
	"time"

	"upkeep/internal/spec"
)

// delegates are start programs that only ask another init system to
// start its own job: the process is that system's, not monit's, so the
// definition has to come from the job.
func delegated(ws []string, ok bool) (job, system string) {
	if !ok || len(ws) < 2 {
		return "", ""
	}
	prog := path.Base(ws[0])
	switch {
	case prog == "start" && len(ws) == 2:
		return ws[1], "upstart"
	case prog == "initctl" && len(ws) == 3 && ws[1] == "start":
		return ws[2], "upstart"
	case prog == "systemctl" && len(ws) == 3 && ws[1] == "start":
		return strings.TrimSuffix(ws[2], ".service"), "systemd"
	}
	return "", ""
}

// finish turns what the stanza said into draft keys, now that the cycle
// length is known.
func (c *monitCheck) finish(cycle time.Duration) {
	d := c.d
	if d == nil {
		return
	}
	interval := time.Duration(c.every) * cycle
	if interval != spec.DefaultCheckInterval {
		for _, i := range c.checkEvery {
			d.Svc.Checks[i].Interval = spec.Duration(interval)
		}
	}
	if c.limit > 0 {
		d.Svc.Restart.Limit = c.limit
		d.Svc.Restart.Window = spec.Duration(time.Duration(c.window) * interval)
		d.Set("restart.limit", c.limitAt)
		d.Set("restart.window", c.limitAt)
	}
	restarts := c.kind == "process" // monit starts a process that does not exist
	for _, chk := range d.Svc.Checks {
		restarts = restarts || chk.Then == "restart"
	}
	switch {
	case c.passive:
		d.Svc.Restart.Policy = spec.Never
		d.Set("restart.policy", c.at)
	case restarts && !d.IsSet("restart.policy"):
		// A dead service fails its checks, and monit restarts it: the
		// pair of a job without respawn and this check restarts always.
		d.Svc.Restart.Policy = spec.Always
		d.Set("restart.policy", c.at)
	}
	if c.start != nil && strings.TrimSpace(c.start.cmd) == "" {
		d.Note(c.start.at, "an empty start program; dropped")
		c.start = nil
	}
	if c.stop != nil && strings.TrimSpace(c.stop.cmd) == "" {
		d.Note(c.stop.at, "an empty stop program; dropped")
		c.stop = nil
	}
	if c.start != nil {
		words, plain := plainWords(c.start.cmd)
		if job, system := delegated(words, plain); job != "" {
			dl := &delegation{job: job, system: system, at: c.start.at}
			if c.pidfile != "" {
				dl.drop = append(dl.drop, c.pidAt)
			}
			if c.stop != nil {
				dl.drop = append(dl.drop, c.stop.at)
			}
			d.delegate = dl
			return
		}
		argv := words
		if !plain || len(words) == 0 || words[0] == "" {
			argv = []string{"/bin/sh", "-c", c.start.cmd}
		}
		if c.pidfile != "" {
			d.Svc.StartCommand, d.Svc.PIDFile = argv, c.pidfile
			d.Set("start_command", c.start.at)
			d.Set("pidfile", c.pidAt)
		} else {
			d.Svc.Command = argv
			d.Set("command", c.start.at)
			d.Note(c.start.at, "imported as command: without a pid file upkeep runs it as the main process, which must stay in the foreground (if it forks, rename it start_command and add pidfile)")
		}
		if c.start.timeout > 0 {
			d.Drop(c.start.at, "with timeout: upkeep waits up to 10 s for the pid file, or ready_after")
		}
		c.credentials(c.start)
	} else if c.pidfile != "" {
		d.Svc.PIDFile = c.pidfile
		d.Set("pidfile", c.pidAt)
	}
	if c.stop != nil {
		d.Svc.StopCommand = argvOrShell(c.stop.cmd)
		d.Set("stop_command", c.stop.at)
		if c.stop.timeout > 0 {
			d.Svc.Stop.Timeout = spec.Duration(c.stop.timeout)
			d.Set("stop.timeout", c.stop.at)
		}
		if c.start == nil || c.stop.uid != c.start.uid || c.stop.gid != c.start.gid {
			if c.stop.uid != "" || c.stop.gid != "" {
				d.Note(c.stop.at, "as uid/gid: the stop command runs as the service's user")
			}
		}
	}
}

func (c *monitCheck) credentials(p *monitProgram) {
	if p.uid != "" {
		c.d.Svc.User = p.uid
		c.d.Set("user", p.at)
	}
	if p.gid != "" {
		c.d.Svc.Group = p.gid
		c.d.Set("group", p.at)
	}
}
