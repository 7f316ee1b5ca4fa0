package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The usage errors in the operator's words, in-process (test/ drives the
// built binary through the same table's cases).
func TestUsageErrors(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "var/www/www-hello")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "service.toml"), []byte("command = [\"/bin/true\"]\n"), 0o644)
	for _, tc := range []struct {
		args  []string
		msg   string
		usage bool
	}{
		{[]string{"stauts"}, `unknown command "stauts"; did you mean "status"?`, true},
		{[]string{"frobnicate"}, `unknown command "frobnicate" (upkeep --help lists them)`, true},
		{[]string{"image", "lst"}, `image: unknown command "lst"; did you mean "list"?`, true},
		{[]string{"logs", "www-hello", "-n", "abc"}, `invalid value "abc" for -n: not a number`, true},
		{[]string{"logs", "www-hello", "--lines", "abc"}, `invalid value "abc" for -n: not a number`, true},
		{[]string{"restart", "x", "--timeout", "soon"}, `invalid value "soon" for --timeout: not a duration such as "500ms", "5s" or "1m"`, true},
		{[]string{"status", "--jsno"}, `status: unknown flag --jsno; did you mean --json?`, true},
		{[]string{"status", "--rot", "/"}, `status: unknown flag --rot; did you mean --root?`, true}, // inherited flags too
		{[]string{"--root"}, `flag needs an argument: --root`, true},
		{[]string{"logs", "www-helo"}, `logs: www-helo: no logs under ` + root + `/var/log; did you mean "www-hello"?`, false},
	} {
		cmd := rootCommand()
		cmd.SetArgs(append([]string{"--root", root}, tc.args...))
		cmd.SetOut(new(discard))
		cmd.SetErr(new(discard))
		ran, err := cmd.ExecuteC()
		if err == nil {
			t.Errorf("%q: no error", tc.args)
			continue
		}
		err = suggestName(cmd, ran, explain(cmd, err))
		var ue usageError
		if err.Error() != tc.msg || errors.As(err, &ue) != tc.usage {
			t.Errorf("%q:\n got %q (usage %v)\nwant %q (usage %v)", tc.args, err, errors.As(err, &ue), tc.msg, tc.usage)
		}
	}
}

type discard struct{}

func (*discard) Write(p []byte) (int, error) { return len(p), nil }
