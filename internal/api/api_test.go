package api

import (
	"encoding/json"
	"testing"
	"time"

	"upkeep/internal/health"
)

// TestWireShapes: each wire type encodes byte for byte as it did when the
// types lived in supervise (the want strings were written from main's
// encoding before the move): shared/DESIGN.md's `status --json` contract
// and every script that reads events or history rely on it.
func TestWireShapes(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 15, 4, 5, 6000, time.UTC)
	for _, tc := range []struct {
		v    any
		want string
	}{
		{Status{Name: "api-app", State: Running, Pid: 123, Restarts: 2, Since: t0, StartedAt: t0, UptimeSeconds: 1.5, LastExit: "exit status 1", Detail: "d", Error: "e", CPUSeconds: 0.25, RSSBytes: 4096, Autostart: true, DroppedBytes: 7, LogError: "disk full", Checks: []health.CheckStatus{{Name: "http", Type: "http", Last: &health.Result{Check: "http", OK: true, Started: t0, Due: t0, Latency: time.Millisecond}, Streak: 1, Failing: true, Passes: 3, Failures: 4}}}, `{"name":"api-app","state":"running","pid":123,"restarts":2,"since":"2026-12-03T15:04:05.000006Z","started_at":"2026-12-03T15:04:05.000006Z","uptime_seconds":1.5,"last_exit":"exit status 1","detail":"d","error":"e","cpu_seconds":0.25,"rss_bytes":4096,"autostart":true,"log_dropped_bytes":7,"log_error":"disk full","checks":[{"name":"http","type":"http","last":{"check":"http","ok":true,"message":"","latency_ns":1000000,"due":"2026-12-03T15:04:05.000006Z","started":"2026-12-03T15:04:05.000006Z"},"streak":1,"failing":true,"passes":3,"failures":4}]}`},
		// issue 14: what a service announces (sd_notify) and its frozen processes.
		{Status{Name: "api-n", State: Running, Pid: 7, StatusText: "serving", Announced: "reloading", StoppedPids: []int{7, 8}}, `{"name":"api-n","state":"running","pid":7,"restarts":0,"since":"0001-01-01T00:00:00Z","uptime_seconds":0,"cpu_seconds":0,"rss_bytes":0,"autostart":false,"status_text":"serving","announced":"reloading","stopped_pids":[7,8]}`},
		{Status{Name: "www-old", State: Fatal}, `{"name":"www-old","state":"fatal","pid":0,"restarts":0,"since":"0001-01-01T00:00:00Z","uptime_seconds":0,"cpu_seconds":0,"rss_bytes":0,"autostart":false}`},
		{Event{Time: t0, Service: "api-app", Kind: "state", From: "starting", State: "running", Check: "http", OK: true, Message: "m", Pid: 9}, `{"time":"2026-12-03T15:04:05.000006Z","service":"api-app","kind":"state","from":"starting","state":"running","check":"http","ok":true,"message":"m","pid":9}`},
		{Event{Time: t0, Service: "a", Kind: "check"}, `{"time":"2026-12-03T15:04:05.000006Z","service":"a","kind":"check"}`},
		{History{Events: []Event{{Time: t0, Service: "a", Kind: "state", State: "running"}}, Checks: []CheckResult{{Time: t0, Check: "http", OK: true, Latency: time.Millisecond, Late: time.Microsecond}}, Samples: []Sample{{Time: t0, CPUSeconds: 1.25, RSSBytes: 1 << 20, Restarts: 3}}}, `{"events":[{"time":"2026-12-03T15:04:05.000006Z","service":"a","kind":"state","state":"running"}],"checks":[{"time":"2026-12-03T15:04:05.000006Z","check":"http","ok":true,"latency_ns":1000000,"late_ns":1000}],"samples":[{"time":"2026-12-03T15:04:05.000006Z","cpu_seconds":1.25,"rss_bytes":1048576,"restarts":3}]}`},
		{History{}, `{"events":null,"checks":null,"samples":null}`},
		{ReloadResult{Added: []string{"a"}, Removed: []string{"b"}, Changed: []string{"c"}, Unchanged: []string{"d"}, Broken: []string{"e"}, Problems: "p"}, `{"added":["a"],"removed":["b"],"changed":["c"],"unchanged":["d"],"broken":["e"],"problems":"p"}`},
		{ReloadResult{}, `{"added":null,"removed":null,"changed":null,"unchanged":null,"broken":null}`},
		{Rotated{Service: "app", File: "/var/log/app.log", Rotated: true, To: "/var/log/app.log.1", Pending: true, Error: "x"}, `{"service":"app","file":"/var/log/app.log","rotated":true,"to":"/var/log/app.log.1","pending":true,"error":"x"}`},
		{Rotated{}, `{"service":"","file":"","rotated":false}`},
		{Stopped, `"stopped"`},
		{Starting, `"starting"`},
		{Running, `"running"`},
		{Backoff, `"backoff"`},
		{Stopping, `"stopping"`},
		{Exited, `"exited"`},
		{Fatal, `"fatal"`},
		{State(9), `"state(9)"`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.want {
			t.Errorf("%T:\n got %s %v\nwant %s", tc.v, b, err, tc.want)
		}
	}
}

// TestStateRoundTrip: every state's name decodes to the state, and a name
// that is none is an error, not a silent zero (stopped).
func TestStateRoundTrip(t *testing.T) {
	for _, s := range States {
		b, _ := s.MarshalText()
		var got State
		if err := got.UnmarshalText(b); err != nil || got != s {
			t.Errorf("%s: decoded %v %v", b, got, err)
		}
	}
	var s State = Running
	if err := s.UnmarshalText([]byte("runnin")); err == nil || s != Running {
		t.Errorf("unknown name: %v, state %v", err, s)
	}
	if len(States) != len(stateNames) {
		t.Errorf("States has %d, names %d", len(States), len(stateNames))
	}
}
