package compat

import (
	"fmt"
	"strings"
	"testing"
)

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

// BenchmarkParseMonit5000 is the parser alone (tokens to drafts).
func BenchmarkParseMonit5000(b *testing.B) {
	data := monitFile(5000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		ds, _ := ParseMonit("bench.monitrc", data, Options{})
		if len(ds) != 5000 {
			b.Fatalf("%d drafts", len(ds))
		}
	}
}
