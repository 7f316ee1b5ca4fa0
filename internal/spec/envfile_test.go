package spec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeEnvFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadEnvFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    map[string]string
	}{
		{"empty file", "", map[string]string{}},
		{"plain", "A=1\nB=two words\n", map[string]string{"A": "1", "B": "two words"}},
		{"no final newline", "A=1", map[string]string{"A": "1"}},
		{"spaces around", "  A = 1  \n\tB\t=\t2\t", map[string]string{"A": "1", "B": "2"}},
		{"comments and blank lines", "# comment\n\n   # indented comment\nA=1\n\n", map[string]string{"A": "1"}},
		{"hash inside a value is kept", "A=x # not a comment\nB=#x", map[string]string{"A": "x # not a comment", "B": "#x"}},
		{"export prefix", "export A=1\n  export B=\"2\"", map[string]string{"A": "1", "B": "2"}},
		{"a variable named export", "export=1", map[string]string{"export": "1"}},
		{"empty value", "A=\nB=\"\"\nC=''", map[string]string{"A": "", "B": "", "C": ""}},
		{"equals in the value", "URL=postgres://u:p@h/db?sslmode=disable&a=b", map[string]string{"URL": "postgres://u:p@h/db?sslmode=disable&a=b"}},
		{"double quotes with escapes", `A="a b\n\tc\"d\\"`, map[string]string{"A": "a b\n\tc\"d\\"}},
		{"double quotes keep spaces", `A="  padded  "`, map[string]string{"A": "  padded  "}},
		{"single quotes are literal", `A='a\nb "c" $HOME'`, map[string]string{"A": `a\nb "c" $HOME`}},
		{"no expansion", "A=$HOME/x", map[string]string{"A": "$HOME/x"}},
		{"unbalanced quote kept as written", "A=\"abc\nB='x\nC=a\"b\"", map[string]string{"A": `"abc`, "B": "'x", "C": `a"b"`}},
		{"mixed quotes kept as written", `A="x'`, map[string]string{"A": `"x'`}},
		{"a lone quote", `A="`, map[string]string{"A": `"`}},
		{"later wins", "A=1\nA=2", map[string]string{"A": "2"}},
		{"CRLF", "A=1\r\nB=\"2\"\r\n", map[string]string{"A": "1", "B": "2"}},
		{"lower case and digits", "node_env=production\nV1=x", map[string]string{"node_env": "production", "V1": "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadEnvFile(writeEnvFile(t, tt.content))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// Bad lines are refused with file:line:col, and nothing is returned: a
// half-read environment would start the service wrongly.
func TestReadEnvFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string // after the path
	}{
		{"no equals sign", "A=1\n# ok\nJUST_A_WORD\n", ":3:1: want KEY=VALUE"},
		{"empty name", "=value", ":1:1: want KEY=VALUE"},
		{"export without a name", "export =1", ":1:1: want KEY=VALUE"},
		{"space in the name", "MY VAR=1", ":1:1: want KEY=VALUE"},
		{"tab in the name", "MY\tVAR=1", ":1:1: want KEY=VALUE"},
		{"quoted name", "\"A\"=1", ":1:1: want KEY=VALUE"},
		{"single-quoted name", "'A'=1", ":1:1: want KEY=VALUE"},
		{"NUL in the name", "A\x00=1", ":1:1: want KEY=VALUE"},
		{"bad escape", `A="\q"`, ":1:3: bad quoted value"},
		{"bad escape after export and spaces", "\n  export  B =  \"\\q\"", ":2:16: bad quoted value"},
		{"inner unescaped quote", `A="a"b"`, ":1:3: bad quoted value"},
		{"escaped NUL", `A="x\x00"`, ":1:3: value holds a NUL byte"},
		{"raw NUL", "A=x\x00y", ":1:3: value holds a NUL byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeEnvFile(t, tt.content)
			got, err := ReadEnvFile(path)
			if err == nil || err.Error() != path+tt.want {
				t.Errorf("got %q, %v\nwant error %s", got, err, path+tt.want)
			}
			if got != nil {
				t.Errorf("a partial environment was returned: %q", got)
			}
		})
	}
}

func TestReadEnvFileMissing(t *testing.T) {
	_, err := ReadEnvFile(filepath.Join(t.TempDir(), "nope.env"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want fs.ErrNotExist", err)
	}
}

func TestReadEnvFileLongLine(t *testing.T) {
	long := strings.Repeat("x", 512<<10)
	got, err := ReadEnvFile(writeEnvFile(t, "A="+long+"\n"))
	if err != nil || got["A"] != long {
		t.Errorf("a 512 KiB value: %v", err)
	}
	path := writeEnvFile(t, "A="+long+long+"\n")
	if _, err := ReadEnvFile(path); err == nil || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("a line over 1 MiB: got %v", err)
	}
}
