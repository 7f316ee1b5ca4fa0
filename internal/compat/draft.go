package compat

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"upkeep/internal/spec"
)

// Format is the kind of a file that can be imported.
type Format string

const (
	Monit       Format = "monit"
	Upstart     Format = "upstart"
	Supervisord Format = "supervisord"
	Procfile    Format = "procfile"
	Logrotate   Format = "logrotate"
)

// Formats lists the importable formats, for flags and messages.
var Formats = []Format{Monit, Upstart, Supervisord, Procfile, Logrotate}

// Pos is where a directive was read: a file, a line and the directive as
// written there (shortened), for notes.
type Pos struct {
	File string
	Line int
	Text string
	// text makes Text when it is first needed: most directives are
	// translated and never quoted in a note (a large import pays for
	// none of them).
	text func() string
}

// Directive is the directive as written, shortened.
func (p Pos) Directive() string {
	if p.Text == "" && p.text != nil {
		return p.text()
	}
	return p.Text
}

// fixed is p with its directive made.
func (p Pos) fixed() Pos {
	if p.text != nil {
		p.Text, p.text = p.Directive(), nil
	}
	return p
}

func (p Pos) String() string {
	if p.Line > 0 {
		return p.File + ":" + strconv.Itoa(p.Line)
	}
	return p.File
}

// Note is one thing an importer or exporter could not translate as it
// stands: a dropped directive, an approximation, or (Err) a service that
// cannot be written at all.
type Note struct {
	Pos
	Service string // the service it concerns, "" for file-wide notes
	Msg     string
	Err     bool

	str string // String(), made once by Import: it is written twice
}

// String is `file:line: 'directive' msg`, the way compilers place problems.
func (n Note) String() string {
	if n.str != "" {
		return n.str
	}
	return n.format()
}

func (n Note) format() string {
	var b strings.Builder
	b.WriteString(n.Pos.String())
	b.WriteString(": ")
	if n.Err {
		b.WriteString("error: ")
	}
	if t := n.Directive(); t != "" {
		b.WriteString("'" + t + "' ")
	}
	b.WriteString(n.Msg)
	return b.String()
}

// dropped is the message of a directive with no equivalent; why may be "".
func dropped(why string) string {
	if why == "" {
		return "has no equivalent; dropped"
	}
	return "has no equivalent (" + why + "); dropped"
}

// shorten makes a directive fit on a note's line: one line, blanks
// collapsed, at most 72 characters, with the middle elided.
func shorten(s string) string {
	if plainText(s) { // what the loop below would make of it, sooner
		if len(s) > 72 {
			s = s[:50] + " … " + s[len(s)-19:]
		}
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	blank, ascii := false, true
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v' {
			blank = b.Len() > 0
			continue
		}
		if blank {
			b.WriteByte(' ')
			blank = false
		}
		if r < 0x20 || r == 0x7f {
			r = '\uFFFD'
		}
		ascii = ascii && r < 0x80
		b.WriteRune(r)
	}
	s = b.String()
	if ascii {
		if len(s) > 72 {
			s = s[:50] + " … " + s[len(s)-19:]
		}
		return s
	}
	if r := []rune(s); len(r) > 72 {
		s = string(r[:50]) + " … " + string(r[len(r)-19:])
	}
	return s
}

// plainText reports whether s is printable ASCII without runs of blanks,
// which shorten would leave as it is.
func plainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == ' ' && (i == 0 || i == len(s)-1 || s[i+1] == ' ') {
			return false
		}
	}
	return true
}

// Draft is a service being assembled from one or more files. Only the keys
// a file set are written out; everything else keeps upkeep's defaults.
type Draft struct {
	Name     string
	Sources  []string // "file (format)", in the order read
	Comments []string // written at the top of the file: descriptions and the like
	Svc      spec.Service
	CheckAt  []Pos    // where each of Svc.Checks came from
	set      []keyPos // the keys a file set; a dozen or so, where a slice beats a map
	notes    []Note

	// delegate is a monit start program that only asks another init
	// system to start a job (/sbin/start NAME, systemctl start NAME):
	// the job's own definition has to come from that job's file.
	delegate *delegation

	rendered []byte // the TOML, once Import has finished the draft
}

