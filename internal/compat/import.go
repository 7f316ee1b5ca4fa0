package compat

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

// Options are what an importer may use besides the file it is given.
type Options struct {
	// ReadFile and Glob follow includes (monit's include, supervisord's
	// [include]); when nil, an include is reported and not followed.
	ReadFile func(name string) ([]byte, error)
	Glob     func(pattern string) ([]string, error)
	// Validate checks every service with spec.Validate, the rules of
	// the daemon's loader, and keeps back any that does not pass. The
	// importers already drop every value those rules refuse, so this is
	// a second line of defence for what is about to be written. It
	// checks the service in memory: checkValid, in every test and fuzzer,
	// holds spec.Parse of the written TOML to the same result.
	Validate bool
}

// Input is one file to import; Format "" means detect it.
type Input struct {
	Path   string
	Data   []byte
	Format Format
}

// Result is what an import produced: the services that can be written
// (each one passes spec.Validate), and every note, errors included,
// in file and line order.
type Result struct {
	Services []*Draft
	Notes    []Note
}

// Errors returns the notes that kept a service from being written.
func (r *Result) Errors() []Note {
	var out []Note
	for _, n := range r.Notes {
		if n.Err {
			out = append(out, n)
		}
	}
	return out
}

// Parse reads one file of a known format.
func Parse(f Format, file string, data []byte, opt Options) ([]*Draft, []Note) {
	switch f {
	case Monit:
		return ParseMonit(file, data, opt)
	case Upstart:
		return ParseUpstart(file, data)
	case Supervisord:
		return ParseSupervisord(file, data, opt)
	case Procfile:
		return ParseProcfile(file, data)
	case Logrotate:
		return ParseLogrotate(file, data)
	}
	return nil, []Note{{Pos: Pos{File: file}, Msg: fmt.Sprintf("unknown format %q", f), Err: true}}
}

var (
	supervisordRE = regexp.MustCompile(`(?m)^[ \t]*\[(program|supervisord|supervisorctl|include|group|eventlistener|fcgi-program|unix_http_server|inet_http_server|rpcinterface)[:\]]`)
	monitRE       = regexp.MustCompile(`(?mi)^[ \t]*(check[ \t]+(process|host|file|fifo|filesystem|directory|system|program|network)[ \t]|set[ \t]+daemon[ \t])`)
	logrotateRE   = regexp.MustCompile(`(?m)^[ \t]*["']?[/*~][^{}\n]*\{[ \t]*$`)
	upstartRE     = regexp.MustCompile(`(?m)^[ \t]*(exec|script|start on|stop on|respawn|description|setuid|setgid|chdir|env|pre-start|post-stop|post-start|pre-stop|task|manual|instance|console|expect|kill timeout|kill signal|normal exit|author|emits)\b`)
	procfileRE    = regexp.MustCompile(`^[A-Za-z0-9_-]+:[ \t]*\S`)
)

// Detect tells a file's format by its name and contents.
func Detect(file string, data []byte) (Format, error) {
	base := filepath.Base(file)
	switch {
	case base == "Procfile" || strings.HasPrefix(base, "Procfile."):
		return Procfile, nil
	case matchLines(supervisordRE, data, "["):
		return Supervisord, nil
	// (?i) folds ſ (0xc5 0xbf) to s.
	case matchLines(monitRE, data, "cCsS\xc5") || base == "monitrc":
		return Monit, nil
	case matchLines(logrotateRE, data, `"'/*~`):
		return Logrotate, nil
	case matchLines(upstartRE, data, "abcdeikmnprst"):
		return Upstart, nil
	}
	lines, all := 0, true
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines++
		all = all && procfileRE.MatchString(l)
	}
	if lines > 0 && all {
		return Procfile, nil
	}
	return "", fmt.Errorf("%s: cannot tell the format (give --format %s)", file, strings.Join(formatNames(), "|"))
}

// matchLines is re.Match(data) for the patterns above, each a line that
// starts with blanks and then one of the bytes first: only such lines
// are given to the regexp. Scanning 3 MB with it took 45 ms.
func matchLines(re *regexp.Regexp, data []byte, first string) bool {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		k := 0
		for k < len(line) && (line[k] == ' ' || line[k] == '\t') {
			k++
		}
		if k < len(line) && strings.IndexByte(first, line[k]) >= 0 && re.Match(line) {
			return true
		}
	}
	return false
}

