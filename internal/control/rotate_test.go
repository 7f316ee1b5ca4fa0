package control

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"upkeep/internal/api"
)

// rotator is a Backend that only rotates; any other call panics (the
// embedded nil Backend).
type rotator struct {
	Backend
	got [][]string
}

func (r *rotator) Rotate(names []string) ([]api.Rotated, error) {
	r.got = append(r.got, names)
	if len(names) == 1 && names[0] == "nobody" {
		return nil, api.ErrUnknown
	}
	return []api.Rotated{{Service: "app", File: "/var/log/app.log", Rotated: true, To: "/var/log/app.log.1"}}, nil
}

// TestRotateEndpoint: POST /v1/rotate through the client, over a real unix
// socket: names or all, never both or neither.
func TestRotateEndpoint(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "upkeep.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	b := &rotator{}
	srv := &http.Server{Handler: Handler(b)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c := NewClient(sock)
	ctx := context.Background()

	res, err := c.Rotate(ctx, []string{"app"}, false)
	if err != nil || len(res) != 1 || res[0].To != "/var/log/app.log.1" {
		t.Fatalf("Rotate app: %+v %v", res, err)
	}
	if _, err := c.Rotate(ctx, nil, true); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.got, [][]string{{"app"}, nil}) {
		t.Errorf("backend asked for %q", b.got)
	}
	for _, c2 := range []struct {
		names []string
		all   bool
		want  string
		is    error
	}{
		{nil, false, "name services, or all", ErrBadRequest},
		{[]string{"app"}, true, "names or all, not both", ErrBadRequest},
		{[]string{"../etc"}, false, "service name", ErrBadRequest},
		{[]string{"nobody"}, false, "unknown service", ErrUnknown},
	} {
		if _, err := c.Rotate(ctx, c2.names, c2.all); !errors.Is(err, c2.is) || !strings.Contains(err.Error(), c2.want) {
			t.Errorf("Rotate(%q, %v): %v, want %v …%s", c2.names, c2.all, err, c2.is, c2.want)
		}
	}
}
