package compat

import (
	"bytes"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"upkeep/internal/spec"
)

// Nomad's own lower bounds (its job validation refuses less).
const (
	nomadMinReschedule = 5 * time.Second
	nomadMinCheck      = time.Second
)

// nomad writes <name>.nomad.json: a service job with one group and one
// raw_exec task (raw_exec runs host programs as upkeep does; exec would
// chroot them away from /var/www), in the API's JSON, which `nomad job
// run -json` reads.
func (x *exporter) nomad() ([]File, error) {
	s := x.s
	argv := x.argv()
	dir := x.hostPath(s.Directory)
	// raw_exec has no working directory setting: sh changes into it and
	// execs the program, so the task is still the program itself.
	args := append([]string{"-c", `cd "$1" && shift && exec "$@"`, s.Name, dir}, argv...)
	for _, a := range argv {
		if strings.Contains(a, "${") {
			x.note("command", "%q: Nomad interpolates ${…} in args", a)
		}
	}
	task := &nomadTask{
		Name:        s.Name,
		Driver:      "raw_exec",
		User:        s.User,
		Config:      nomadRawExecConfig{Command: "/bin/sh", Args: args},
		Env:         x.env(),
		KillSignal:  "SIG" + strings.TrimPrefix(strings.ToUpper(s.Stop.Signal), "SIG"),
		KillTimeout: s.Stop.Timeout.D(),
		LogConfig:   x.nomadLogs(),
	}
	x.note("driver", "raw_exec: enable it on the clients (plugin \"raw_exec\" { config { enabled = true } })")
	if s.Capabilities != nil || s.NoNewPrivileges != nil || len(s.Groups) > 0 || s.Limits != (spec.Limits{}) || s.Umask != "" && s.Umask != "0022" {
		x.note("privileges", "raw_exec runs the task with its user only: capabilities, no_new_privileges, umask, groups and limits are not exported (the exec driver's cap_add/cap_drop are the nearest thing)")
	}
	if s.Group != "" {
		x.note("group", "a Nomad task runs with its user's groups; %q is not set", s.Group)
	}
	if s.EnvFile != "" {
		data, err := os.ReadFile(s.EnvFile)
		if err != nil {
			x.note("env_file", "cannot be read (%v); not exported", err)
		} else {
			task.Templates = append(task.Templates, x.nomadTemplate(data, "local/"+s.Name+".env", true))
			x.note("env_file", "embedded as a template as it is now; upkeep reads the file at every start")
		}
	}
	for _, f := range x.configFiles() {
		task.Templates = append(task.Templates, x.nomadTemplate(f.data, f.target, false))
	}
	if len(task.Templates) > 0 && len(x.configFiles()) > 0 {
		x.note("config/", "templates outside the task directory need the client's template { disable_file_sandbox = true }")
	}
	group := &nomadTaskGroup{
		Name:          s.Name,
		Count:         1,
		RestartPolicy: x.nomadRestart(),
		Tasks:         []*nomadTask{task},
	}
	if !s.Autostart {
		group.Count = 0
		x.note("autostart", "false: count = 0; scale the group up to start it")
	}
	group.ReschedulePolicy = x.nomadReschedule()
	ports := x.nomadServices(task)
	if len(ports) > 0 {
		net := &nomadNetwork{Mode: "host"}
		for _, p := range ports {
			net.ReservedPorts = append(net.ReservedPorts, nomadPort{Label: portName(p), Value: p})
		}
		group.Networks = []*nomadNetwork{net}
	}
	update := &nomadUpdate{MinHealthyTime: s.ReadyAfter.D(), HealthCheck: "task_states"}
	if len(task.Services) > 0 && len(task.Services[0].Checks) > 0 {
		update.HealthCheck = "checks"
	}
	group.Update = update
	job := &nomadJob{
		ID:          s.Name,
		Name:        s.Name,
		Type:        "service",
		Datacenters: []string{"*"},
		TaskGroups:  []*nomadTaskGroup{group},
		Meta:        map[string]string{"upkeep_exported_from": x.hostPath(s.File)},
	}
	if s.Version != "" {
		job.Meta["version"] = s.Version
	}
	x.nomadNotes()
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(struct{ Job *nomadJob }{job}); err != nil {
		return nil, err
	}
	return []File{{Name: s.Name + ".nomad.json", Data: out.Bytes()}}, nil
}

