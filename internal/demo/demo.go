// Package demo builds a small example host in a directory: three services
// that show what upkeep does (an HTTP service answering /ok, a ticker, and a
// worker that depends on the HTTP service). It only writes files.
package demo

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

// Write lays out the demo host under root. exe is the upkeep binary, which
// also serves the HTTP example (`upkeep serve-ok`). It returns the address
// the HTTP service listens on.
func Write(root, exe string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	services := map[string]string{
		"www-hello": fmt.Sprintf(`# An HTTP service answering /ok (monit: if failed port %d protocol HTTP request /ok ...)
version = "1.0.0"
command = [%q, "serve-ok", "--addr", %q]

[restart]
policy = "always"
backoff = "10ms"

[stop]
signal = "TERM"
timeout = "2s"

# monit: if failed port %d protocol HTTP request /ok with timeout 5 seconds then restart
[[check]]
type = "http"
url = "http://%s/ok"
timeout = "5s"
interval = "1s"
cycles = 1
then = "restart"
`, port, exe, addr, port, addr),
		"service-ticker": `# A shell script, the way upstart runs "script ... end script"
script = """
n=0
while true; do
  n=$((n+1))
  echo "tick $n"
  sleep 1
done
"""
ready_after = "200ms"
`,
		"api-worker": `# Starts only once www-hello is running; stopped before it.
depends_on = ["www-hello"]
env = { WORK = "demo" }
script = """
echo "worker for $WORK started, HOME=$HOME"
echo "this line goes to the error log" >&2
while true; do sleep 1; done
"""
ready_after = "200ms"
`,
	}
	for name, body := range services {
		dir := paths.Service(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, spec.FileName), []byte(body), 0o644); err != nil {
			return "", err
		}
	}
	return addr, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