type delegation struct {
	job    string
	system string // upstart | systemd
	at     Pos
	drop   []Pos // the monit lines that only make sense with the delegation (pidfile, stop program)
}

func newDraft(name, source string) *Draft {
	return &Draft{Name: name, Sources: []string{source}, set: make([]keyPos, 0, 16)}
}

// Set records that key (as in service.toml: "user", "restart.limit",
// "env.HOME") was set at p. A later Set of the same key in the same file
// replaces the earlier one, as every format here reads top to bottom.
func (d *Draft) Set(key string, p Pos) { d.setKey(key, p, false) }

// keyPos is a key that is set, where, and whether only inferred.
type keyPos struct {
	key  string
	at   Pos
	weak bool // inferred from what a file leaves out: any file that says otherwise wins
}

func (d *Draft) find(key string) int {
	for i := range d.set {
		if d.set[i].key == key {
			return i
		}
	}
	return -1
}

func (d *Draft) setKey(key string, p Pos, weak bool) {
	if i := d.find(key); i >= 0 {
		d.set[i] = keyPos{key, p, weak}
		return
	}
	d.set = append(d.set, keyPos{key, p, weak})
}

func (d *Draft) weak(key string) bool {
	i := d.find(key)
	return i >= 0 && d.set[i].weak
}

// SetWeak records a key inferred from silence (an upstart job without
// respawn is never restarted): another file that sets it wins.
func (d *Draft) SetWeak(key string, p Pos) { d.setKey(key, p, true) }

// Unset forgets key, for a value that turned out to be unusable.
func (d *Draft) Unset(key string) {
	if i := d.find(key); i >= 0 {
		d.set = append(d.set[:i], d.set[i+1:]...)
	}
}

// IsSet reports whether a file set key.
func (d *Draft) IsSet(key string) bool { return d.find(key) >= 0 }

// At says where key was set.
func (d *Draft) At(key string) Pos {
	if i := d.find(key); i >= 0 {
		return d.set[i].at
	}
	return Pos{}
}

// Note records something about this service that did not translate.
func (d *Draft) Note(p Pos, format string, args ...any) {
	d.notes = append(d.notes, Note{Pos: p, Service: d.Name, Msg: fmt.Sprintf(format, args...)})
}

// Drop records a directive of this service with no equivalent.
func (d *Draft) Drop(p Pos, why string) {
	d.notes = append(d.notes, Note{Pos: p, Service: d.Name, Msg: dropped(why)})
}

// Notes returns what did not translate for this service, in the order found.
func (d *Draft) Notes() []Note { return d.notes }

// AddCheck appends a [[check]] read at p.
func (d *Draft) AddCheck(c spec.Check, p Pos) {
	if d.Svc.Checks == nil {
		d.Svc.Checks, d.CheckAt = make([]spec.Check, 0, 4), make([]Pos, 0, 4)
	}
	d.Svc.Checks = append(d.Svc.Checks, c)
	d.CheckAt = append(d.CheckAt, p)
}

// SetEnv sets one environment variable.
func (d *Draft) SetEnv(k, v string, p Pos) {
	if d.Svc.Env == nil {
		d.Svc.Env = map[string]string{}
	}
	d.Svc.Env[k] = v
	d.Set("env."+k, p)
}

// AddDependency appends to depends_on, once per name.
func (d *Draft) AddDependency(name string, p Pos) {
	for _, n := range d.Svc.DependsOn {
		if n == name {
			return
		}
	}
	d.Svc.DependsOn = append(d.Svc.DependsOn, name)
	d.Set("depends_on", p)
}

