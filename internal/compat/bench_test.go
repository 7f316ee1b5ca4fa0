package compat

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var monitOut = flag.String("write-monit5000", "", "write the benchmarks' 5,000-stanza monit file to this path (for timing `upkeep import`)")

// TestWriteMonit5000 writes the benchmarks' input for the real binary:
//
//	go test ./internal/compat/ -run WriteMonit5000 -write-monit5000 /tmp/monit5000.monitrc
func TestWriteMonit5000(t *testing.T) {
	if *monitOut == "" {
		t.Skip("no -write-monit5000 path")
	}
	if err := os.WriteFile(*monitOut, monitFile(5000), 0o644); err != nil {
		t.Fatal(err)
	}
}

// monitFile is a control file of n check process stanzas of the kind the
// guide writes, with a few more statements each (about 600 bytes).
func monitFile(n int) []byte {
	var b strings.Builder
	b.WriteString("set daemon 30\nset logfile /var/log/monit.log\n\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `# service %d
check process api-app-%d with pidfile /var/run/api-app-%d.pid
  start program = "/usr/local/bin/node /var/www/api-app-%d/server.js production --port %d"
      as uid nodejs and gid nodejs with timeout 60 seconds
  stop program = "/usr/local/bin/node /var/www/api-app-%d/stop.js" with timeout 20 seconds
  if failed host 127.0.0.1 port %d protocol http
     request /ok
     with timeout 5 seconds for 3 cycles
     then restart
  if cpu > 80%% for 5 cycles then alert
  if totalmem > 200 MB then restart
  if 5 restarts within 10 cycles then unmonitor
  depends on service-db
  group api

`, i, i, i, i, 10000+i%50000, i, 10000+i%50000)
	}
	return []byte(b.String())
}

// BenchmarkImportMonit5000 imports a 5,000-stanza file in memory: parse,
// merge, drop what spec.Parse would refuse, and render each service.toml.
func BenchmarkImportMonit5000(b *testing.B) {
	benchImport(b, Options{})
}

// BenchmarkImportMonit5000Validated adds what `upkeep import` does before
// writing: every service.toml read back with spec.Parse (on every core).
func BenchmarkImportMonit5000Validated(b *testing.B) {
	benchImport(b, Options{Validate: true})
}

func benchImport(b *testing.B, opt Options) {
	data := monitFile(5000)
	b.SetBytes(int64(len(data)))
	defer cpuPerOp(b)()
	for b.Loop() {
		r := Import([]Input{{Path: "bench.monitrc", Data: data, Format: Monit}}, opt)
		if len(r.Services) != 5000 || len(r.Errors()) > 0 {
			b.Fatalf("%d services, %d errors", len(r.Services), len(r.Errors()))
		}
		for _, d := range r.Services {
			_ = d.TOML()
		}
	}
}

// BenchmarkImportMonit5000CLI is `upkeep import FILE --to DIR` less the
// process: what cmd/upkeep calls, Import with Validate and the include
// functions, then WriteServices into a new directory. The directories are
// removed only at the end: on an ext4 without a journal, inodes freed
// less than a minute ago make every new one slow to allocate (ext4's
// recently_deleted), which would be measuring the benchmark's own
// clean-up.
func BenchmarkImportMonit5000CLI(b *testing.B) {
	data := monitFile(5000)
	b.SetBytes(int64(len(data)))
	base := b.TempDir()
	n := 0
	defer cpuPerOp(b)()
	for b.Loop() {
		n++
		// No format: detected, as when a user gives none.
		r := Import([]Input{{Path: "bench.monitrc", Data: data}}, Options{ReadFile: os.ReadFile, Glob: filepath.Glob, Validate: true})
		files := make([]ServiceFile, len(r.Services))
		for i, d := range r.Services {
			files[i] = ServiceFile{Name: d.Name, Data: d.TOML()}
		}
		written := WriteServices(filepath.Join(base, fmt.Sprint(n)), files, false)
		if len(written) != 5000 || len(r.Errors()) > 0 {
			b.Fatalf("%d services, %d errors", len(written), len(r.Errors()))
		}
		for _, w := range written {
			if w.Err != nil {
				b.Fatal(w.Err)
			}
		}
	}
}

// cpuPerOp reports the process's CPU time (user and system, every thread,
// the garbage collector's too) per operation: on a shared machine it
// varies far less than the wall time. Call the function it returns after
// the loop.
func cpuPerOp(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64((cpu()-start).Milliseconds())/float64(b.N), "cpu-ms/op")
		}
	}
}

// BenchmarkParseMonit5000 is the parser alone (tokens to drafts).
func BenchmarkParseMonit5000(b *testing.B) {
	data := monitFile(5000)
	b.SetBytes(int64(len(data)))
	defer cpuPerOp(b)()
	for b.Loop() {
		ds, _ := ParseMonit("bench.monitrc", data, Options{})
		if len(ds) != 5000 {
			b.Fatalf("%d drafts", len(ds))
		}
	}
}
