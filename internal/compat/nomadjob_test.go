package compat

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	nomad "github.com/hashicorp/nomad/api"
)

// TestNomadStrict decodes every job into nomad/api's Job with unknown
// fields rejected, as `nomad job run -json` reads it (see k8sobjects_test.go
// for why).
func TestNomadStrict(t *testing.T) {
	jobs := 0
	for _, host := range exportHosts(t) {
		for _, name := range host.h.Names() {
			s := host.h.Services[name]
			files, _, err := Export(Nomad, host.root, s)
			if err != nil {
				t.Fatal(err)
			}
			var v struct{ Job *nomad.Job }
			dec := json.NewDecoder(bytes.NewReader(files[0].Data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, files[0].Data)
			}
			jobs++
			j := v.Job
			if j == nil || *j.ID != name || *j.Type != "service" || len(j.TaskGroups) != 1 || j.Meta["upkeep_exported_from"] != "/var/www/"+name+"/service.toml" {
				t.Fatalf("%s: job %+v", name, j)
			}
			g := j.TaskGroups[0]
			want := 1
			if !s.Autostart {
				want = 0
			}
			if *g.Count != want || g.RestartPolicy == nil || *g.RestartPolicy.Mode != "fail" || g.ReschedulePolicy == nil || g.Update == nil {
				t.Errorf("%s: group %+v", name, g)
			}
			task := g.Tasks[0]
			x := &exporter{s: s, root: host.root}
			args, _ := task.Config["args"].([]any)
			if task.Driver != "raw_exec" || task.Config["command"] != "/bin/sh" || len(args) != 4+len(x.argv()) || args[4] != x.argv()[0] {
				t.Errorf("%s: task config %v", name, task.Config)
			}
			if *task.KillTimeout != s.Stop.Timeout.D() || task.Env["UPKEEP_SERVICE"] != name || task.User != s.User {
				t.Errorf("%s: task %+v", name, task)
			}
			switch name {
			case "api-app":
				c := task.Services[0].Checks[0]
				if c.Type != "http" || c.Path != "/health?deep=1" || c.Interval != 10*time.Second || c.CheckRestart.Limit != 3 || *c.CheckRestart.Grace != 45*time.Second || c.Header["Host"][0] != "api.local" {
					t.Errorf("api-app: check %+v", c)
				}
				if *task.Resources.MemoryMB != 512 || len(task.Templates) != 2 || !*task.Templates[0].Envvars || *g.RestartPolicy.Attempts != 4 {
					t.Errorf("api-app: task %+v", task)
				}
				if g.Networks[0].ReservedPorts[1].Value != 9090 {
					t.Errorf("api-app: ports %+v", g.Networks[0].ReservedPorts)
				}
			case "api-worker":
				if *g.RestartPolicy.Attempts != 0 || *g.ReschedulePolicy.Attempts != 0 || *g.ReschedulePolicy.Unlimited {
					t.Errorf("api-worker: never restarted, but %+v %+v", g.RestartPolicy, g.ReschedulePolicy)
				}
			case "odd":
				c := task.Services[0].Checks[0]
				if !c.TLSSkipVerify || c.Protocol != "https" || !strings.HasPrefix(c.PortLabel, "port-8443") {
					t.Errorf("odd: check %+v", c)
				}
			}
		}
	}
	if jobs != 5 {
		t.Errorf("%d jobs decoded", jobs)
	}
}