// runKeys are how a service runs: they come from one file only, never
// mixed (a monit start program with an upstart job's exec would be two
// services in one).
var runKeys = []string{"command", "script", "start_command", "pidfile", "stop_command"}

// Runs reports whether the draft says what to run.
func (d *Draft) Runs() bool {
	return d.IsSet("command") || d.IsSet("script") || d.IsSet("start_command")
}

// field is one scalar key of service.toml: how to write its value and how
// to copy it from one draft to another.
type field struct {
	key  string
	toml func(s *spec.Service) string
	copy func(dst, src *spec.Service)
}

func mk[T any](key string, p func(*spec.Service) *T, enc func(T) string) field {
	return field{key,
		func(s *spec.Service) string { return enc(*p(s)) },
		func(dst, src *spec.Service) { *p(dst) = *p(src) }}
}

func encDur(d spec.Duration) string { return tomlString(FormatDuration(d.D())) }
func encInt(n int) string           { return fmt.Sprint(n) }
func encBool(b bool) string         { return fmt.Sprint(b) }
func encSize(s spec.Size) string    { return tomlString(s.String()) }

// topFields are written before any table, in this order (env, depends_on
// and the checks are handled on their own).
var topFields = []field{
	mk("version", func(s *spec.Service) *string { return &s.Version }, tomlString),
	mk("command", func(s *spec.Service) *[]string { return &s.Command }, tomlArray),
	mk("script", func(s *spec.Service) *string { return &s.Script }, tomlMultiline),
	mk("start_command", func(s *spec.Service) *[]string { return &s.StartCommand }, tomlArray),
	mk("pidfile", func(s *spec.Service) *string { return &s.PIDFile }, tomlString),
	mk("stop_command", func(s *spec.Service) *[]string { return &s.StopCommand }, tomlArray),
	mk("directory", func(s *spec.Service) *string { return &s.Directory }, tomlString),
	mk("user", func(s *spec.Service) *string { return &s.User }, tomlString),
	mk("group", func(s *spec.Service) *string { return &s.Group }, tomlString),
	mk("env_file", func(s *spec.Service) *string { return &s.EnvFile }, tomlString),
	mk("autostart", func(s *spec.Service) *bool { return &s.Autostart }, encBool),
	mk("ready_after", func(s *spec.Service) *spec.Duration { return &s.ReadyAfter }, encDur),
	mk("ready", func(s *spec.Service) *string { return &s.Ready }, tomlString),
	mk("ready_timeout", func(s *spec.Service) *spec.Duration { return &s.ReadyTimeout }, encDur),
	mk("watchdog", func(s *spec.Service) *spec.Duration { return &s.Watchdog }, encDur),
	mk("umask", func(s *spec.Service) *string { return &s.Umask }, tomlString),
}

// limitsFields are the [limits] table, from upstart's `limit` stanzas.
var limitsFields = []field{
	mk("limits.nofile", func(s *spec.Service) **spec.Limit { return &s.Limits.Nofile }, encLimit),
	mk("limits.nproc", func(s *spec.Service) **spec.Limit { return &s.Limits.Nproc }, encLimit),
	mk("limits.core", func(s *spec.Service) **spec.Limit { return &s.Limits.Core }, encLimit),
}

func encLimit(l *spec.Limit) string {
	b, _ := l.MarshalText()
	if l.Soft == l.Hard && l.Soft != spec.Infinity {
		return string(b) // a plain integer
	}
	return tomlString(string(b))
}

// importUmask is an octal umask as upstart and supervisord write it (022,
// 0027) in the form service.toml's umask takes ("0022"); ok is false for
// anything else.
func importUmask(s string) (string, bool) {
	if s == "" || len(s) > 4 || strings.Trim(s, "01234567") != "" {
		return "", false
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return "", false
	}
	return fmt.Sprintf("%04o", n), true
}

