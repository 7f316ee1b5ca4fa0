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
// process group of its own that is killed after timeout (or when ctx ends),
// run as ex says (the service's identity, like its exec checks). It returns
// when the hook has exited; an exit other than 0 is an error.
func RunHook(ctx context.Context, ex Exec, argv []string, service string, ev Event, timeout time.Duration) error {
	if len(argv) == 0 || argv[0] == "" {
		return errors.New("hook: empty command")
	}
	if ex.Reaper == nil {
		return fmt.Errorf("hook %s: no reaper to run it", argv[0])
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

	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("hook %s: %w", argv[0], err)
	}
	p, err := ex.Reaper.Start(proc.Cmd{
		Argv: argv,
		Env: environ(
			"UPKEEP_SERVICE="+service,
			"UPKEEP_CHECK="+in.Check,
			"UPKEEP_EVENT="+in.Event,
			"UPKEEP_MESSAGE="+in.Message,
		),
		Dir:   ex.Dir,
		Stdin: r,
		As:    ex.As,
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
	exit, err := p.Wait(ctx)
	w.Close()
	<-written
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("hook %s: timeout after %s", argv[0], timeout)
	case err != nil:
		return fmt.Errorf("hook %s: %w", argv[0], err)
	}
	if !exit.Success() {
		return fmt.Errorf("hook %s: %s", argv[0], exit)
	}
	return nil
}
