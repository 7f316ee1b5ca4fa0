package compat

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzImport checks what every importer promises on any input: no panic,
// every service it returns loads with spec.Parse, and every note has a
// place inside the file and a message. Seeds: the testdata inputs of the
// format, and testdata/fuzz/<FuzzName>.
func fuzzImport(f *testing.F, format Format, seeds ...string) {
	fuzzImportWith(f, format, nil, seeds...)
}

// fuzzImportWith imports each input together with the files of with, which
// define services for it to add to (a logrotate stanza alone runs
// nothing, so it would never be written and read back).
func fuzzImportWith(f *testing.F, format Format, with []Input, seeds ...string) {
	for _, pattern := range seeds {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := Import(append([]Input{{Path: "fuzz.in", Data: data, Format: format}}, with...), Options{})
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, n := range r.Notes {
			if n.File == "fuzz.Procfile" {
				continue
			}
			if n.File != "fuzz.in" || n.Line < 0 || n.Line > lines || n.Msg == "" {
				t.Errorf("bad note %#v", n)
			}
			if strings.Contains(n.Msg, "internal:") {
				t.Errorf("importer bug: %s", n)
			}
		}
		checkValid(t, r)
	})
}

func FuzzMonit(f *testing.F) {
	fuzzImport(f, Monit, "testdata/import/monit/*.monitrc", "testdata/import/monit/conf.d/*", "testdata/import/guide/monitrc")
}

func FuzzUpstart(f *testing.F) {
	fuzzImport(f, Upstart, "testdata/import/upstart/*.conf", "testdata/import/guide/*.conf")
}

func FuzzSupervisord(f *testing.F) {
	fuzzImport(f, Supervisord, "testdata/import/supervisord/*.conf", "testdata/import/supervisord/conf.d/*")
}

func FuzzProcfile(f *testing.F) {
	fuzzImport(f, Procfile, "testdata/import/procfile/Procfile")
}

func FuzzLogrotate(f *testing.F) {
	jobs := Input{Path: "fuzz.Procfile", Format: Procfile, Data: []byte("api-app: /bin/true\napp_name: /bin/true\nmyapp: /bin/true\nnginx: /bin/true\na: /bin/true\n")}
	fuzzImportWith(f, Logrotate, []Input{jobs}, "testdata/import/logrotate/api-app", "testdata/import/guide/logrotate")
}
