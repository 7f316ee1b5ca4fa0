package supervise

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"time"

	"upkeep/internal/api"
	"upkeep/internal/logsink"
	"upkeep/internal/paths"
	"upkeep/internal/proc"
	"upkeep/internal/spec"
)

// postRotateTimeout bounds a postrotate command; then its process group is
// killed.
const postRotateTimeout = 30 * time.Second

// declared is the rotation of the files a service writes itself
// ([[log.file]]), for the definition it was made from.
type declared struct {
	specs []spec.LogFile
	open  func(lf spec.LogFile, path string) *logsink.File

	mu     sync.Mutex
	files  map[string]*logsink.File // by path; a pattern's matches included
	closed bool
	stop   chan struct{}
}

// openFiles starts rotating the files the service writes itself, or, when
// a reload changed them, replaces the rotation of the old ones. Called by
// openLogs, on the run goroutine.
func (s *service) openFiles() {
	s.mu.Lock()
	old := s.files
	s.mu.Unlock()
	if old != nil && reflect.DeepEqual(old.specs, s.spec.LogFiles) {
		return
	}
	if old == nil && len(s.spec.LogFiles) == 0 {
		return
	}
	if old != nil {
		old.close()
	}
	cur := &declared{specs: s.spec.LogFiles, files: map[string]*logsink.File{}, stop: make(chan struct{})}
	cur.open = func(lf spec.LogFile, path string) *logsink.File {
		f := logsink.NewFile(path, lf.Log, logsink.Declared{
			CopyTruncate: lf.Method == spec.CopyTruncate,
			Reopen:       s.reopener(lf, path),
			Within:       s.d.logDir,
		})
		f.Notify(func(e logsink.Event) { s.d.logEvent(s.name, e) })
		f.Start()
		return f
	}
	cur.refresh()
	s.mu.Lock()
	s.files = cur
	s.mu.Unlock()
	var look <-chan time.Time // only patterns need looking at again
	var ticker *time.Ticker
	for _, lf := range cur.specs {
		if lf.Pattern {
			ticker = time.NewTicker(s.d.globEvery)
			look = ticker.C
			break
		}
	}
	go func() {
		if ticker != nil {
			defer ticker.Stop()
		}
		for {
			select {
			case <-s.done: // the service is removed
				cur.close()
				return
			case <-cur.stop:
				return
			case <-look:
				cur.refresh()
			}
		}
	}()
}

// refresh rotates each declared file, and each file a pattern matches
// now; a pattern's file that is gone is left alone from then on (its
// rotated files stay where they are).
func (dc *declared) refresh() {
	want := expand(dc.specs)
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.closed {
		return
	}
	for p, f := range dc.files {
		if _, ok := want[p]; !ok {
			f.Close()
			delete(dc.files, p)
		}
	}
	for p, lf := range want {
		if dc.files[p] == nil {
			dc.files[p] = dc.open(lf, p)
		}
	}
}

// expand is the files declared now, by path: each declared path, and
// each file a pattern stands for (a path declared outright keeps its own
// settings).
func expand(specs []spec.LogFile) map[string]spec.LogFile {
	want := map[string]spec.LogFile{}
	for _, lf := range specs {
		if !lf.Pattern {
			want[lf.Abs] = lf
			continue
		}
		paths, _ := logsink.Matches(lf.Abs, lf.Log)
		for _, p := range paths {
			if _, ok := want[p]; !ok {
				want[p] = lf
			}
		}
	}
	return want
}

// list is the files rotated now, sorted by path.
func (dc *declared) list() []*logsink.File {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	out := make([]*logsink.File, 0, len(dc.files))
	for _, f := range dc.files {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path() < out[j].Path() })
	return out
}

func (dc *declared) close() {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.closed {
		return
	}
	dc.closed = true
	close(dc.stop)
	for _, f := range dc.files {
		f.Close()
	}
}

// reopener is how the service is made to open a renamed file again: its
// signal, sent to the main process through the service's loop as `upkeep
// signal` does, or its postrotate command. A service that is not running
// holds no file, and needs nothing.
func (s *service) reopener(lf spec.LogFile, path string) func() error {
	switch {
	case lf.Method != spec.Rename:
		return nil
	case lf.Signal != "":
		sig, _ := spec.ParseSignal(lf.Signal)
		return func() error {
			err := s.send(request{kind: reqSignal, sig: sig})
			if err != nil && s.snapshot().Pid == 0 {
				return nil
			}
			return err
		}
	}
	return func() error { return s.postRotate(lf, path) }
}

