package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"upkeep/internal/proc"
)

// DefaultHookTimeout bounds a hook when RunHook is given no timeout.
const DefaultHookTimeout = 30 * time.Second

// hookInput is the JSON object a hook reads on stdin.
type hookInput struct {
	Service string        `json:"service"`
	Check   string        `json:"check"`
	Event   string        `json:"event"`
	OK      bool          `json:"ok"`
	Message string        `json:"message"`
	Latency time.Duration `json:"latency_ns"`
	Time    time.Time     `json:"time"`
}

// RunHook runs an exec action (then = "exec"): argv with the event in its
// environment (UPKEEP_SERVICE, UPKEEP_CHECK, UPKEEP_EVENT, UPKEEP_MESSAGE)
// and as one JSON object on stdin, stdout and stderr on /dev/null, in a
// process group of its own that is killed after timeout (or when ctx ends).
// It returns when the hook has exited; an exit other than 0 is an error.
func RunHook(ctx context.Context, argv []string, service string, ev Event, timeout time.Duration) error {
	if len(argv) == 0 || argv[0] == "" {
		return errors.New("hook: empty command")
	}
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	in := hookInput{
		Service: service,
		Event:   ev.Kind.String(),
		OK:      ev.Result.OK,
		Message: ev.Result.Message,
		Latency: ev.Result.Latency,
		Time:    ev.Result.Started,
	}
	if ev.Check != nil {
		in.Check = ev.Check.Name
	}
	if in.Time.IsZero() {
		in.Time = time.Now()
	}
	data, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("hook %s: %w", argv[0], err)
	}
	data = append(data, '\n')

	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("hook %s: %w", argv[0], err)
	}
	defer devnull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("hook %s: %w", argv[0], err)
	}
	p, err := proc.Reap().Spawn(proc.Attr{
		Argv: argv,
		Env: environ(
			"UPKEEP_SERVICE="+service,
			"UPKEEP_CHECK="+in.Check,
			"UPKEEP_EVENT="+in.Event,
			"UPKEEP_MESSAGE="+in.Message,
		),
		Files:    []uintptr{r.Fd(), devnull.Fd(), devnull.Fd()},
		CgroupFD: -1,
	})
	r.Close()
	if err != nil {
		w.Close()
		return fmt.Errorf("hook %s: %w", argv[0], err)
	}
	// The write end is non-blocking under Go's poller, so the Close below
	// also ends a write to a hook that never reads its stdin (or left a
	// child holding it) once the hook has exited.
	written := make(chan struct{})
	go func() {
		defer close(written)
		w.Write(data)
		w.Close()
	}()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = waitOrKill(ctx, p)
	w.Close()
	<-written
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("hook %s: timeout after %s", argv[0], timeout)
	case err != nil:
		return fmt.Errorf("hook %s: %w", argv[0], err)
	}
	if ex := p.Exit(); !ex.Success() {
		return fmt.Errorf("hook %s: %s", argv[0], ex)
	}
	return nil
}