// nomadTemplate writes a file verbatim: delimiters no file holds keep
// consul-template from reading {{ }} in it.
func (x *exporter) nomadTemplate(data []byte, dest string, env bool) *nomadTemplate {
	return &nomadTemplate{
		EmbeddedTmpl: string(data),
		DestPath:     dest,
		ChangeMode:   "restart",
		LeftDelim:    "[[upkeep-verbatim",
		RightDelim:   "upkeep-verbatim]]",
		Envvars:      env,
	}
}

// nomadRestart: upkeep allows `limit` starts in `window`, then the service
// is fatal; Nomad allows `attempts` restarts (starts after the first) in
// `interval`, then with mode "fail" the allocation fails.
func (x *exporter) nomadRestart() *nomadRestartPolicy {
	s := x.s
	r := &nomadRestartPolicy{
		Attempts: s.Restart.Limit - 1,
		Interval: s.Restart.Window.D(),
		Delay:    s.Restart.Backoff.D(),
		Mode:     "fail",
	}
	switch s.Restart.Policy {
	case spec.Never:
		r.Attempts = 0
	case spec.OnFailure:
		x.note("restart.policy", "on-failure: Nomad restarts a service task after any exit")
	}
	if s.Restart.MaxBackoff > s.Restart.Backoff {
		x.note("restart.max_backoff", "Nomad waits the same delay (%s) before each restart; the doubling up to %s is kept only for rescheduling", FormatDuration(s.Restart.Backoff.D()), FormatDuration(s.Restart.MaxBackoff.D()))
	}
	// Nomad refuses attempts × delay > interval.
	if time.Duration(r.Attempts)*r.Delay > r.Interval {
		r.Interval = time.Duration(r.Attempts) * r.Delay
		x.note("restart.window", "widened to %s: Nomad needs room for %d delays of %s", FormatDuration(r.Interval), r.Attempts, FormatDuration(r.Delay))
	}
	return r
}

// nomadReschedule: when the restarts are used up, an upkeep service stays
// fatal on its host; in a cluster the allocation is placed again, with
// upkeep's back-off between the attempts. A service that is never
// restarted is not rescheduled either.
func (x *exporter) nomadReschedule() *nomadReschedulePolicy {
	s := x.s
	if s.Restart.Policy == spec.Never {
		return &nomadReschedulePolicy{Attempts: new(0), Unlimited: false}
	}
	delay := max(s.Restart.Backoff.D(), nomadMinReschedule)
	return &nomadReschedulePolicy{
		Delay:         new(delay),
		DelayFunction: "exponential",
		MaxDelay:      new(max(s.Restart.MaxBackoff.D(), delay)),
		Unlimited:     true,
	}
}

// nomadLogs maps [log] onto Nomad's size-based rotation of the task's logs.
func (x *exporter) nomadLogs() *nomadLogConfig {
	l := x.s.Log
	files := l.Rotate + 1 // the current file and the rotated ones
	if l.Rotate < 0 {
		files = 10
		x.note("log.rotate", "-1 (keep all): Nomad keeps a fixed number; 10 here")
	}
	mb := 10
	if l.Size > 0 {
		mb = int(max(1, (int64(l.Size)+(1<<20)-1)>>20))
	}
	if l.Timed() {
		x.note("log.when", "%s: Nomad rotates by size only (max_file_size = %d MB)", l.When, mb)
	}
	if l.Compress || l.MaxAge > 0 || l.DateExt {
		x.note("log", "compress, maxage and dateext: Nomad keeps plain numbered files")
	}
	x.note("log", "the output goes to the allocation's alloc/logs/%s.stdout.N, not /var/log/%s.log", x.s.Name, x.s.Name)
	for _, lf := range x.s.LogFiles {
		x.note("log.file", "%s: Nomad rotates only a task's output; have the program log to stdout, or rotate the file in the task", lf.Path)
	}
	return &nomadLogConfig{MaxFiles: max(files, 1), MaxFileSizeMB: mb}
}