// postRotate runs the postrotate command of lf the way logrotate runs its
// script, /bin/sh -c with the file as $1, but as the service's user, in
// its directory and with its environment. Its output goes to the
// service's error log.
func (s *service) postRotate(lf spec.LogFile, path string) error {
	sp := s.specSnapshot()
	env, err := environOf(s.name, sp)
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	p, err := s.d.reaper.Start(proc.Cmd{
		Argv:   []string{"/bin/sh", "-c", lf.PostRotate, s.name, path},
		Env:    env,
		Dir:    sp.Directory,
		Stdout: w,
		Stderr: w,
		As:     identity(sp),
	})
	w.Close()
	if err != nil {
		r.Close()
		return fmt.Errorf("postrotate: %w", err)
	}
	s.mu.Lock()
	var errLog *logsink.Sink
	if len(s.sinks) == 2 {
		errLog = s.sinks[1]
	}
	s.mu.Unlock()
	go func() {
		defer r.Close()
		if errLog != nil {
			errLog.Drain(r)
			return
		}
		buf := make([]byte, 4096)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), postRotateTimeout)
	defer cancel()
	ex, err := p.Wait(ctx)
	if err != nil {
		return fmt.Errorf("postrotate: killed after %v", postRotateTimeout)
	}
	if !ex.Success() {
		return fmt.Errorf("postrotate: %s", ex)
	}
	return nil
}

// Rotate rotates every log of the named services now, as logrotate -f
// does (notifempty still applies): their captured output and the files
// they write themselves. No names: every service's.
//
// A service that has not started since the daemon did has no log open;
// its files are rotated all the same, by a sink or File opened for the
// purpose. Should it start meanwhile, its own sink finds its file renamed
// within a second and opens a new one; no line is lost.
func (d *Daemon) Rotate(names []string) ([]api.Rotated, error) {
	svcs := d.all()
	if len(names) > 0 {
		var err error
		if svcs, err = d.lookup(names); err != nil {
			return nil, err
		}
	}
	var out []api.Rotated
	for _, sv := range svcs {
		sv.mu.Lock()
		sinks, dc := sv.sinks, sv.files
		sv.mu.Unlock()
		var files []*logsink.File
		if dc != nil {
			dc.refresh() // a pattern's new files are rotated too
			files = dc.list()
		}
		sp := sv.specSnapshot()
		if sinks == nil {
			for _, p := range []string{paths.Log(d.root, sv.name), paths.ErrorLog(d.root, sv.name)} {
				sink, err := logsink.OpenWith(p, sp.Log)
				if err != nil {
					return nil, err
				}
				defer sink.Close()
				sinks = append(sinks, sink)
			}
		}
		if dc == nil {
			for p, lf := range expand(sp.LogFiles) {
				files = append(files, logsink.NewFile(p, lf.Log, logsink.Declared{CopyTruncate: lf.Method == spec.CopyTruncate, Within: d.logDir}))
			}
			sort.Slice(files, func(i, j int) bool { return files[i].Path() < files[j].Path() })
		}
		for _, sink := range sinks {
			r, err := sink.Rotate()
			out = append(out, rotated(sv.name, sink.Path(), r, err))
		}
		for _, f := range files {
			r, err := f.Rotate()
			out = append(out, rotated(sv.name, f.Path(), r, err))
		}
	}
	return out, nil
}

func rotated(service, path string, r logsink.Rotation, err error) api.Rotated {
	out := api.Rotated{Service: service, File: path, Rotated: r.Rotated, To: r.To}
	switch {
	case errors.Is(err, logsink.ErrPending):
		out.Pending = true
	case err != nil:
		out.Error = err.Error()
	}
	return out
}

// LogCounters lists the counters of every service's captured logs, by
// service and file. A service that has not started since the daemon did
// has none. The counts start from 0 with each sink: a reload that changes
// [log] opens new ones (a counter reset, to Prometheus).
func (d *Daemon) LogCounters() []api.LogCounter {
	var out []api.LogCounter
	for _, sv := range d.all() {
		sv.mu.Lock()
		sinks := sv.sinks
		sv.mu.Unlock()
		for _, sink := range sinks {
			c := api.LogCounter{Service: sv.name, File: filepath.Base(sink.Path()), Dropped: sink.Dropped()}
			if err := sink.Err(); err != nil {
				c.Err = err.Error()
			}
			out = append(out, c)
		}
	}
	return out
}