func formatNames() []string {
	out := make([]string, len(Formats))
	for i, f := range Formats {
		out[i] = string(f)
	}
	return out
}

// Import reads the inputs, merges what they say about the same service
// (the guide's monit stanza and upstart job become one service.toml) and
// checks each result with spec.Validate.
func Import(inputs []Input, opt Options) *Result {
	r := &Result{}
	var drafts []*Draft
	order := map[string]int{}
	for i, in := range inputs {
		order[in.Path] = i
		f := in.Format
		if f == "" {
			var err error
			if f, err = Detect(in.Path, in.Data); err != nil {
				r.Notes = append(r.Notes, Note{Pos: Pos{File: in.Path}, Msg: err.Error(), Err: true})
				continue
			}
		}
		ds, notes := Parse(f, in.Path, in.Data, opt)
		drafts = append(drafts, ds...)
		r.Notes = append(r.Notes, notes...)
	}
	merged := mergeDrafts(drafts)
	ok := make([]bool, len(merged))
	bad := make([]spec.Problems, len(merged))
	// Each service is finished, rendered and read back on its own, on
	// every core.
	parallel(len(merged), func(i int) {
		d := merged[i]
		ok[i] = finish(d)
		// Each note is written twice, in the file and on stderr: it is
		// made once, here, on every core.
		for j := range d.notes {
			n := &d.notes[j]
			n.Pos = n.Pos.fixed()
			n.str = n.format()
		}
		if !ok[i] {
			return
		}
		d.rendered = d.render()
		if opt.Validate {
			svc := services.Get().(*spec.Service)
			*svc = d.service(svc.Checks[:0])
			bad[i] = spec.Validate("/", "/"+paths.ServiceRel(d.Name), svc).Errors()
			ok[i] = len(bad[i]) == 0
			services.Put(svc)
		}
	})
	n := len(r.Notes)
	for _, d := range merged {
		n += len(d.notes)
	}
	r.Notes = slices.Grow(r.Notes, n-len(r.Notes))
	r.Services = make([]*Draft, 0, len(merged))
	for i, d := range merged {
		if ok[i] {
			r.Services = append(r.Services, d)
		}
		r.Notes = append(r.Notes, d.notes...)
		if len(bad[i]) > 0 {
			// An importer's bug: reported, and the service not written.
			r.Notes = append(r.Notes, Note{Pos: Pos{File: firstWord(d.Sources)}, Service: d.Name, Err: true,
				Msg: "internal: the service.toml made for " + d.Name + " does not validate: " + oneLine(bad[i].Error())})
		}
	}
	sort.Slice(r.Services, func(i, j int) bool { return r.Services[i].Name < r.Services[j].Name })
	sort.SliceStable(r.Notes, func(i, j int) bool {
		a, b := r.Notes[i], r.Notes[j]
		oa, ok := order[a.File]
		if !ok {
			oa = len(inputs)
		}
		ob, ok := order[b.File]
		if !ok {
			ob = len(inputs)
		}
		if oa != ob {
			return oa < ob
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	return r
}

// services hold what spec.Validate checks, one service at a time on
// each core: thousands need not each be allocated.
var services = sync.Pool{New: func() any { return new(spec.Service) }}

// mergeDrafts folds drafts of one name into the first, in input order. A
// monit check whose start program only starts another system's job is
// first renamed to that job when the job was imported too.
func mergeDrafts(drafts []*Draft) []*Draft {
	runs := map[string]bool{}
	for _, d := range drafts {
		if d.Runs() {
			runs[d.Name] = true
		}
	}
	for _, d := range drafts {
		if dl := d.delegate; dl != nil && dl.job != d.Name && runs[dl.job] {
			d.Note(d.notePos(), "check %s starts job %s: merged into service %s", d.Name, dl.job, dl.job)
			d.Name = dl.job
		}
	}
	var out []*Draft
	byName := map[string]*Draft{}
	for _, d := range drafts {
		if first, ok := byName[d.Name]; ok {
			first.merge(d)
			continue
		}
		byName[d.Name] = d
		out = append(out, d)
	}
	for _, d := range out {
		for i := range d.notes {
			d.notes[i].Service = d.Name
		}
	}
	return out
}

func (d *Draft) notePos() Pos {
	if d.delegate != nil {
		return Pos{File: d.delegate.at.File, Line: d.delegate.at.Line}
	}
	return Pos{}
}

// finish settles what only the whole service can: delegated start
// programs and whether anything runs at all. False: it cannot be written.
func finish(d *Draft) bool {
	for _, n := range d.notes {
		if n.Err {
			return false
		}
	}
	if dl := d.delegate; dl != nil {
		if !d.Runs() {
			d.notes = append(d.notes, Note{Pos: dl.at, Service: d.Name, Err: true,
				Msg: fmt.Sprintf("only asks %s to start job %s: import the job's file together with this one (upkeep runs the process itself)", dl.system, dl.job)})
			return false
		}
		d.Note(dl.at, "replaced by what %s says: upkeep runs the process itself", d.runOrigin())
		for _, p := range dl.drop {
			if strings.HasPrefix(p.Text, "pidfile") {
				d.Note(p, "dropped: upkeep follows the process it starts")
			} else {
				d.Note(p, "dropped: upkeep stops the process itself")
			}
		}
	}
	utf8Only(d)
	sanitize(d)
	sameAsService(d)
	if !d.Runs() {
		p := Pos{File: firstWord(d.Sources)}
		if d.IsSet("pidfile") {
			p = d.At("pidfile")
		}
		d.notes = append(d.notes, Note{Pos: p, Service: d.Name, Err: true, Msg: fmt.Sprintf("service %s: nothing to run (no command, script or start program)", d.Name)})
		return false
	}
	return true
}

func firstWord(sources []string) string {
	if len(sources) == 0 {
		return ""
	}
	f, _, _ := strings.Cut(sources[0], " (")
	return f
}

// utf8Only makes the values a file set UTF-8, the only text TOML holds,
// with a note where bytes were replaced: written as they are, they would
// read back as U+FFFD anyway.
func utf8Only(d *Draft) {
	s := &d.Svc
	fix := func(p *string) bool {
		if utf8.ValidString(*p) {
			return false
		}
		*p = strings.ToValidUTF8(*p, "\uFFFD")
		return true
	}
	fixAll := func(xs []string) bool {
		changed := false
		for i := range xs {
			changed = fix(&xs[i]) || changed
		}
		return changed
	}
	note := func(p Pos, changed bool) {
		if changed {
			d.Note(p, "not UTF-8: written with U+FFFD in place of the bytes that are not")
		}
	}
	for _, k := range []struct {
		key string
		p   *string
	}{{"version", &s.Version}, {"script", &s.Script}, {"directory", &s.Directory}, {"user", &s.User},
		{"group", &s.Group}, {"env_file", &s.EnvFile}, {"pidfile", &s.PIDFile}, {"stop.signal", &s.Stop.Signal},
		{"log.when", &s.Log.When}, {"log.dateformat", &s.Log.DateFormat}} {
		if d.IsSet(k.key) {
			note(d.At(k.key), fix(k.p))
		}
	}
	if d.IsSet("restart.policy") {
		p := string(s.Restart.Policy)
		note(d.At("restart.policy"), fix(&p))
		s.Restart.Policy = spec.Policy(p)
	}
	for _, k := range []struct {
		key  string
		argv []string
	}{{"command", s.Command}, {"start_command", s.StartCommand}, {"stop_command", s.StopCommand}} {
		if d.IsSet(k.key) {
			note(d.At(k.key), fixAll(k.argv))
		}
	}
	note(d.At("depends_on"), fixAll(s.DependsOn))
	for _, k := range sortedKeys(s.Env) {
		v := s.Env[k]
		nk := k
		if kc, vc := fix(&nk), fix(&v); kc || vc {
			p := d.At("env." + k)
			delete(s.Env, k)
			s.Env[nk] = v
			d.Unset("env." + k)
			d.Set("env."+nk, p)
			note(p, true)
		}
	}
	for i := range s.Checks {
		c := &s.Checks[i]
		changed := fixAll(c.Command)
		changed = fixAll(c.Exec) || changed
		for _, p := range []*string{&c.Name, &c.Type, &c.URL, &c.Method, &c.Status, &c.Body, &c.Host, &c.Address, &c.Send, &c.Expect, &c.Max, &c.Then} {
			changed = fix(p) || changed
		}
		note(d.CheckAt[i], changed)
	}
	for i := range s.LogFiles {
		f := &s.LogFiles[i]
		changed := fix(&f.Path)
		changed = fix(&f.PostRotate) || changed
		if f.DateFormat != nil {
			v := *f.DateFormat
			if fix(&v) {
				f.DateFormat, changed = &v, true
			}
		}
		note(d.At("log.file"), changed)
		f.PostRotate = scriptAsWritten(f.PostRotate)
	}
	if d.IsSet("script") {
		s.Script = scriptAsWritten(s.Script)
	}
}

// sanitize drops the values spec.Parse would refuse, each with a note at
// the line it came from, so that what is written always loads.
func sanitize(d *Draft) {
	s := &d.Svc
	bad := func(key, why string) {
		d.Note(d.At(key), "%s; dropped", why)
		d.Unset(key)
	}
	badArgv := func(key string, argv []string) {
		if !d.IsSet(key) {
			return
		}
		if len(argv) == 0 || strings.TrimSpace(argv[0]) == "" {
			bad(key, "no program")
			return
		}
		for _, a := range argv {
			if strings.IndexByte(a, 0) >= 0 {
				bad(key, "a NUL byte in the command")
				return
			}
		}
	}
	badArgv("command", s.Command)
	badArgv("start_command", s.StartCommand)
	badArgv("stop_command", s.StopCommand)
	if d.IsSet("script") && (strings.TrimSpace(s.Script) == "" || strings.IndexByte(s.Script, 0) >= 0) {
		bad("script", "an empty script")
	}
	runs := 0
	for _, k := range []string{"command", "script", "start_command"} {
		if d.IsSet(k) {
			runs++
		}
	}
	if runs > 1 {
		for _, k := range []string{"script", "start_command"} {
			if d.IsSet(k) && runs > 1 {
				bad(k, "a second way to run the service")
				runs--
			}
		}
	}
	for _, k := range []struct {
		key string
		p   *string
	}{{"directory", &s.Directory}, {"pidfile", &s.PIDFile}, {"env_file", &s.EnvFile}} {
		if !d.IsSet(k.key) {
			continue
		}
		if *k.p == "" || strings.IndexByte(*k.p, 0) >= 0 {
			bad(k.key, "not a path")
		} else if _, err := spec.Resolve("/", "/"+paths.ServiceRel(d.Name), *k.p); err != nil {
			bad(k.key, err.Error())
		}
	}
	// Without its pid file (dropped above), a start command can only be
	// run as the main process.
	if d.IsSet("start_command") && !d.IsSet("pidfile") {
		s.Command = s.StartCommand
		d.Set("command", d.At("start_command"))
		d.Unset("start_command")
		d.Note(d.At("command"), "imported as command: without a pid file upkeep runs it as the main process")
	}
	for _, k := range []struct {
		key string
		v   string
	}{{"user", s.User}, {"group", s.Group}} {
		if d.IsSet(k.key) && (k.v == "" || strings.ContainsAny(k.v, ":/\x00\n \t\r")) {
			bad(k.key, fmt.Sprintf("%q is not a user or group name", k.v))
		}
	}
	if d.IsSet("stop.signal") {
		if _, err := spec.ParseSignal(s.Stop.Signal); err != nil {
			bad("stop.signal", err.Error())
		}
	}
	for _, k := range sortedKeys(s.Env) {
		if d.IsSet("env."+k) && (k == "" || strings.ContainsAny(k, "=\x00") || strings.IndexByte(s.Env[k], 0) >= 0) {
			bad("env."+k, fmt.Sprintf("%q is not a variable", k))
		}
	}
	deps := s.DependsOn[:0]
	for _, dep := range s.DependsOn {
		if spec.CheckName(dep) == nil && dep != d.Name {
			deps = append(deps, dep)
		} else {
			d.Note(d.At("depends_on"), "%q cannot be a dependency; dropped", dep)
		}
	}
	s.DependsOn = deps
	if d.IsSet("restart.policy") {
		switch s.Restart.Policy {
		case spec.Always, spec.OnFailure, spec.Never:
		default:
			bad("restart.policy", "unknown policy")
		}
	}
	if d.IsSet("restart.limit") && s.Restart.Limit < 1 {
		bad("restart.limit", "a limit below 1")
	}
	if d.IsSet("restart.window") && s.Restart.Window <= 0 {
		bad("restart.window", "an empty window")
	}
	def := spec.Defaults()
	backoff, maxBackoff := def.Restart.Backoff, def.Restart.MaxBackoff
	if d.IsSet("restart.backoff") {
		backoff = s.Restart.Backoff
	}
	if d.IsSet("restart.max_backoff") {
		maxBackoff = s.Restart.MaxBackoff
	}
	if backoff > maxBackoff {
		s.Restart.MaxBackoff = backoff
		d.Set("restart.max_backoff", d.At("restart.backoff"))
	}
	if d.IsSet("log.when") {
		switch s.Log.When {
		case spec.Hourly, spec.Daily, spec.Weekly, spec.Monthly, spec.Yearly, spec.Untimed:
		default:
			bad("log.when", "unknown rotation interval")
		}
	}
	if d.IsSet("log.dateformat") && spec.CheckDateFormat(s.Log.DateFormat) != nil {
		bad("log.dateformat", "a date format logrotate would refuse")
	}
	n := 0 // the checks that stay, moved down in place
	for i := range s.Checks {
		if why := checkProblem(&s.Checks[i]); why != "" {
			d.Note(d.CheckAt[i], "%s; the check is dropped", why)
			continue
		}
		s.Checks[n], d.CheckAt[n] = s.Checks[i], d.CheckAt[i]
		n++
	}
	s.Checks, d.CheckAt = s.Checks[:n], d.CheckAt[:n]
	if n == 0 {
		s.Checks, d.CheckAt = nil, nil
	}
}

// checkProblem mirrors the checks of spec's validation for what importers
// produce.
func checkProblem(c *spec.Check) string {
	if c.Cycles < 0 || c.Within < 0 || c.Within > 1000 || c.Within != 0 && c.Within < max(c.Cycles, 1) {
		return "a bad cycle count"
	}
	switch c.Then {
	case "", "restart", "stop", "alert":
	case "exec":
		if len(c.Exec) == 0 || c.Exec[0] == "" || strings.IndexByte(strings.Join(c.Exec, ""), 0) >= 0 {
			return "no program to exec"
		}
	default:
		return "unknown action"
	}
	switch c.Type {
	case "http":
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Sprintf("%q is not an http URL", c.URL)
		}
		if c.Status != "" {
			lo, hi, found := strings.Cut(c.Status, "-")
			a, err1 := strconv.Atoi(lo)
			b, err2 := a, error(nil)
			if found {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
				return "a bad status"
			}
		}
	case "tcp":
		if _, port, err := net.SplitHostPort(c.Address); err != nil || port == "" {
			return fmt.Sprintf("%q is not host:port", c.Address)
		}
	case "unix":
		if c.Address == "" || strings.IndexByte(c.Address, 0) >= 0 {
			return "no socket path"
		}
		if _, err := spec.Resolve("/", "/"+paths.ServiceRel("x"), c.Address); err != nil {
			return err.Error()
		}
	case "exec":
		if len(c.Command) == 0 || c.Command[0] == "" {
			return "no command"
		}
	case "memory":
		if _, err := spec.ParseSize(c.Max); err != nil {
			return err.Error()
		}
	case "cpu":
		if v, err := strconv.ParseFloat(strings.TrimSuffix(c.Max, "%"), 64); err != nil || v <= 0 {
			return "a bad CPU limit"
		}
	case "children", "fds":
		if n, err := strconv.Atoi(c.Max); err != nil || n < 0 {
			return "a bad limit"
		}
	case "uptime":
		if v, err := time.ParseDuration(c.Max); err != nil || v <= 0 {
			return "a bad uptime"
		}
	default:
		return "unknown check type"
	}
	return ""
}

// parallel runs f(0) … f(n-1) on every core, in chunks.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), (n+63)/64)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := int(next.Add(64)) - 64
				if start >= n {
					return
				}
				for i := start; i < min(start+64, n); i++ {
					f(i)
				}
			}
		}()
	}
	wg.Wait()
}
