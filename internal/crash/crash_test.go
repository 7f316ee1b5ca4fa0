package crash

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// The test binary re-runs itself with UPKEEP_CRASH_AT set: it passes a step
// of another name, then dies of SIGKILL at the named one, before the line
// after it.
func TestPoint(t *testing.T) {
	if os.Getenv("CRASH_CHILD") == "1" {
		Point("other-step")
		os.Stdout.WriteString("passed other-step\n")
		Point("the-step")
		os.Stdout.WriteString("passed the-step\n")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPoint$")
	cmd.Env = append(os.Environ(), "CRASH_CHILD=1", Env+"=the-step")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed by SIGKILL\n%s", err, out)
	}
	if string(out) != "passed other-step\n" {
		t.Errorf("child wrote %q, want only the line after the other step", out)
	}
	// Unset: every step passes.
	cmd = exec.Command(os.Args[0], "-test.run=^TestPoint$")
	cmd.Env = append(os.Environ(), "CRASH_CHILD=1", Env+"=")
	if out, err := cmd.Output(); err != nil || string(out) != "passed other-step\npassed the-step\n" {
		t.Errorf("child without a step: %v, %q", err, out)
	}
}
