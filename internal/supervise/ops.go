package supervise

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/crash"
	"upkeep/internal/proc"
	"upkeep/internal/spec"
)

// Start starts the named services, and the services they depend on first.
// With wait it returns once each is running, or an error if one ends in
// fatal, exited or stopped, or ctx ends first.
func (d *Daemon) Start(ctx context.Context, names []string, wait bool) error {
	svcs, err := d.lookup(names)
	if err != nil {
		return err
	}
	order := d.withDependencies(names)
	d.startAll(order)
	if !wait {
		return nil
	}
	for _, sv := range svcs {
		if err := d.waitUp(ctx, sv); err != nil {
			return err
		}
	}
	return nil
}

// startAll sends a start to each service, all at once: each service spawns
// in its own goroutine, so a hundred start in parallel rather than one after
// the other. Dependencies hold a dependent in starting until they run, so the
// order of sending does not matter.
func (d *Daemon) startAll(names []string) {
	var wg sync.WaitGroup
	for _, n := range names {
		if sv, err := d.get(n); err == nil {
			wg.Go(func() { _ = sv.send(request{kind: reqStart}) })
		}
	}
	wg.Wait()
}

// withDependencies returns names and, transitively, what they depend on.
func (d *Daemon) withDependencies(names []string) []string {
	seen := map[string]bool{}
	var out []string
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		sv, err := d.get(n)
		if err != nil {
			return
		}
		for _, dep := range sv.specSnapshot().DependsOn {
			visit(dep)
		}
		out = append(out, n)
	}
	for _, n := range names {
		visit(n)
	}
	return out
}

// Stop stops the named services, after stopping what depends on them.
func (d *Daemon) Stop(ctx context.Context, names []string, wait bool) error {
	if _, err := d.lookup(names); err != nil {
		return err
	}
	if !wait {
		// The same order as a waited stop, dependents first, but run
		// by the daemon: the caller is told only that it is under way.
		d.background.Go(func() {
			if err := d.stopOrdered(d.life, names); err != nil {
				d.log.Warn("stop", "services", names, "err", err.Error())
			}
		})
		return nil
	}
	return d.stopOrdered(ctx, names)
}

// withDependents returns names and, transitively, what depends on them.
func (d *Daemon) withDependents(names []string) []string {
	seen := map[string]bool{}
	var out []string
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		out = append(out, n)
		for _, dep := range d.dependents(n) {
			visit(dep)
		}
	}
	for _, n := range names {
		visit(n)
	}
	return out
}

// stopOrdered stops names and their dependents in reverse dependency order:
// a service is stopped once nothing still up depends on it. Services with
// no order between them stop concurrently.
func (d *Daemon) stopOrdered(ctx context.Context, names []string) error {
	pending := map[string]bool{}
	for _, n := range d.withDependents(names) {
		pending[n] = true
	}
	sent := map[string]bool{}
	for len(pending) > 0 {
		watch := d.watch()
		progress := false
		for n := range pending {
			sv, err := d.get(n)
			if err != nil || (sent[n] && sv.snapshot().State.Down()) {
				delete(pending, n)
				progress = true
				continue
			}
			if sent[n] || d.hasUpDependent(n, pending) {
				continue
			}
			_ = sv.send(request{kind: reqStop})
			sent[n] = true
			progress = true
		}
		if progress {
			continue // a removal may have freed a dependency seen earlier in this pass
		}
		select {
		case <-watch:
		case <-ctx.Done():
			return fmt.Errorf("stop: %w", ctx.Err())
		}
	}
	return nil
}

func (d *Daemon) hasUpDependent(name string, pending map[string]bool) bool {
	for _, dep := range d.dependents(name) {
		if pending[dep] {
			return true
		}
	}
	return false
}

// Restart restarts each named service (its dependents are left alone).
func (d *Daemon) Restart(ctx context.Context, names []string, wait bool) error {
	svcs, err := d.lookup(names)
	if err != nil {
		return err
	}
	for _, sv := range svcs {
		_ = sv.send(request{kind: reqRestart})
	}
	if !wait {
		return nil
	}
	for _, sv := range svcs {
		if err := d.waitUp(ctx, sv); err != nil {
			return err
		}
	}
	return nil
}

// Signal sends sig to a service's main process, or with all to every one
// of its processes.
func (d *Daemon) Signal(name string, sig syscall.Signal, all bool) error {
	sv, err := d.get(name)
	if err != nil {
		return err
	}
	return sv.send(request{kind: reqSignal, sig: sig, group: all})
}

// waitUp waits until sv runs, or has clearly failed to.
func (d *Daemon) waitUp(ctx context.Context, sv *service) error {
	for {
		watch := d.watch()
		st := sv.snapshot()
		switch st.State {
		case api.Running:
			return nil
		case api.Fatal, api.Exited, api.Stopped:
			msg := fmt.Sprintf("%s: %s", sv.name, st.State)
			if st.LastExit != "" {
				msg += " (" + st.LastExit + ")"
			}
			if st.Detail != "" {
				msg += ": " + st.Detail
			}
			return fmt.Errorf("%s", msg)
		}
		select {
		case <-watch:
		case <-ctx.Done():
			return fmt.Errorf("%s: still %s after waiting: %w", sv.name, st.State, ctx.Err())
		}
	}
}

func (d *Daemon) lookup(names []string) ([]*service, error) {
	out := make([]*service, 0, len(names))
	for _, n := range names {
		sv, err := d.get(n)
		if err != nil {
			return nil, err
		}
		out = append(out, sv)
	}
	return out, nil
}