// importLimit is upstart's `limit RESOURCE SOFT HARD` values ("unlimited"
// for none) as a spec.Limit; ok is false for anything else, or a soft
// limit above the hard one.
func importLimit(soft, hard string) (*spec.Limit, bool) {
	v := func(s string) (uint64, bool) {
		if s == "unlimited" || s == "infinity" {
			return spec.Infinity, true
		}
		n, err := strconv.ParseUint(s, 10, 64)
		return n, err == nil && n != spec.Infinity
	}
	s, ok1 := v(soft)
	h, ok2 := v(hard)
	if !ok1 || !ok2 || s > h {
		return nil, false
	}
	return &spec.Limit{Soft: s, Hard: h}, true
}

var restartFields = []field{
	mk("restart.policy", func(s *spec.Service) *spec.Policy { return &s.Restart.Policy }, func(p spec.Policy) string { return tomlString(string(p)) }),
	mk("restart.backoff", func(s *spec.Service) *spec.Duration { return &s.Restart.Backoff }, encDur),
	mk("restart.max_backoff", func(s *spec.Service) *spec.Duration { return &s.Restart.MaxBackoff }, encDur),
	mk("restart.stable_after", func(s *spec.Service) *spec.Duration { return &s.Restart.StableAfter }, encDur),
	mk("restart.limit", func(s *spec.Service) *int { return &s.Restart.Limit }, encInt),
	mk("restart.window", func(s *spec.Service) *spec.Duration { return &s.Restart.Window }, encDur),
}

var stopFields = []field{
	mk("stop.signal", func(s *spec.Service) *string { return &s.Stop.Signal }, tomlString),
	mk("stop.timeout", func(s *spec.Service) *spec.Duration { return &s.Stop.Timeout }, encDur),
}

var logFields = []field{
	mk("log.when", func(s *spec.Service) *string { return &s.Log.When }, tomlString),
	mk("log.size", func(s *spec.Service) *spec.Size { return &s.Log.Size }, encSize),
	mk("log.minsize", func(s *spec.Service) *spec.Size { return &s.Log.MinSize }, encSize),
	mk("log.rotate", func(s *spec.Service) *int { return &s.Log.Rotate }, encInt),
	mk("log.compress", func(s *spec.Service) *bool { return &s.Log.Compress }, encBool),
	mk("log.delaycompress", func(s *spec.Service) *bool { return &s.Log.DelayCompress }, encBool),
	mk("log.notifempty", func(s *spec.Service) *bool { return &s.Log.NotIfEmpty }, encBool),
	mk("log.missingok", func(s *spec.Service) *bool { return &s.Log.MissingOK }, encBool),
	mk("log.dateext", func(s *spec.Service) *bool { return &s.Log.DateExt }, encBool),
	mk("log.dateformat", func(s *spec.Service) *string { return &s.Log.DateFormat }, tomlString),
	mk("log.dateyesterday", func(s *spec.Service) *bool { return &s.Log.DateYesterday }, encBool),
	mk("log.maxage", func(s *spec.Service) *int { return &s.Log.MaxAge }, encInt),
}

func allFields() [][]field {
	return [][]field{topFields, restartFields, stopFields, logFields, limitsFields}
}

