package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"upkeep/internal/host"
	"upkeep/internal/logsink"
	"upkeep/internal/spec"
)

func logsCommand(g *globals) *cobra.Command {
	var (
		follow, stderr, all bool
		n                   int
		since               time.Duration
		file                string
	)
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Show a service's output from <root>/var/log, history (.gz too) included; -f follows across rotations",
		Long: `Show the last lines of a service's captured stdout (<root>/var/log/NAME.log),
reaching back into its rotated files, compressed ones too, when -n asks for
more than the live file holds. No daemon is needed: the files are read
directly. -f keeps printing lines as they are written, across rotations.
--since keeps lines from files written since then, leaving out lines that
start with an older timestamp; -n then defaults to all of them. --file shows
one of the files the service writes itself ([[log.file]]) the same way.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := minArgs(1, "NAME")(cmd, args); err != nil {
				return err
			}
			return maxArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := checkNames(args); err != nil {
				return err
			}
			if stderr && all || file != "" && (stderr || all) {
				return usageError{errors.New("logs: --stderr, --all and --file exclude each other")}
			}
			if since < 0 {
				return usageError{errors.New("logs: --since must be positive")}
			}
			if !cmd.Flags().Changed("lines") && since > 0 {
				n = -1
			}
			var from time.Time
			if since > 0 {
				from = time.Now().Add(-since)
			}
			dir := filepath.Join(g.root, host.LogDir)
			streams := []struct{ path, prefix string }{{filepath.Join(dir, name+".log"), ""}}
			switch {
			case stderr:
				streams[0].path = filepath.Join(dir, name+".error.log")
			case all:
				streams[0].prefix = "out: "
				streams = append(streams, struct{ path, prefix string }{filepath.Join(dir, name+".error.log"), "err: "})
			}
			var cfg spec.Log
			if file != "" {
				lf, err := declaredFile(g.root, name, file)
				if err != nil {
					return err
				}
				streams[0].path, cfg = lf.Abs, lf.Log
			} else {
				cfg = logSettings(g.root, name)
			}
			out := newLineOut()
			defer out.flush()
			var followers []*logsink.Follower
			found := false
			for _, st := range streams {
				fl, err := logsink.Tail(st.path, cfg, n, from, out.printer(st.prefix))
				if err != nil {
					return fmt.Errorf("logs %s: %w", name, err)
				}
				defer fl.Close()
				if !follow {
					if err := fl.Rest(out.printer(st.prefix)); err != nil {
						return fmt.Errorf("logs %s: %w", name, err)
					}
				}
				followers = append(followers, fl)
				if _, err := os.Stat(st.path); err == nil || out.lines > 0 {
					found = true
				}
			}
			if !follow {
				if !found {
					return fmt.Errorf("logs %s: no %s under %s", name, filepath.Base(streams[0].path), filepath.Dir(streams[0].path))
				}
				return nil
			}
			out.flush()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go out.flushEvery(ctx.Done(), 100*time.Millisecond)
			var wg sync.WaitGroup
			errs := make([]error, len(followers))
			for i, fl := range followers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = fl.Follow(ctx, out.printer(streams[i].prefix))
				}()
			}
			wg.Wait()
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing lines as they are written, across rotations")
	cmd.Flags().IntVarP(&n, "lines", "n", 10, "how many of the last lines to show (-1: all)")
	cmd.Flags().BoolVar(&stderr, "stderr", false, "show NAME.error.log (the service's stderr) instead")
	cmd.Flags().BoolVar(&all, "all", false, "show stdout and stderr, each line prefixed out: or err:")
	cmd.Flags().DurationVar(&since, "since", 0, "only lines written in the last DURATION (e.g. 10m, 2h)")
	cmd.Flags().StringVar(&file, "file", "", "show PATH, a file the service writes itself ([[log.file]] in its service.toml), instead")
	return cmd
}

// declaredFile is the [[log.file]] of service name that p names
// (logsink.Lookup).
func declaredFile(root, name, p string) (spec.LogFile, error) {
	s, ps := spec.Load(root, filepath.Join(root, spec.WWW, name))
	if s == nil {
		return spec.LogFile{}, fmt.Errorf("logs %s: %w", name, ps)
	}
	f, err := logsink.Lookup(root, s.LogFiles, p)
	if err != nil {
		return spec.LogFile{}, usageError{fmt.Errorf("logs %s: --file %w (%s)", name, err, s.File)}
	}
	return f, nil
}

// logSettings is the service's [log] section, which says how its rotated
// files are named; the defaults when the service is gone or broken.
func logSettings(root, name string) spec.Log {
	if s, _ := spec.Load(root, filepath.Join(root, spec.WWW, name)); s != nil {
		return s.Log
	}
	return spec.DefaultLog()
}

// lineOut prints whole lines from several goroutines, buffered.
type lineOut struct {
	mu    sync.Mutex
	w     *bufio.Writer
	lines int
}

func newLineOut() *lineOut { return &lineOut{w: bufio.NewWriterSize(os.Stdout, 64<<10)} }

func (o *lineOut) printer(prefix string) func([]byte) {
	return func(l []byte) {
		o.mu.Lock()
		o.w.WriteString(prefix)
		o.w.Write(l)
		o.w.WriteByte('\n')
		o.lines++
		o.mu.Unlock()
	}
}

func (o *lineOut) flush() {
	o.mu.Lock()
	o.w.Flush()
	o.mu.Unlock()
}

func (o *lineOut) flushEvery(done <-chan struct{}, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			o.flush()
		}
	}
}