// Status returns snapshots of the named services, or of all (with the
// broken definitions too) when names is empty. CPU and memory are read here,
// by the caller's goroutine, never by the services' loops.
func (d *Daemon) Status(names []string) ([]api.Status, error) {
	var svcs []*service
	var broken []api.Status // named services whose definition did not load
	if len(names) == 0 {
		svcs = d.all()
	} else {
		for _, n := range names {
			sv, err := d.get(n)
			if err == nil {
				svcs = append(svcs, sv)
				continue
			}
			d.mu.Lock()
			ps, ok := d.problems[n]
			d.mu.Unlock()
			if !ok {
				return nil, err
			}
			// Stopped, and why: status NAME says it as status does.
			broken = append(broken, api.Status{Name: n, State: api.Stopped, Error: ps.Error()})
		}
	}
	out := make([]api.Status, len(svcs))
	d.mu.Lock()
	for i, sv := range svcs {
		out[i] = sv.snapshot()
		if ps, ok := d.problems[sv.name]; ok {
			out[i].Error = ps.Error()
		}
	}
	d.mu.Unlock()
	// Reading /proc is most of the cost of a status: spread it over the cores.
	var wg sync.WaitGroup
	workers := min(runtime.NumCPU(), len(svcs))
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(svcs); i += workers {
				measure(svcs[i], &out[i])
			}
		})
	}
	wg.Wait()
	out = append(out, broken...)
	if len(names) == 0 {
		d.mu.Lock()
		for name, ps := range d.problems {
			if _, ok := d.svcs[name]; !ok {
				out = append(out, api.Status{Name: name, State: api.Stopped, Error: ps.Error()})
			}
		}
		d.mu.Unlock()
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	}
	return out, nil
}

func measure(sv *service, st *api.Status) {
	st.Checks = sv.checks()
	sv.mu.Lock()
	sinks := sv.sinks
	sv.mu.Unlock()
	for _, sink := range sinks {
		st.DroppedBytes += sink.Dropped()
		if err := sink.Err(); err != nil {
			st.LogError = err.Error()
		}
	}
	if st.Pid == 0 {
		return
	}
	st.UptimeSeconds = time.Since(st.StartedAt).Seconds()
	u := usageOf(sv, st.Pid)
	st.CPUSeconds, st.RSSBytes = u.CPUSeconds, u.RSSBytes
	st.StoppedPids = stoppedOf(sv, st.Pid)
}

// stoppedOf lists the service's processes in state T: all of its cgroup,
// or its main process when it has none.
func stoppedOf(sv *service, pid int) []int {
	pids := []int{pid}
	if sv.cg != nil {
		pids = sv.cg.Procs()
	}
	var out []int
	for _, p := range pids {
		if c, err := proc.State(p); err == nil && c == 'T' {
			out = append(out, p)
		}
	}
	return out
}

// usageOf is what the service's processes cost: all of its cgroup, or
// its main process when it has none.
func usageOf(sv *service, pid int) proc.Usage {
	pids := []int{pid}
	if sv.cg != nil {
		pids = sv.cg.Procs()
	}
	return proc.Measure(pids)
}

// Reload re-reads every definition: new services are added (and started if
// autostart), removed ones stopped, changed ones restarted with the new
// definition, and the rest left untouched. A definition that no longer
// parses keeps its service running on the old one and is reported.
//
// Reloads are serialized: one waits for the one before it to finish, then
// compares the definitions with what that one left.
func (d *Daemon) Reload(ctx context.Context) (res api.ReloadResult, err error) {
	if e := d.change(ctx, func() { res, err = d.reload(ctx) }); e != nil {
		return res, fmt.Errorf("reload: %w", e)
	}
	return res, err
}

// reload is Reload's work, run by the owner.
func (d *Daemon) reload(ctx context.Context) (api.ReloadResult, error) {
	var res api.ReloadResult
	if d.beforeLoad != nil {
		d.beforeLoad()
	}
	host, err := spec.LoadHost(d.root)
	if err != nil {
		return res, err
	}
	d.mu.Lock()
	d.problems = host.Problems
	d.mu.Unlock()
	for name, ps := range host.Problems {
		res.Broken = append(res.Broken, name)
		res.Problems += ps.Error() + "\n"
		d.log.Error("bad definition", "service", name, "problems", ps.Error())
	}
	current := map[string]*service{}
	for _, sv := range d.all() {
		current[sv.name] = sv
	}
	var gone []string
	for name := range current {
		_, ok := host.Services[name]
		_, broken := host.Problems[name]
		if !ok && !broken {
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 {
		if err := d.stopOrdered(ctx, gone); err != nil {
			return res, err
		}
		for _, name := range gone {
			sv := current[name]
			_ = sv.send(request{kind: reqRemove})
			<-sv.done
			d.mu.Lock()
			delete(d.svcs, name)
			d.mu.Unlock()
			d.forgetPid(name)
			d.journal.forget(name)
			res.Removed = append(res.Removed, name)
		}
	}
	crash.Point("reload-midway") // gone services stopped, new ones not added
	var start []string
	for _, name := range host.Names() {
		s := host.Services[name]
		sv, ok := current[name]
		switch {
		case !ok:
			d.add(s)
			res.Added = append(res.Added, name)
			if s.Autostart {
				start = append(start, name)
			}
		case sameSpec(sv.specSnapshot(), s):
			res.Unchanged = append(res.Unchanged, name)
		default:
			_ = sv.send(request{kind: reqUpdate, spec: s})
			res.Changed = append(res.Changed, name)
		}
	}
	d.startAll(d.withDependencies(start))
	d.notify()
	for _, l := range [][]string{res.Added, res.Removed, res.Changed, res.Unchanged, res.Broken} {
		sort.Strings(l)
	}
	d.log.Info("reloaded", "added", res.Added, "removed", res.Removed, "changed", res.Changed, "broken", res.Broken)
	return res, nil
}
