package spec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/BurntSushi/toml"
	"golang.org/x/sys/unix"
)

// FileName is the name of a service's definition inside its directory.
const FileName = "service.toml"

// Prefixes are the conventional name prefixes of the guide.
var Prefixes = []string{"www-", "api-", "service-"}

// nameChars is ^[a-z0-9][a-z0-9._-]*$ without a regexp: an import
// checks thousands of names.
func nameChars(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')) {
			return false
		}
	}
	return true
}

// CheckName says why a string is not a safe service name, or nil.
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("empty service name")
	case len(name) > 64:
		return fmt.Errorf("service name %q is longer than 64 characters", name)
	case !nameChars(name) || strings.Contains(name, ".."):
		return fmt.Errorf("service name %q must be a-z 0-9 - _ . starting with a letter or digit", name)
	}
	return nil
}

// HasPrefix reports whether name carries one of the conventional prefixes.
func HasPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Parse reads one service.toml. root is the host root that absolute paths in
// the file are relative to; dir the service's directory, whose base name is
// the service's name. The Service is nil when any problem is an error.
func Parse(root, dir string, data []byte) (*Service, Problems) {
	file := filepath.Join(dir, FileName)
	text := string(data)
	s := Defaults()
	var ps Problems
	add := func(key, format string, args ...any) {
		line, col := 0, 0
		if key != "" {
			line, col = locate(text, key)
		}
		ps = append(ps, Problem{File: file, Line: line, Col: col, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	var typed Problems // values of the wrong type, left out of s
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&s)
	if err != nil {
		// One value of the wrong type must not hide the file's other
		// problems: find them all, leave them out, and read the rest.
		var pruned []byte
		var ok bool
		if pruned, typed, ok = retype(file, text); !ok {
			return nil, append(typed, decodeProblem(file, text, err))
		}
		s = Defaults()
		if md, err = toml.NewDecoder(bytes.NewReader(pruned)).Decode(&s); err != nil {
			return nil, sortProblems(append(typed, decodeProblem(file, text, err)))
		}
		data = pruned
	}
	logFiles := false
	for _, k := range md.Undecoded() {
		if isLogFileKey(k) {
			logFiles = true // decodeLogFiles's
			continue
		}
		msg := "unknown key"
		if alt := Suggest(k[len(k)-1], knownKeys(k[:len(k)-1])); alt != "" {
			msg += fmt.Sprintf("; did you mean %q?", alt)
		}
		add(k.String(), "%s", msg)
	}
	// The decoder silently skips a value that is not a table where a map
	// belongs (env = "A=1"), while a table, even {}, always makes the map.
	if md.IsDefined("env") && s.Env == nil {
		add("env", "must be a table, such as { NAME = \"value\" }")
	}
	if md.IsDefined("capabilities") && s.Capabilities == nil {
		s.Capabilities = []string{} // set, to none: not the same as unset for root
	}
	s.validate(root, dir, func(i int) bool { return graceSet(md, i) }, add)
	if logFiles { // a second decode only for the files that declare some
		s.LogFiles = decodeLogFiles(root, data, s.Log, func(key, format string, args ...any) { add("log."+key, format, args...) })
	}
	if len(typed) > 0 {
		// A key that was set, but wrongly, is not missing as well:
		// "command is required" would only repeat its type problem.
		bad := map[string]bool{}
		for _, p := range typed {
			bad[p.Key] = true
		}
		ps = slices.DeleteFunc(ps, func(p Problem) bool { return bad[p.Key] })
		ps = append(ps, typed...)
	}
	ps = sortProblems(ps)
	if len(ps.Errors()) > 0 {
		return nil, ps
	}
	return &s, ps
}

// sortProblems orders problems by where they are, as a compiler lists them.
func sortProblems(ps Problems) Problems {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Col < ps[j].Col
	})
	return ps
}