// nomadServices registers the service with Nomad's own service discovery
// and turns http and tcp checks into its checks; the ports they name.
func (x *exporter) nomadServices(task *nomadTask) []int {
	var ports []int
	var checks []nomadCheck
	for i := range x.s.Checks {
		c := &x.s.Checks[i]
		sc := nomadCheck{
			Name:     c.Name,
			Interval: max(c.Interval.D(), nomadMinCheck),
			Timeout:  max(c.Timeout.D(), nomadMinCheck),
		}
		port := 0
		switch c.Type {
		case "http":
			u, err := url.Parse(c.URL)
			if err != nil || !local(u.Hostname()) {
				x.checkNote(c, "a Nomad check probes the task's own address")
				continue
			}
			p := u.Port()
			if p == "" {
				p = map[string]string{"http": "80", "https": "443"}[u.Scheme]
			}
			port, _ = strconv.Atoi(p)
			sc.Type, sc.Path, sc.Protocol = "http", u.RequestURI(), u.Scheme
			if c.Method != "" && c.Method != "GET" {
				sc.Method = c.Method
			}
			if c.Host != "" {
				sc.Header = map[string][]string{"Host": {c.Host}}
			}
			if c.Status != "" && c.Status != "200-399" {
				x.note("check "+c.Name, "status %s: a Nomad check passes on 2xx", c.Status)
			}
			if c.Body != "" {
				x.note("check "+c.Name, "body: a Nomad check does not read the response")
			}
			if u.Scheme == "https" {
				sc.TLSSkipVerify = true // upkeep does not verify either
			}
		case "tcp":
			host, p, _ := net.SplitHostPort(c.Address)
			if !local(host) {
				x.checkNote(c, "a Nomad check probes the task's own address")
				continue
			}
			port, _ = strconv.Atoi(p)
			sc.Type = "tcp"
			if c.Send != "" || c.Expect != "" {
				x.note("check "+c.Name, "send/expect: a Nomad tcp check only connects")
			}
		case "exec", "unix":
			x.checkNote(c, "Nomad's service discovery runs http and tcp checks only (script checks need Consul)")
			continue
		case "memory":
			if c.Then == "restart" {
				task.Resources = &nomadResources{MemoryMB: int(max(1, int64(c.Limit)>>20))}
				x.note("check "+c.Name, "exported as the task's memory (raw_exec does not enforce it)")
				continue
			}
			x.checkNote(c, "Nomad has no memory alert")
			continue
		default:
			x.checkNote(c, "Nomad has no "+c.Type+" check")
			continue
		}
		sc.PortLabel = portName(port)
		if !contains(ports, port) {
			ports = append(ports, port)
		}
		switch c.Then {
		case "restart":
			sc.CheckRestart = &nomadCheckRestart{Limit: max(c.Cycles, 1), Grace: c.Grace.D()}
			if c.Within > c.Cycles {
				x.note("check "+c.Name, "within = %d: check_restart counts consecutive failures", c.Within)
			}
		case "alert":
		default:
			x.note("check "+c.Name, "then = %q: a Nomad check can only restart the task or report", c.Then)
		}
		if c.Recover > 1 {
			sc.SuccessBeforePassing = c.Recover
			x.note("check "+c.Name, "success_before_passing is a Consul setting; Nomad's service discovery ignores it")
		}
		checks = append(checks, sc)
	}
	if len(ports) > 0 {
		task.Services = []*nomadService{{Name: k8sName(x.s.Name), Provider: "nomad", PortLabel: portName(ports[0]), Checks: checks}}
	}
	return ports
}

// nomadNotes lists what a Nomad job has no place for.
func (x *exporter) nomadNotes() {
	s := x.s
	if len(s.DependsOn) > 0 {
		x.note("depends_on", "Nomad starts jobs in no order; a prestart task that waits for %s is the nearest thing", strings.Join(s.DependsOn, ", "))
	}
	if s.PIDFile != "" {
		x.note("pidfile", "raw_exec follows the process it starts; run the program without forking")
	}
	if len(s.StopCommand) > 0 {
		x.note("stop_command", "Nomad stops a task with kill_signal only")
	}
	if s.Restart.StableAfter != spec.Defaults().Restart.StableAfter {
		x.note("restart.stable_after", "Nomad has no such reset")
	}
}
