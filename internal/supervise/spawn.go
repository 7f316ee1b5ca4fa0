package supervise

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"upkeep/internal/api"
	"upkeep/internal/health"
	"upkeep/internal/logsink"
	"upkeep/internal/paths"
	"upkeep/internal/proc"
	"upkeep/internal/spec"
)

// argv is the command line of the main process: the command, or the script
// run by /bin/sh -e the way upstart runs `script … end script`.
func (s *service) argv() []string {
	if s.spec.Script != "" {
		return []string{"/bin/sh", "-e", "-c", s.spec.Script, s.name}
	}
	return s.spec.Command
}

// spawn starts one of the service's processes: in its own session and
// process group, in the service's cgroup, as its user, with stdin from
// /dev/null and stdout/stderr piped to its log files.
func (s *service) spawn(argv []string) (*proc.Process, error) {
	env, err := s.environ()
	if err != nil {
		return nil, err
	}
	l := s.launching // nil for stop commands
	if l != nil {
		env = append(env, l.env...)
	}
	if err := s.openLogs(); err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cg := s.cg
	if cg != nil {
		if err := cg.Fresh(); err != nil {
			s.d.log.Warn("cgroup", "service", s.name, "err", err.Error())
			cg = nil
		}
	}
	p, err := s.d.reaper.Start(proc.Cmd{
		Argv:   argv,
		Env:    env,
		Dir:    s.spec.Directory,
		Stdout: outW,
		Stderr: errW,
		As:     identity(s.spec),
		Cgroup: cg,
		Files:  l.extra(),
	})
	l.done()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	wg := s.drains
	wg.Add(2)
	if l != nil && l.match != nil {
		go s.watchLog(s.stdout, outR, wg, l)
		go s.watchLog(s.stderr, errR, wg, l)
	} else {
		go drain(s.stdout, outR, wg)
		go drain(s.stderr, errR, wg)
	}
	return p, nil
}

func drain(sink *logsink.Sink, r *os.File, wg *sync.WaitGroup) {
	defer wg.Done()
	defer r.Close()
	sink.Drain(r)
}

// openLogs opens the service's two log sinks, or, when a reload changed
// its [log] settings, replaces them: the old ones are closed once what the
// previous run left in its pipes has been written.
func (s *service) openLogs() error {
	if s.stdout != nil && sameLog(s.logCfg, s.spec.Log) {
		s.openFiles() // when [[log.file]] alone changed
		return nil
	}
	if s.stdout != nil {
		s.closeLogs()
	}
	out, err := logsink.OpenWith(paths.Log(s.d.root, s.name), s.spec.Log)
	if err != nil {
		return err
	}
	errs, err := logsink.OpenWith(paths.ErrorLog(s.d.root, s.name), s.spec.Log)
	if err != nil {
		out.Close()
		return err
	}
	for _, sink := range []*logsink.Sink{out, errs} {
		sink.Notify(func(e logsink.Event) { s.d.logEvent(s.name, e) })
	}
	s.stdout, s.stderr, s.logCfg, s.drains = out, errs, s.spec.Log, &sync.WaitGroup{}
	s.mu.Lock()
	s.sinks = []*logsink.Sink{out, errs}
	s.mu.Unlock()
	s.openFiles()
	return nil
}

func sameLog(a, b spec.Log) bool { return reflect.DeepEqual(a, b) }

// logEvent reports what a log sink noticed: rotations at info; a
// condition that makes it drop output (disk full, unwritable directory),
// and its end with what it cost, as events that `upkeep events` shows.
func (d *Daemon) logEvent(service string, e logsink.Event) {
	file := d.rel(e.Path)
	switch e.Kind {
	case "rotated":
		d.log.Info("log rotated", "service", service, "file", e.Path, "to", e.To)
		return
	case "error":
		d.log.Warn("log output dropped", "service", service, "file", e.Path, "err", fmt.Sprint(e.Err), "dropped", e.Dropped)
		d.event(api.Event{Service: service, Kind: "log", Message: fmt.Sprintf("%s: %v; dropping output until it can be written (%d bytes dropped before)", file, e.Err, e.Dropped)})
	case "archive-error":
		d.log.Warn("log archive-error", "service", service, "file", e.Path, "err", fmt.Sprint(e.Err))
		d.event(api.Event{Service: service, Kind: "log", Message: fmt.Sprintf("%s: %v", file, e.Err)})
	case "recovered":
		why := "it could not be written (" + fmt.Sprint(e.Err) + ")"
		if logsink.Full(e.Err) {
			why = filepath.Dir(file) + " was full"
		}
		d.log.Info("log writable again", "service", service, "file", e.Path, "lost", e.Lost, "dropped", e.Dropped)
		d.event(api.Event{Service: service, Kind: "log", OK: true, Message: fmt.Sprintf("%s: dropped %d bytes while %s; writing again", file, e.Lost, why)})
	}
}

// rel is p relative to the root, as the operator knows it (var/log/x.log).
func (d *Daemon) rel(p string) string {
	if r, err := filepath.Rel(d.root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// environ builds a clean environment, as systemd does rather than passing
// on the daemon's: PATH and locale, HOME set to the service's directory the
// way the guide's upstart job exports it, USER for a service with a user,
// then env_file, then inline env (the later wins).
func (s *service) environ() ([]string, error) { return environOf(s.name, s.spec) }

// environOf is environ for any goroutine, given a definition it holds.
func environOf(name string, sp *spec.Service) ([]string, error) {
	env := map[string]string{
		"HOME":           sp.Dir,
		"UPKEEP_SERVICE": name,
	}
	for _, kv := range proc.BaseEnv() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if sp.User != "" {
		env["USER"], env["LOGNAME"] = sp.User, sp.User
	}
	if sp.EnvFile != "" {
		fileEnv, err := spec.ReadEnvFile(sp.EnvFile)
		if err != nil {
			return nil, fmt.Errorf("env_file: %w", err)
		}
		for k, v := range fileEnv {
			env[k] = v
		}
	}
	for k, v := range sp.Env {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

// identity is what a service's processes run as and may do: its user,
// groups and the settings of service.toml that proc applies (the spec's
// values as they are; proc resolves the names when it starts a process and
// decides what root or not root changes). Its exec checks and hooks get the
// same (checkExec).
func identity(sp *spec.Service) proc.Identity {
	p := &proc.Privileges{
		Capabilities:    sp.CapabilityNumbers(),
		NoNewPrivileges: sp.NoNewPrivileges,
	}
	um := sp.UmaskValue()
	p.Umask = &um
	for _, l := range []struct {
		res int
		l   *spec.Limit
	}{{unix.RLIMIT_NOFILE, sp.Limits.Nofile}, {unix.RLIMIT_NPROC, sp.Limits.Nproc}, {unix.RLIMIT_CORE, sp.Limits.Core}} {
		if l.l != nil {
			p.Limits = append(p.Limits, proc.Limit{Resource: l.res, Soft: l.l.Soft, Hard: l.l.Hard})
		}
	}
	return proc.Identity{User: sp.User, Group: sp.Group, Groups: sp.Groups, Privs: p}
}

// checkExec is how the service's exec checks and hooks run: through the
// daemon's reaper, as the service's identity, in its directory (least
// privilege, as systemd runs ExecStartPost=: a service.toml cannot get root
// through a check). It reads s.spec: call it on the service's loop.
func (s *service) checkExec() health.Exec {
	return health.Exec{Reaper: s.d.reaper, As: identity(s.spec), Dir: s.spec.Directory}
}

func pgidOf(pid int) int {
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		return 0
	}
	return pgid
}
