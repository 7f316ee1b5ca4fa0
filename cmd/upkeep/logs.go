package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"upkeep/internal/api"
	"upkeep/internal/control"
	"upkeep/internal/logread"
	"upkeep/internal/logsink"
	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

func logsCommand(g *globals) *cobra.Command {
	var (
		follow, stderr, stdout, both, direct bool
		n                                    int
		since, until, grep, output, file     string
	)
	cmd := &cobra.Command{
		Use:   "logs [NAME...]",
		Short: "Show services' stdout and stderr interleaved, with capture times; no NAME: all services; -f follows",
		Long: `Show the last lines of services' captured output, stdout (<root>/var/log/NAME.log)
and stderr (NAME.error.log) interleaved in the order they were written, each line
with its capture time and its stream, reaching back into rotated files,
compressed ones too. With no NAME, every service's lines are merged, as
journalctl does. -f keeps printing lines as they are written, across rotations.

When the daemon runs, the lines come through its control socket, so its groups
decide who may read them (the read group may); otherwise the files are read
directly and their permissions decide, which is said once on stderr.

--since and --until take RFC 3339 ("2026-12-03T18:00:00Z"), a local time
("2026-12-03 18:00"), a duration before now ("10m", "2d"), today, yesterday;
-n then defaults to all the lines in the range. --grep keeps the lines that
match an RE2 expression. -o short (default), json (one object a line) or cat
(the text only). --file shows one of the files a service writes itself
([[log.file]]), read directly.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNames(args); err != nil {
				return err
			}
			if file != "" {
				if stderr || stdout || both {
					return usageError{errors.New("logs: --file shows one file; --stderr, --stdout and --all are for the captured output")}
				}
				if len(args) != 1 {
					return usageError{errors.New("logs: --file needs exactly one NAME")}
				}
				return ownFile(cmd, g, args[0], file, n, follow)
			}
			if stderr && stdout {
				return usageError{errors.New("logs: --stderr and --stdout exclude each other; both streams is the default")}
			}
			format, ok := logFormats[output]
			if !ok {
				return usageError{fmt.Errorf("logs: -o: want short, json or cat, got %q", output)}
			}
			if output == "short" && colourStdout() {
				format = shortColour
			}
			q := api.LogQuery{Names: args, N: n, Grep: grep, Follow: follow}
			switch {
			case stderr:
				q.Stream = logread.Err
			case stdout:
				q.Stream = logread.Out
			}
			if n < -1 {
				return usageError{fmt.Errorf("logs: -n: want a number of lines, or -1 for all, got %d", n)}
			}
			now := time.Now()
			for _, t := range []struct {
				flag, val string
				to        *time.Time
			}{{"--since", since, &q.Since}, {"--until", until, &q.Until}} {
				if t.val == "" {
					continue
				}
				tm, err := logread.ParseTime(t.val, now)
				if err != nil {
					return usageError{fmt.Errorf("logs: %s: %w", t.flag, err)}
				}
				if t.flag == "--until" && tm.Nanosecond()%int(time.Millisecond) == 0 {
					// A time as the lines show it, to the millisecond:
					// the lines of that millisecond are until it too.
					tm = tm.Add(time.Millisecond - 1)
				}
				*t.to = tm
			}
			if grep != "" {
				if _, err := regexp.Compile(grep); err != nil {
					return usageError{fmt.Errorf("logs: --grep: %w", err)}
				}
			}
			if !cmd.Flags().Changed("lines") && (!q.Since.IsZero() || !q.Until.IsZero()) {
				q.N = -1
			}
			_ = both // the default now: kept so that scripts with --all still work
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := bufio.NewWriterSize(os.Stdout, 64<<10)
			defer out.Flush()
			var buf []byte
			emit := func(l api.LogLine) error {
				buf = format(buf[:0], l)
				if _, err := out.Write(buf); err != nil {
					return err
				}
				if follow && out.Buffered() > 0 {
					return out.Flush()
				}
				return nil
			}
			if !direct {
				err := control.NewClient(g.sock()).Logs(ctx, q, emit)
				if !errors.Is(err, control.ErrNoDaemon) {
					if err != nil {
						return fmt.Errorf("logs: %w", err)
					}
					return nil
				}
				fmt.Fprintf(os.Stderr, "upkeep: logs: no daemon answers on %s; reading the files under %s directly\n", g.sock(), filepath.Join(g.root, paths.LogDir))
			}
			if err := logread.Read(ctx, g.root, q, emit); err != nil {
				return fmt.Errorf("logs: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing lines as they are written, across rotations")
	cmd.Flags().IntVarP(&n, "lines", "n", 10, "how many of the last lines to show (-1: all)")
	cmd.Flags().StringVar(&since, "since", "", "only lines captured since TIME (RFC 3339, \"2026-12-03 18:00\", or a duration before now: 10m, 2d)")
	cmd.Flags().StringVar(&until, "until", "", "only lines captured until TIME (as --since)")
	cmd.Flags().StringVar(&grep, "grep", "", "only lines that match REGEX (RE2)")
	cmd.Flags().StringVarP(&output, "output", "o", "short", "short (time service[stream]: line), json (an object a line) or cat (the line only)")
	cmd.Flags().BoolVar(&stderr, "stderr", false, "only the service's stderr (NAME.error.log)")
	cmd.Flags().BoolVar(&stdout, "stdout", false, "only the service's stdout (NAME.log)")
	cmd.Flags().BoolVar(&both, "all", false, "stdout and stderr (the default)")
	cmd.Flags().MarkHidden("all")
	cmd.Flags().BoolVar(&direct, "direct", false, "read the files directly even when the daemon runs (file permissions decide)")
	cmd.Flags().StringVar(&file, "file", "", "show PATH, a file the service writes itself ([[log.file]] in its service.toml), instead")
	return cmd
}

// logFormats append one line in each -o format.
var logFormats = map[string]func([]byte, api.LogLine) []byte{
	"short": func(b []byte, l api.LogLine) []byte {
		b = l.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
		b = append(b, ' ')
		b = append(b, l.Service...)
		b = append(b, '[')
		b = append(b, l.Stream...)
		b = append(b, "]: "...)
		b = append(b, l.Line...)
		return append(b, '\n')
	},
	"json": func(b []byte, l api.LogLine) []byte {
		j, _ := json.Marshal(l)
		return append(append(b, j...), '\n')
	},
	"cat": func(b []byte, l api.LogLine) []byte {
		return append(append(b, l.Line...), '\n')
	},
}

// shortColour is short on a terminal: the time dim, the stream red for
// stderr (colour.go says when).
func shortColour(b []byte, l api.LogLine) []byte {
	b = append(b, dim...)
	b = l.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, reset...)
	b = append(b, ' ')
	b = append(b, l.Service...)
	if l.Stream == "err" {
		b = append(b, red...)
	}
	b = append(b, '[')
	b = append(b, l.Stream...)
	b = append(b, ']')
	if l.Stream == "err" {
		b = append(b, reset...)
	}
	b = append(b, ": "...)
	b = append(b, l.Line...)
	return append(b, '\n')
}

// ownFile shows a file the service writes itself ([[log.file]]): read
// directly, as it always was; the daemon does not capture it.
func ownFile(cmd *cobra.Command, g *globals, name, file string, n int, follow bool) error {
	lf, err := declaredFile(g.root, name, file)
	if err != nil {
		return err
	}
	out := newLineOut()
	defer out.flush()
	fl, err := logsink.Tail(lf.Abs, lf.Log, n, time.Time{}, out.printer(""))
	if err != nil {
		return fmt.Errorf("logs %s: %w", name, err)
	}
	defer fl.Close()
	if !follow {
		if err := fl.Rest(out.printer("")); err != nil {
			return fmt.Errorf("logs %s: %w", name, err)
		}
		if _, err := os.Stat(lf.Abs); err != nil && out.lines == 0 {
			return fmt.Errorf("logs %s: no %s", name, lf.Abs)
		}
		return nil
	}
	out.flush()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go out.flushEvery(ctx.Done(), 100*time.Millisecond)
	return fl.Follow(ctx, out.printer(""))
}

// logsBackend is the daemon's control backend with the logs served from
// the files under root (control.Logs), through logread.
type logsBackend struct {
	control.Backend
	root string
}

func (b logsBackend) Logs(ctx context.Context, q api.LogQuery, emit func(api.LogLine) error) error {
	return logread.Read(ctx, b.root, q, emit)
}

// declaredFile is the [[log.file]] of service name that p names
// (logsink.Lookup).
func declaredFile(root, name, p string) (spec.LogFile, error) {
	s, ps := spec.Load(root, paths.Service(root, name))
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
	if s, _ := spec.Load(root, paths.Service(root, name)); s != nil {
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
