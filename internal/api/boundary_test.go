package api

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBoundary: outside the daemon, nothing reaches into supervise; what
// crosses the socket is api's. The one place that builds the daemon,
// cmd/upkeep/daemon.go, may; tests may (they run the real daemon).
func TestBoundary(t *testing.T) {
	allowed := map[string]bool{"cmd/upkeep/daemon.go": true}
	checked := 0
	for _, dir := range []string{"internal/control", "internal/host", "internal/metrics", "internal/dashboard", "cmd/upkeep"} {
		files, err := filepath.Glob(filepath.Join("..", "..", dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			rel := dir + "/" + filepath.Base(f)
			if strings.HasSuffix(f, "_test.go") || allowed[rel] {
				continue
			}
			ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			for _, imp := range ast.Imports {
				if p, _ := strconv.Unquote(imp.Path.Value); p == "upkeep/internal/supervise" {
					t.Errorf("%s imports supervise: the wire types are api's, the calls control's", rel)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d files checked", checked)
	}
}