// retype is Parse's second reading of a file the decoder refused: the
// problem of every value of the wrong type (types.go), each at its value,
// and the file without those values, to be decoded and validated as usual.
// ok is false when the refusal was not a type problem (a syntax error),
// which leaves the decoder's own error as the one problem.
func retype(file, text string) (pruned []byte, ps Problems, ok bool) {
	var raw map[string]any
	if _, err := toml.Decode(text, &raw); err != nil {
		return nil, nil, false
	}
	typeProblems(reflect.TypeFor[Service](), raw, "", func(key, msg string) {
		line, col := locate(text, key)
		line, col = valuePos(text, line, col)
		ps = append(ps, Problem{File: file, Line: line, Col: col, Key: key, Msg: msg})
	})
	if len(ps) == 0 {
		return nil, nil, false
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(raw); err != nil {
		return nil, ps, false
	}
	return buf.Bytes(), ps, true
}

// Validate applies Parse's rules to a definition built in memory, as an
// importer builds one: Defaults() with the fields a file would set. What
// it accepts, Parse accepts once the definition is written out as TOML
// (compat's round-trip tests and fuzzers hold the two to it). Like Parse
// it fills in defaults and resolves paths; a check's zero grace counts as
// not set. Its problems name a key but no line: there is no text yet.
func Validate(root, dir string, s *Service) Problems {
	var ps Problems
	file := filepath.Join(dir, FileName)
	s.validate(root, dir, func(i int) bool { return s.Checks[i].Grace != 0 }, func(key, format string, args ...any) {
		ps = append(ps, Problem{File: file, Key: key, Msg: fmt.Sprintf(format, args...)})
	})
	checkLogFiles(root, s.LogFiles, s.Log, func(key, format string, args ...any) {
		ps = append(ps, Problem{File: file, Key: "log." + key, Msg: fmt.Sprintf(format, args...)})
	})
	return ps
}

// validate holds the rules of a definition, whatever it was read from.
// graceSet says whether the i-th check sets its grace; add reports a
// problem at a key ("" for the file as a whole).
func (s *Service) validate(root, dir string, graceSet func(i int) bool, add func(key, format string, args ...any)) {
	s.Dir, s.File = dir, filepath.Join(dir, FileName)
	name := filepath.Base(dir)
	if err := CheckName(name); err != nil {
		add("", "directory name: %v", err)
	} else if s.Name != "" && s.Name != name {
		add("name", "%q differs from the directory's name %q", s.Name, name)
	}
	s.Name = name

	runs := 0
	for _, set := range []bool{len(s.Command) > 0, s.Script != "", len(s.StartCommand) > 0} {
		if set {
			runs++
		}
	}
	switch {
	case runs == 0:
		add("command", "one of command, script or start_command is required")
	case runs > 1:
		add("command", "set only one of command, script and start_command")
	}
	for _, k := range []struct {
		key  string
		argv []string
	}{{"command", s.Command}, {"start_command", s.StartCommand}, {"stop_command", s.StopCommand}} {
		if len(k.argv) > 0 && strings.TrimSpace(k.argv[0]) == "" {
			add(k.key, "the program (first element) is empty")
		}
		for _, a := range k.argv {
			if strings.IndexByte(a, 0) >= 0 {
				add(k.key, "contains a NUL byte")
			}
		}
	}
	if len(s.StartCommand) > 0 && s.PIDFile == "" {
		add("start_command", "needs pidfile, to follow the process it starts")
	}
	for key, p := range map[string]*string{"directory": &s.Directory, "env_file": &s.EnvFile, "pidfile": &s.PIDFile} {
		if *p == "" {
			continue
		}
		abs, err := Resolve(root, dir, *p)
		if err != nil {
			add(key, "%v", err)
			continue
		}
		*p = abs
	}
	for k, v := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.IndexByte(v, 0) >= 0 {
			add("env", "invalid variable %q", k)
		}
	}
	for _, dep := range s.DependsOn {
		if err := CheckName(dep); err != nil {
			add("depends_on", "%v", err)
		} else if dep == name {
			add("depends_on", "a service cannot depend on itself")
		}
	}
	switch s.Restart.Policy {
	case Always, OnFailure, Never:
	default:
		add("restart.policy", "%q is not one of always, on-failure, never", s.Restart.Policy)
	}
	if s.Restart.Limit < 1 {
		add("restart.limit", "must be at least 1")
	}
	if s.Restart.Backoff > s.Restart.MaxBackoff {
		add("restart.backoff", "is longer than restart.max_backoff (%v)", s.Restart.MaxBackoff.D())
	}
	if s.Restart.Window <= 0 {
		add("restart.window", "must be longer than 0")
	}
	if _, err := ParseSignal(s.Stop.Signal); err != nil {
		add("stop.signal", "%v", err)
	}
	if err := checkUserName(s.User); err != nil {
		add("user", "%v", err)
	}
	if err := checkUserName(s.Group); err != nil {
		add("group", "%v", err)
	}
	s.checkReady(add)
	s.Log.check(func(key, format string, args ...any) { add("log."+key, format, args...) })
	s.Privileges.check(add)
	s.Test.check(add)
	for i, c := range s.Copy {
		cp, err := cleanCopy(c)
		if err != nil {
			add("copy", "%v", err)
		}
		s.Copy[i] = cp
	}
	if s.KeepReleases < 0 {
		add("keep_releases", "must be at least 1 (or 0 for the host's setting)")
	}
	names := map[string]bool{}
	for i := range s.Checks {
		c := &s.Checks[i]
		c.defaults(i, graceSet(i))
		at := func(key, format string, args ...any) {
			add(strings.Replace(key, "check.", fmt.Sprintf("check[%d].", i), 1), format, args...)
		}
		c.validate(root, dir, at)
		if names[c.Name] {
			at("check.name", "two checks are named %q", c.Name)
		}
		names[c.Name] = true
	}
}