// merge folds src (a later file about the same service) into d. What d
// already sets stays; a different value from src is reported, not
// silently lost. How the service runs comes from one file as a whole.
func (d *Draft) merge(src *Draft) {
	d.Sources = append(d.Sources, src.Sources...)
	d.Comments = append(d.Comments, src.Comments...)
	d.notes = append(d.notes, src.notes...)
	conflict := func(key string, kept Pos) {
		p := src.At(key)
		d.Note(p, "conflicts with %s, which is kept", kept)
	}
	takeRun := !d.Runs() && src.Runs()
	for _, group := range allFields() {
		for _, f := range group {
			if !src.IsSet(f.key) {
				continue
			}
			isRun := contains(runKeys, f.key)
			switch {
			case isRun && takeRun:
				f.copy(&d.Svc, &src.Svc)
				d.Set(f.key, src.At(f.key))
			case isRun && d.Runs():
				if !d.IsSet(f.key) || f.toml(&d.Svc) != f.toml(&src.Svc) {
					d.Note(src.At(f.key), "superseded: the service already runs as %s says", d.runOrigin())
				}
			case !d.IsSet(f.key) || d.weak(f.key) && !src.weak(f.key):
				f.copy(&d.Svc, &src.Svc)
				d.Set(f.key, src.At(f.key))
			case src.weak(f.key):
			case f.toml(&d.Svc) != f.toml(&src.Svc):
				conflict(f.key, d.At(f.key))
			}
		}
	}
	if takeRun {
		for _, k := range runKeys { // the runner's pidfile or stop command belong to the old way of running
			if d.IsSet(k) && !src.IsSet(k) {
				d.Note(d.At(k), "dropped: %s runs the service without it", src.runOrigin())
				d.Unset(k)
			}
		}
	}
	for _, k := range sortedKeys(src.Svc.Env) {
		if !src.IsSet("env." + k) {
			continue
		}
		if old, ok := d.Svc.Env[k]; ok && d.IsSet("env."+k) {
			if old != src.Svc.Env[k] {
				conflict("env."+k, d.At("env."+k))
			}
			continue
		}
		d.SetEnv(k, src.Svc.Env[k], src.At("env."+k))
	}
	for _, dep := range src.Svc.DependsOn {
		d.AddDependency(dep, src.At("depends_on"))
	}
	for i, c := range src.Svc.Checks {
		d.AddCheck(c, src.CheckAt[i])
	}
	for _, f := range src.Svc.LogFiles {
		dup := false
		for _, g := range d.Svc.LogFiles {
			dup = dup || g.Path == f.Path
		}
		if dup {
			d.Note(src.At("log.file"), "%s is rotated by %s already; dropped", f.Path, d.At("log.file"))
			continue
		}
		if !d.IsSet("log.file") {
			d.Set("log.file", src.At("log.file"))
		}
		d.Svc.LogFiles = append(d.Svc.LogFiles, f)
	}
	if d.delegate == nil {
		d.delegate = src.delegate
	}
}

// runOrigin names the file that says how the service runs.
func (d *Draft) runOrigin() string {
	for _, k := range []string{"command", "script", "start_command"} {
		if d.IsSet(k) {
			return d.At(k).String()
		}
	}
	return "?"
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// FormatDuration writes d the way a person would in service.toml: "30s",
// "5m", "1h30m", "250ms", never "1m0s".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		n time.Duration
		s string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if d >= u.n {
			if u.n == time.Second && d%time.Second != 0 {
				break // 1.5s reads better than 1s500ms
			}
			fmt.Fprintf(&b, "%d%s", d/u.n, u.s)
			d %= u.n
		}
		if d == 0 {
			return b.String()
		}
	}
	return b.String() + d.String()
}

var nameBad = regexp.MustCompile(`[^a-z0-9._-]+`)

// nameBytes reports whether s has only bytes nameBad leaves alone, as
// most names have: they need no regexp.
func nameBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// serviceName makes a service name of another format's name the way a
// person would: lower case, other characters as '-'. The result passes
// spec.CheckName, or the error says why not.
func serviceName(raw string) (string, error) {
	n := raw
	if !nameBytes(raw) {
		n = nameBad.ReplaceAllString(strings.ToLower(raw), "-")
	}
	n = strings.Trim(n, "._-")
	for strings.Contains(n, "..") {
		n = strings.ReplaceAll(n, "..", ".")
	}
	if len(n) > 64 {
		n = strings.TrimRight(n[:64], "._-")
	}
	if err := spec.CheckName(n); err != nil {
		return "", fmt.Errorf("%q cannot be made a service name", shorten(raw))
	}
	return n, nil
}
