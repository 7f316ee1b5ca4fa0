package crash

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Env names the step to die at. It is read once, the first time a step is
// reached: set it in the environment of the process to kill, not later.
const Env = "UPKEEP_CRASH_AT"

var at = sync.OnceValue(func() string { return os.Getenv(Env) })

// Point kills the process with SIGKILL if step is the one UPKEEP_CRASH_AT
// names. SIGKILL and not an exit: no deferred function, no flush, no
// unlock runs, as when the OOM killer or a power cut ends the process.
func Point(step string) {
	if s := at(); s != "" && s == step {
		_ = unix.Kill(os.Getpid(), unix.SIGKILL)
		// The signal is delivered before Kill returns to user space on
		// Linux, but block in case it is not: nothing after the step may run.
		select {}
	}
}