// graceSet reports whether the i-th [[check]] sets grace itself ("0s"
// included), since the decoder leaves the zero value either way.
func graceSet(md toml.MetaData, i int) bool {
	n := -1
	for _, k := range md.Keys() {
		if len(k) == 1 && k[0] == "check" {
			n++ // each [[check]] header is a key of its own
		}
		if n == i && len(k) == 2 && k[0] == "check" && k[1] == "grace" {
			return true
		}
	}
	return false
}

// cleanCopy turns a copy entry ("etc/x.conf" or "/etc/x.conf") into its
// slash-separated form beneath the root.
func cleanCopy(p string) (string, error) {
	t := strings.Trim(p, "/")
	if t == "" || strings.IndexByte(t, 0) >= 0 {
		return p, fmt.Errorf("%q is not a path beneath the root", p)
	}
	for _, c := range strings.Split(t, "/") {
		if c == ".." {
			return p, fmt.Errorf("%q has a .. component", p)
		}
	}
	return filepath.ToSlash(filepath.Clean(t)), nil
}

func checkUserName(u string) error {
	if strings.ContainsAny(u, ":/\x00\n ") {
		return fmt.Errorf("%q is not a user or group name", u)
	}
	return nil
}

// Resolve turns a path from a service definition into an absolute path on
// the host: relative paths are relative to the service's directory, absolute
// ones to the root. The result never leaves the root.
func Resolve(root, dir, p string) (string, error) {
	var abs string
	if filepath.IsAbs(p) {
		abs = filepath.Join(root, p)
	} else {
		abs = filepath.Join(dir, p)
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("path %q leaves the root", p)
	}
	return abs, nil
}

var lastKeyRE = regexp.MustCompile(`last key "([^"]+)"`)

// decodeProblem turns a toml error into a positioned problem.
func decodeProblem(file, text string, err error) Problem {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := pe.Message
		// The decoder's own messages repeat the position; keep the substance.
		msg = strings.TrimPrefix(msg, "toml: ")
		line, col := pe.Position.Line, max(pe.Position.Col, 1)
		// The decoder's Line already counts a newline it has just read
		// and its Col is one off at the start of a line; the byte offset
		// is right, so place the problem by that.
		if off := pe.Position.Start; line > 0 && off >= 0 && off <= len(text) {
			line = 1 + strings.Count(text[:off], "\n")
			col = off - strings.LastIndexByte(text[:off], '\n')
		}
		return Problem{File: file, Line: line, Col: col, Key: pe.LastKey, Msg: msg}
	}
	msg := err.Error()
	key := ""
	if m := lastKeyRE.FindStringSubmatch(msg); m != nil {
		key = m[1]
	}
	if i := strings.Index(msg, "): "); i >= 0 {
		msg = msg[i+3:]
	}
	msg = strings.TrimPrefix(msg, "toml: ")
	line, col := 1, 1
	if key != "" {
		line, col = locate(text, key)
	}
	return Problem{File: file, Line: line, Col: col, Key: key, Msg: msg}
}

// ParseSignal accepts "TERM", "SIGTERM" or a number.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	up := strings.ToUpper(s)
	if !strings.HasPrefix(up, "SIG") {
		up = "SIG" + up
	}
	if sig := unix.SignalNum(up); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// Load reads the service in dir (a directory holding service.toml).
func Load(root, dir string) (*Service, Problems) {
	file := filepath.Join(dir, FileName)
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, Problems{{File: file, Msg: errors.Unwrap(err).Error()}}
	}
	return Parse(root, dir, data)
}
