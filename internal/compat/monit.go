package compat

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"upkeep/internal/spec"
)

// monit's control file is free-form: newlines are blanks, so a statement
// may span lines (the guide's `if failed port 80 protocol HTTP` / `request
// /ok` / `then restart`), and it is read as a stream of tokens in which
// statements begin with keywords. These are monit's "noise" words, which
// its grammar ignores wherever they appear ("if failed port 80 and use
// the request /ok with timeout 5 seconds for 3 cycles then restart").
var monitNoise = map[string]bool{
	"and": true, "has": true, "using": true, "use": true, "on": true, "only": true, "usage": true,
	"the": true, "of": true, "is": true, "are": true, "program": true, "programs": true,
	"with": true, "for": true, "as": true, "a": true,
}

// monitStatements begin a statement (inside a check or at the top).
var monitStatements = map[string]bool{
	"check": true, "set": true, "include": true, "if": true, "start": true, "stop": true, "restart": true,
	"depends": true, "group": true, "mode": true, "every": true, "alert": true, "noalert": true, "onreboot": true,
}

// mtok is a token as a statement reads it.
type mtok struct {
	s      string // as written
	k      string // as a keyword: lower case; "" when quoted
	line   int
	quoted bool
}

// monitTokens are a text's tokens as lexed. A large file has hundreds of
// thousands, which are kept for the notes' directives: each points into
// the text instead of holding strings, so that they take a third of the
// memory and none of the garbage collector's time.
type monitTokens struct {
	text  string
	toks  []ltok
	extra []string // what is not a piece of text: lower-cased words, strings with \" in them
}

type ltok struct {
	off, end int32 // the token is text[off:end]; a string's without its quotes
	line     int32
	// For a word, extra[alt] is its lower case; for a string, it is its
	// contents, escapes undone. -1: the text as it is.
	alt    int32
	quoted bool
}

func (t *monitTokens) n() int { return len(t.toks) }

func (t *monitTokens) str(i int) string {
	if a := t.toks[i].alt; a >= 0 && t.toks[i].quoted {
		return t.extra[a]
	}
	return t.text[t.toks[i].off:t.toks[i].end]
}

// key is token i as a keyword: lower case, "" when quoted.
func (t *monitTokens) key(i int) string {
	switch tk := &t.toks[i]; {
	case tk.quoted:
		return ""
	case tk.alt >= 0:
		return t.extra[tk.alt]
	}
	return t.text[t.toks[i].off:t.toks[i].end]
}

func (t *monitTokens) tok(i int) mtok {
	return mtok{s: t.str(i), k: t.key(i), line: int(t.toks[i].line), quoted: t.toks[i].quoted}
}

// lexMonit splits a control file into tokens, the first line being line.
// It never fails: an unterminated string runs to the end of the file and
// is reported.
func lexMonit(file string, data []byte, line int) (*monitTokens, []Note) {
	t := &monitTokens{text: string(data), toks: make([]ltok, 0, len(data)/5+16)} // about one token per five bytes
	var notes []Note
	s := t.text
	add := func(off, end int, line int, alt int32, quoted bool) {
		t.toks = append(t.toks, ltok{off: int32(off), end: int32(end), line: int32(line), alt: alt, quoted: quoted})
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' || c == ';':
			i++
		case c == '\\' && i+1 < len(s) && (s[i+1] == '\n' || s[i+1] == '\r'):
			i++ // a continued line: the newline is a blank like any other
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			start := line
			escaped := false
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) && s[j+1] == c {
					escaped = true
					j++
				}
				if s[j] == '\n' {
					line++
				}
			}
			if j >= len(s) {
				notes = append(notes, Note{Pos: Pos{File: file, Line: start}, Msg: "unterminated string; read to the end of the file"})
			}
			alt := int32(-1)
			if escaped {
				alt = int32(len(t.extra))
				t.extra = append(t.extra, strings.ReplaceAll(s[i+1:j], "\\"+string(c), string(c)))
			}
			add(i+1, j, start, alt, true)
			i = j + 1
		case strings.IndexByte("=<>!,{}[]", c) >= 0:
			n := 1
			if i+1 < len(s) && (s[i+1] == '=' || c == '<' && s[i+1] == '>') {
				n = 2
			}
			if c == '!' && n == 1 { // not an operator: part of a word
				n = wordEnd(s, i+1) - i
			}
			add(i, i+n, line, -1, false) // its key is as written, even "!Word"
			i += n
		default:
			j := wordEnd(s, i)
			if j == i {
				j++
			}
			w := s[i:j]
			alt := int32(-1)
			if lw := strings.ToLower(w); lw != w {
				alt = int32(len(t.extra))
				t.extra = append(t.extra, lw)
			}
			add(i, j, line, alt, false)
			i = j
		}
	}
	return t, notes
}

func wordEnd(s string, i int) int {
	for i < len(s) && !wordStop[s[i]] {
		i++
	}
	return i
}

// wordStop holds the bytes that end a word.
var wordStop = func() (t [256]bool) {
	for _, c := range []byte(" \t\r\n\f\v;\"'#=<>,{}[]") {
		t[c] = true
	}
	return t
}()

// monitState is shared by a control file and the files it includes.
type monitState struct {
	opt      Options
	cycle    time.Duration // set daemon
	cycleSet bool
	drafts   []*Draft
	checks   []*monitCheck
	notes    []Note
	depth    int
	seen     map[string]bool
	// A part of a file (parseParts) follows no include: it only counts
	// them, and the file is parsed again as a whole.
	part     bool
	includes int
}

type monitParser struct {
	*monitState
	*monitTokens
	file     string
	lexNotes []Note // the lexer's, also at the start of notes
	i        int
	last     int // where the statement being read starts
	cur      *monitCheck
	scratch  []mtok
}

// monitCheck is a `check` stanza while it is read; finish turns it into
// draft keys once every statement is known.
type monitCheck struct {
	d       *Draft
	at      Pos
	kind    string // process | host
	address string
	every   int
	pidfile string
	pidAt   Pos
	start   *monitProgram
	stop    *monitProgram
	passive bool
	// restarts within: monit's cycles, a window once the cycle is known
	limitAt       Pos
	limit, window int
	checkEvery    []int // index into d.Svc.Checks: checks whose interval is every × cycle
}

type monitProgram struct {
	at      Pos
	cmd     string
	uid     string
	gid     string
	timeout time.Duration
}

// ParseMonit reads a monit control file (and, with opt's functions, the
// files it includes) into one draft per `check process` or `check host`.
func ParseMonit(file string, data []byte, opt Options) ([]*Draft, []Note) {
	parts := 1
	if len(data) >= monitPartMin {
		parts = 4 * runtime.GOMAXPROCS(0)
	}
	return parseMonit(file, data, opt, parts)
}

// monitPartMin is the size from which a file is parsed in parts, on every
// core: 5,000 stanzas are 3 MB.
const monitPartMin = 256 << 10

// parseMonit parses data in up to parts parts, or as a whole when it
// cannot be cut where a sequential parse would start a check (see
// parseParts). The result is the same either way.
func parseMonit(file string, data []byte, opt Options, parts int) ([]*Draft, []Note) {
	newState := func() *monitState {
		return &monitState{opt: opt, cycle: spec.DefaultCheckInterval, seen: map[string]bool{file: true}}
	}
	st := newState()
	if parts < 2 || !st.parseParts(file, data, parts) {
		st = newState()
		st.parse(file, data, 1)
	}
	parallel(len(st.checks), func(i int) { st.checks[i].finish(st.cycle) })
	return st.drafts, st.notes
}

// parse reads a whole file, the first line being line; it returns the
// parser, for parseParts.
func (st *monitState) parse(file string, data []byte, line int) *monitParser {
	toks, notes := lexMonit(file, data, line)
	st.notes = append(st.notes, notes...)
	p := &monitParser{monitState: st, monitTokens: toks, file: file, last: -1, lexNotes: notes}
	for p.i < p.n() {
		p.last = p.i
		p.statement()
	}
	p.endCheck()
	return p
}

// parseParts cuts data before lines that start with `check` and parses
// the parts in parallel. False: the parts would not read as the whole
// does, and nothing is kept. That is when a part ends inside a string, a
// cut is not where the statement before it ends (an unclosed { list, a
// `then` before the check), or the file includes others (which are read
// once, in order). Each part's first statement is then a check, which
// ends whatever stanza came before: the parts share nothing but the
// cycle, set daemon's, which the last part that sets it decides, as the
// last statement would.
func (st *monitState) parseParts(file string, data []byte, parts int) bool {
	cuts, lines := monitCuts(data, parts)
	if len(cuts) < 3 {
		return false
	}
	ps := make([]*monitParser, len(cuts)-1)
	var wg sync.WaitGroup
	for k := range ps {
		wg.Go(func() {
			pst := &monitState{opt: st.opt, cycle: st.cycle, seen: st.seen, part: true}
			ps[k] = pst.parse(file, data[cuts[k]:cuts[k+1]], lines[k])
		})
	}
	wg.Wait()
	for k, p := range ps {
		if p.includes > 0 || k+1 < len(ps) && (unterminated(p.lexNotes) || !p.continuesAt(ps[k+1])) {
			return false
		}
	}
	// As a whole: the lexer's notes first, then the statements'.
	for _, p := range ps {
		st.notes = append(st.notes, p.lexNotes...)
	}
	for _, p := range ps {
		st.drafts = append(st.drafts, p.drafts...)
		st.checks = append(st.checks, p.checks...)
		st.notes = append(st.notes, p.notes[len(p.lexNotes):]...)
		if p.cycleSet {
			st.cycle, st.cycleSet = p.cycle, true
		}
	}
	return true
}

// monitCuts finds up to parts-1 places to cut data, evenly spread: the
// starts of lines whose first word is check. It returns the parts'
// bounds (0, the cuts, len(data)) and each part's first line number.
func monitCuts(data []byte, parts int) (bounds, lines []int) {
	bounds, lines = []int{0}, []int{1}
	step := len(data) / parts
	line, next := 1, step
	for i := 0; i < len(data); {
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
		line++
		if i < next || i >= len(data) {
			continue
		}
		k := i
		for k < len(data) && (data[k] == ' ' || data[k] == '\t') {
			k++
		}
		if k+6 <= len(data) && bytes.EqualFold(data[k:k+5], []byte("check")) && (data[k+5] == ' ' || data[k+5] == '\t') {
			bounds, lines = append(bounds, i), append(lines, line)
			next = i + step
		}
	}
	return append(bounds, len(data)), lines
}

func unterminated(notes []Note) bool {
	for _, n := range notes {
		if strings.HasPrefix(n.Msg, "unterminated string") {
			return true
		}
	}
	return false
}

// continuesAt reports whether a sequential parse of p's tokens followed by
// q's would start a statement at q's first token, as parsing q on its own
// does. p's last statement ran to p's end, so next would get there: at q's
// check if no { list is open and nothing before it (then, else, …) makes
// it part of that statement (stmtStart).
func (p *monitParser) continuesAt(q *monitParser) bool {
	if q.n() == 0 || q.key(0) != "check" {
		return false
	}
	if p.last < 0 {
		return true // p has no statement: q starts the file, as it were
	}
	depth := 0
	for j := p.last + 1; j < p.n(); j++ {
		switch p.key(j) {
		case "{", "[":
			depth++
		case "}", "]":
			if depth > 0 {
				depth--
			}
		}
	}
	j := p.n() - 1
	for j > p.last && monitNoise[p.key(j)] {
		j--
	}
	switch p.key(j) {
	case "then", "else", "repeat", "onreboot", "not", "set":
		return false
	}
	return depth == 0
}

// word is token i as a keyword: lower case, "" when quoted or past the end.
func (p *monitParser) word(i int) string {
	if i < 0 || i >= p.n() {
		return ""
	}
	return p.key(i)
}

func (p *monitParser) stmtStart(i int) bool {
	w := p.word(i)
	if !monitStatements[w] && !(w == "not" && p.word(i+1) == "every") {
		return false
	}
	// An action (then restart), else if, repeat every and onreboot start
	// use statement keywords inside a statement.
	j := i - 1
	for j >= 0 && monitNoise[p.word(j)] {
		j--
	}
	switch p.word(j) {
	case "then", "else", "repeat", "onreboot", "not", "set":
		return false
	}
	return !(w == "start" && p.word(i+1) == "delay") // set daemon 30 with start delay 60
}

// next returns the index of the next statement after the one at i,
// skipping braces ({ … } lists hold words such as start and stop).
func (p *monitParser) next(i int) int {
	depth := 0
	for j := i + 1; j < p.n(); j++ {
		switch p.word(j) {
		case "{", "[":
			depth++
		case "}", "]":
			if depth > 0 {
				depth--
			}
		}
		if depth == 0 && p.stmtStart(j) {
			return j
		}
	}
	return p.n()
}

// text is tokens [i, j) as written (near enough), for notes.
func (p *monitParser) text(i, j int) string {
	var b strings.Builder
	b.Grow(80)
	for k := i; k < j && k < p.n(); k++ {
		if k > i {
			b.WriteByte(' ')
		}
		if p.toks[k].quoted {
			b.WriteByte('"')
			b.WriteString(p.str(k))
			b.WriteByte('"')
		} else {
			b.WriteString(p.str(k))
		}
	}
	return shorten(b.String())
}

func (p *monitParser) pos(i, j int) Pos {
	line := 0
	if i < p.n() {
		line = int(p.toks[i].line)
	}
	return Pos{File: p.file, Line: line, text: func() string { return p.text(i, j) }}
}

// clean returns tokens [i, j) without noise words.
func (p *monitParser) clean(i, j int) []mtok {
	// One statement is interpreted at a time: its tokens can share a buffer.
	out := p.scratch[:0]
	defer func() { p.scratch = out[:0] }()
	for k := i; k < j && k < p.n(); k++ {
		if !p.toks[k].quoted && monitNoise[p.key(k)] {
			continue
		}
		out = append(out, p.tok(k))
	}
	return out
}

// fileNote reports a statement that belongs to no service.
func (p *monitParser) fileNote(at Pos, msg string) {
	p.notes = append(p.notes, Note{Pos: at, Msg: msg})
}

// drop reports a statement with no equivalent, on the current check's
// service or the file.
func (p *monitParser) drop(at Pos, why string) {
	if p.cur != nil {
		p.cur.d.Drop(at, why)
	} else {
		p.fileNote(at, dropped(why))
	}
}

func (p *monitParser) statement() {
	i := p.i
	end := p.next(i)
	p.i = end
	at := p.pos(i, end)
	w := p.word(i)
	switch w {
	case "check":
		p.endCheck()
		p.check(i, end)
		return
	case "set":
		p.set(i, end)
		return
	case "include":
		p.include(i, end)
		return
	}
	if p.cur == nil {
		if monitStatements[w] || w == "not" {
			p.fileNote(at, dropped("outside a check"))
		} else {
			p.fileNote(at, "not understood; dropped")
		}
		return
	}
	if p.cur.d == nil { // inside a check that is dropped as a whole
		return
	}
	switch w {
	case "if":
		p.ifStatement(i, end)
	case "start", "stop":
		p.programStatement(w, i, end)
	case "restart":
		p.drop(at, "upkeep restarts by stopping and starting")
	case "depends":
		p.depends(i, end)
	case "group":
		p.drop(at, "upkeep has no service groups")
	case "mode":
		switch p.word(i + 1) {
		case "active": // monit's default, and upkeep's
		case "passive":
			p.cur.passive = true
			p.cur.d.Note(at, "imported as restart.policy = \"never\" and checks that only alert")
		case "manual":
			p.cur.d.Svc.Autostart = false
			p.cur.d.Set("autostart", at)
		default:
			p.drop(at, "")
		}
	case "onreboot":
		switch p.word(i + 1) {
		case "start":
		case "nostart":
			p.cur.d.Svc.Autostart = false
			p.cur.d.Set("autostart", at)
		default:
			p.drop(at, "upkeep keeps no state across reboots")
		}
	case "every":
		c := p.clean(i+1, end)
		if len(c) == 2 && c[1].k == "cycles" || len(c) == 2 && c[1].k == "cycle" {
			if n, err := strconv.Atoi(c[0].s); err == nil && n >= 1 && n <= 1000 {
				p.cur.every = n
				return
			}
		}
		p.drop(at, "upkeep checks at a fixed interval, not on a schedule")
	case "not":
		p.drop(at, "upkeep checks at a fixed interval, not on a schedule")
	case "alert", "noalert":
		p.drop(at, "upkeep sends no mail; failures are events in `upkeep events`")
	default:
		p.cur.d.Note(at, "not understood; dropped")
	}
}

// check opens a `check TYPE NAME …` stanza.
func (p *monitParser) check(i, end int) {
	at := p.pos(i, end)
	kind := p.word(i + 1)
	if i+2 >= end {
		p.fileNote(at, "incomplete check; dropped")
		p.cur = &monitCheck{}
		return
	}
	raw := p.str(i + 2)
	if kind != "process" && kind != "host" {
		// Dropped together with its statements, which are reported here.
		last := p.lastOfStanza(end)
		msg := "has no equivalent (upkeep supervises processes); dropped"
		if last > at.Line {
			msg = fmt.Sprintf("has no equivalent (upkeep supervises processes); dropped with its statements up to line %d", last)
		}
		p.fileNote(at, msg)
		p.cur = &monitCheck{}
		return
	}
	name, err := serviceName(raw)
	d := newDraft(name, p.file+" (monit)")
	if err != nil {
		d.Name = raw
		d.notes = append(d.notes, Note{Pos: at, Service: raw, Msg: err.Error(), Err: true})
	} else if name != raw {
		d.Note(at, "service name %q is written %q, as service names are", raw, name)
	}
	c := &monitCheck{d: d, at: at, every: 1, kind: kind}
	p.cur = c
	p.drafts = append(p.drafts, d)
	p.checks = append(p.checks, c)
	h := p.clean(i+3, end)
	for k := 0; k < len(h); k++ {
		switch h[k].k {
		case "pidfile", "address":
			if k+1 >= len(h) {
				d.Note(at, "%s without a value; dropped", h[k].s)
				continue
			}
			if h[k].k == "pidfile" {
				c.pidfile, c.pidAt = h[k+1].s, Pos{File: p.file, Line: h[k].line, Text: "pidfile " + h[k+1].s}
			} else {
				c.address = h[k+1].s
			}
			k++
		case "matching", "pid":
			txt := h[k].s
			if k+1 < len(h) {
				txt += " " + h[k+1].s
				k++
			}
			d.Drop(Pos{File: p.file, Line: h[k].line, Text: txt}, "upkeep follows the process it starts")
		default:
			d.Note(Pos{File: p.file, Line: h[k].line, Text: h[k].s}, "not understood; dropped")
		}
	}
}

// lastOfStanza is the line of the last token before the next check.
func (p *monitParser) lastOfStanza(from int) int {
	j := from
	for j < p.n() && p.word(j) != "check" {
		j++
	}
	if j == 0 || j > p.n() {
		return 0
	}
	return int(p.toks[j-1].line)
}

func (p *monitParser) endCheck() { p.cur = nil }

func (p *monitParser) set(i, end int) {
	at := p.pos(i, end)
	c := p.clean(i+1, end)
	if len(c) >= 2 && c[0].k == "daemon" {
		if n, err := strconv.Atoi(c[1].s); err == nil && n > 0 && n <= 86400 {
			p.cycle, p.cycleSet = time.Duration(n)*time.Second, true
			if len(c) > 2 {
				p.fileNote(at, "has no equivalent for what follows the interval (upkeep starts checking with each start); dropped in part")
			}
			return
		}
	}
	p.fileNote(at, dropped("configures monit itself"))
}

func (p *monitParser) include(i, end int) {
	at := p.pos(i, end)
	if i+1 >= end {
		p.fileNote(at, "include without a pattern; dropped")
		return
	}
	pattern := p.str(i + 1)
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(p.file), pattern)
	}
	if p.part {
		p.includes++
		return
	}
	if p.opt.Glob == nil || p.opt.ReadFile == nil {
		p.fileNote(at, "not followed (read the included files on their own)")
		return
	}
	if p.depth >= 8 {
		p.fileNote(at, "includes nested more than 8 deep; not followed")
		return
	}
	files, err := p.opt.Glob(pattern)
	if err != nil {
		p.fileNote(at, "bad pattern: "+err.Error())
		return
	}
	if len(files) == 0 {
		p.fileNote(at, "matches no file")
	}
	for _, f := range files {
		if p.seen[f] {
			p.fileNote(at, "includes "+f+" again; skipped")
			continue
		}
		p.seen[f] = true
		data, err := p.opt.ReadFile(f)
		if err != nil {
			p.fileNote(at, "cannot read "+f+": "+err.Error())
			continue
		}
		p.depth++
		cur := p.cur
		p.parse(f, data, 1)
		p.cur = cur
		p.depth--
	}
}

func (p *monitParser) depends(i, end int) {
	at := p.pos(i, end)
	for _, t := range p.clean(i+1, end) {
		if t.k == "," {
			continue
		}
		name, err := serviceName(t.s)
		if err != nil {
			p.cur.d.Note(at, "%v; dropped", err)
			continue
		}
		if name == p.cur.d.Name {
			p.cur.d.Note(at, "a service cannot depend on itself; dropped")
			continue
		}
		p.cur.d.AddDependency(name, at)
	}
}

// programStatement reads `start|stop [program] [=] "CMD" [as uid U [and gid
// G]] [with timeout N seconds]`; the guide writes `start "/sbin/start x"`.
func (p *monitParser) programStatement(w string, i, end int) {
	at := p.pos(i, end)
	c := p.clean(i+1, end)
	k := 0
	if k < len(c) && c[k].k == "=" {
		k++
	}
	if k >= len(c) {
		p.cur.d.Note(at, "no command; dropped")
		return
	}
	prog := &monitProgram{at: at, cmd: c[k].s}
	for k++; k < len(c); k++ {
		switch c[k].k {
		case "uid", "gid":
			if k+1 < len(c) {
				if c[k].k == "uid" {
					prog.uid = c[k+1].s
				} else {
					prog.gid = c[k+1].s
				}
				k++
			}
		case "timeout":
			d, n, ok := monitDuration(c, k+1)
			if !ok {
				p.cur.d.Note(at, "timeout not understood; dropped")
				continue
			}
			prog.timeout = d
			k += n
		default:
			p.cur.d.Note(at, "%q not understood; dropped", c[k].s)
		}
	}
	if w == "start" {
		p.cur.start = prog
	} else {
		p.cur.stop = prog
	}
}

// monitDuration reads "N [second(s)|minute(s)|hour(s)|day(s)]" at c[k]; n
// is how many tokens it took.
func monitDuration(c []mtok, k int) (time.Duration, int, bool) {
	if k >= len(c) {
		return 0, 0, false
	}
	v, err := strconv.ParseFloat(c[k].s, 64)
	if err != nil || v < 0 || v > 1e6 || math.IsNaN(v) {
		return 0, 0, false
	}
	unit, n := time.Second, 1
	if k+1 < len(c) {
		switch strings.TrimSuffix(c[k+1].k, "s") {
		case "second", "sec":
			n = 2
		case "minute", "min":
			unit, n = time.Minute, 2
		case "hour":
			unit, n = time.Hour, 2
		case "day":
			unit, n = 24*time.Hour, 2
		case "millisecond", "m":
			if c[k+1].k == "ms" || strings.HasPrefix(c[k+1].k, "milli") {
				unit, n = time.Millisecond, 2
			}
		}
	}
	return time.Duration(v * float64(unit)), n, true
}

// ifStatement reads `if TEST then ACTION [else if succeeded then ACTION]`.
func (p *monitParser) ifStatement(i, end int) {
	at := p.pos(i, end)
	d := p.cur.d
	c := p.clean(i+1, end)
	then := -1
	for k, t := range c {
		if t.k == "then" && !t.quoted {
			then = k
			break
		}
	}
	if then < 0 || then+1 >= len(c) {
		d.Note(at, "no `then ACTION`; dropped")
		return
	}
	cond, act := c[:then], c[then+1:]
	action, exec, rest, ignored, ok := monitAction(act)
	if !ok {
		d.Drop(at, "unknown action "+act[0].s)
		return
	}
	for _, ig := range ignored {
		d.Note(at, "%s; dropped", ig)
	}
	if len(rest) > 0 {
		if rest[0].k == "else" {
			d.Drop(Pos{File: at.File, Line: rest[0].line, Text: "else if succeeded …"}, "upkeep records the recovery as an event")
		} else {
			d.Note(at, "%q after the action not understood; dropped", rest[0].s)
		}
	}
	if len(cond) == 0 {
		d.Note(at, "no test; dropped")
		return
	}
	switch {
	case cond[0].k == "failed":
		p.networkTest(at, cond[1:], action, exec)
	case isNotExist(cond):
		switch action {
		case "restart", "start":
			d.Svc.Restart.Policy = spec.Always
		case "alert", "unmonitor":
			d.Svc.Restart.Policy = spec.Never
			d.Note(at, "imported as restart.policy = \"never\"; the exit is an event")
		default:
			d.Drop(at, "")
			return
		}
		d.Set("restart.policy", at)
	case len(cond) >= 4 && isInt(cond[0].s) && strings.HasPrefix(cond[1].k, "restart") && cond[2].k == "within":
		n, _ := strconv.Atoi(cond[0].s)
		m, err := strconv.Atoi(cond[3].s)
		if action != "unmonitor" && action != "timeout" && action != "stop" || err != nil || n < 1 || m < 1 || m > 100000 {
			d.Drop(at, "")
			return
		}
		p.cur.limit, p.cur.window, p.cur.limitAt = n, m, at
	default:
		p.resourceTest(at, cond, action, exec)
	}
}

func isNotExist(c []mtok) bool {
	if len(c) > 0 && c[0].k == "does" {
		c = c[1:]
	}
	return len(c) == 2 && c[0].k == "not" && c[1].k == "exist" || len(c) == 1 && c[0].k == "nonexist"
}

func isInt(s string) bool { _, err := strconv.Atoi(s); return err == nil }

// monitAction reads the action after `then`; rest is what follows it,
// ignored the options that have no equivalent.
func monitAction(c []mtok) (action string, exec []string, rest []mtok, ignored []string, ok bool) {
	action = c[0].k
	k := 1
	switch action {
	case "restart", "alert", "stop", "start", "unmonitor", "timeout", "monitor":
	case "exec":
		if k >= len(c) {
			return "", nil, nil, nil, false
		}
		exec = argvOrShell(c[k].s)
		k++
		for k+1 < len(c) && (c[k].k == "uid" || c[k].k == "gid") {
			ignored = append(ignored, "as "+c[k].k+" "+c[k+1].s+" (upkeep runs the hook as the service's user)")
			k += 2
		}
	default:
		return "", nil, nil, nil, false
	}
	if k+2 < len(c) && c[k].k == "repeat" && c[k+1].k == "every" {
		n := 3
		if k+3 < len(c) && strings.HasPrefix(c[k+3].k, "cycle") {
			n = 4
		}
		ignored = append(ignored, "repeat every "+c[k+2].s+" cycles (upkeep acts once per failure)")
		k += n
	}
	return action, exec, c[k:], ignored, true
}

// checkAction turns a monit action into a check's then; false when it has
// no meaning for a check.
func (p *monitParser) checkAction(at Pos, c *spec.Check, action string, exec []string) bool {
	switch action {
	case "restart", "alert", "stop":
		c.Then = action
	case "exec":
		c.Then, c.Exec = "exec", exec
	case "start":
		c.Then = "restart"
		p.cur.d.Note(at, "then start: imported as then = \"restart\"")
	case "unmonitor":
		c.Then = "alert"
		p.cur.d.Note(at, "then unmonitor: imported as then = \"alert\"; upkeep never stops watching")
	default:
		p.cur.d.Drop(at, "then "+action)
		return false
	}
	if p.cur.passive && (c.Then == "restart" || c.Then == "stop") {
		c.Then = "alert"
	}
	return true
}

// cyclesAt reads "N cycles" or "N times within M cycles" at c[k].
func cyclesAt(c []mtok, k int) (cycles, within, n int, ok bool) {
	if k+1 >= len(c) || !isInt(c[k].s) {
		return 0, 0, 0, false
	}
	a, _ := strconv.Atoi(c[k].s)
	switch c[k+1].k {
	case "cycles", "cycle":
		return a, a, 2, a >= 1 && a <= 1000
	case "times", "time":
		if k+3 < len(c) && c[k+2].k == "within" && isInt(c[k+3].s) {
			b, _ := strconv.Atoi(c[k+3].s)
			m := 4
			if k+4 < len(c) && strings.HasPrefix(c[k+4].k, "cycle") {
				m = 5
			}
			return a, b, m, a >= 1 && b >= a && b <= 1000
		}
	}
	return 0, 0, 0, false
}

var monitProtocols = map[string]bool{"http": true, "https": true, "redis": true, "mysql": true, "pgsql": true,
	"postgres": true, "smtp": true, "smtps": true, "ssh": true, "ftp": true, "imap": true, "imaps": true, "pop": true,
	"pops": true, "ldap2": true, "ldap3": true, "memcache": true, "mongodb": true, "ntp3": true, "dns": true,
	"apache-status": true, "fail2ban": true, "websocket": true, "ws": true, "default": true, "generic": true,
	"spamassassin": true, "rdate": true, "rsync": true, "sip": true, "lmtp": true, "nntp": true, "clamav": true,
	"dwp": true, "gps": true, "mqtt": true, "postfix-policy": true, "radius": true, "tns": true}

// networkTest reads the test after `if failed`: a port or unix socket,
// with a protocol and its options.
func (p *monitParser) networkTest(at Pos, c []mtok, action string, exec []string) {
	d := p.cur.d
	host, port, unix, typ, proto := "", "", "", "tcp", ""
	request, status, hostHeader, content, method := "", "", "", "", ""
	var send, expect []string
	chk := spec.Check{}
	var unknown []string
	for k := 0; k < len(c); k++ {
		t := c[k]
		val := func() string {
			if k+1 < len(c) {
				k++
				return c[k].s
			}
			unknown = append(unknown, t.s)
			return ""
		}
		switch {
		case t.quoted:
			unknown = append(unknown, `"`+t.s+`"`)
		case t.k == "host":
			host = val()
		case t.k == "port":
			port = val()
		case t.k == "unixsocket" || t.k == "unix":
			unix = val()
		case t.k == "type":
			typ = strings.ToLower(val())
		case t.k == "tcp" || t.k == "udp" || t.k == "tcpssl":
			typ = t.k
		case t.k == "ssl" || t.k == "tls":
			typ = "tcpssl"
		case t.k == "protocol" || t.k == "proto":
			proto = strings.ToLower(val())
		case t.k == "request":
			request = val()
		case t.k == "method":
			method = strings.ToUpper(val())
		case t.k == "status":
			op := "="
			if k+1 < len(c) && strings.ContainsAny(c[k+1].s, "=<>!") {
				op = val()
			}
			status = monitStatusRange(op, val())
			if status == "" {
				unknown = append(unknown, "status "+op)
			}
		case t.k == "hostheader":
			hostHeader = val()
		case t.k == "content":
			if k+1 < len(c) && (c[k+1].k == "=" || c[k+1].k == "==") {
				k++
			} else if k+1 < len(c) && c[k+1].k == "!=" {
				k++
				unknown = append(unknown, "content != "+val())
				continue
			}
			content = val()
		case t.k == "send":
			send = append(send, val())
		case t.k == "expect":
			expect = append(expect, val())
		case t.k == "timeout":
			dur, n, ok := monitDuration(c, k+1)
			if !ok {
				unknown = append(unknown, "timeout")
				continue
			}
			chk.Timeout = spec.Duration(dur)
			k += n
		case t.k == "ipv4" || t.k == "ipv6":
			unknown = append(unknown, t.s)
		case t.k == "retry":
			unknown = append(unknown, "retry "+val())
		case t.k == "ping" || t.k == "icmp":
			d.Drop(at, "upkeep has no ICMP check")
			return
		case isInt(t.s):
			cy, within, n, ok := cyclesAt(c, k)
			if !ok {
				unknown = append(unknown, t.s)
				continue
			}
			chk.Cycles, chk.Within = cy, within
			if within == cy {
				chk.Within = 0
			}
			k += n - 1
		case t.k == "certificate" || t.k == "http" && k+1 < len(c) && c[k+1].k == "headers" || t.k == "username" || t.k == "password" || t.k == "options":
			// Skip the option with its value or list.
			j := k + 1
			if j < len(c) && (c[j].k == "[" || c[j].k == "{") {
				for j < len(c) && c[j].k != "]" && c[j].k != "}" {
					j++
				}
			}
			unknown = append(unknown, t.s+" …")
			k = j
		default:
			unknown = append(unknown, t.s)
		}
	}
	if typ == "udp" {
		d.Drop(at, "upkeep checks TCP, HTTP and unix sockets only")
		return
	}
	if host == "" {
		host = p.cur.address
	}
	if host == "" || host == "localhost" {
		host = "127.0.0.1"
	}
	switch {
	case unix != "":
		chk.Type, chk.Address = "unix", unix
	case port == "":
		d.Note(at, "no port or unix socket; dropped")
		return
	default:
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			d.Note(at, "port %q is not a port number; dropped", port)
			return
		}
		chk.Type, chk.Address = "tcp", net.JoinHostPort(host, port)
	}
	switch {
	case proto == "http" || proto == "https" || (proto == "" && request != ""):
		if chk.Type == "unix" {
			d.Drop(at, "upkeep's HTTP check speaks TCP only")
			return
		}
		scheme := "http"
		if proto == "https" || typ == "tcpssl" {
			scheme = "https"
		}
		if request == "" {
			request = "/"
		}
		if !strings.HasPrefix(request, "/") {
			request = "/" + request
		}
		chk.Type, chk.URL, chk.Address = "http", scheme+"://"+chk.Address+request, ""
		chk.Status, chk.Host = status, hostHeader
		if method != "" && method != "GET" {
			chk.Method = method
		}
		if content != "" {
			if lit := regexp.QuoteMeta(content); lit == content {
				chk.Body = content
			} else {
				unknown = append(unknown, "content = \""+content+"\" (a regular expression; upkeep matches a substring)")
			}
		}
	case proto == "redis":
		chk.Send, chk.Expect = "PING\r\n", "+PONG"
	case proto != "" && proto != "default" && proto != "generic":
		if !monitProtocols[proto] {
			unknown = append(unknown, "protocol "+proto)
		} else {
			d.Note(at, "protocol %s: upkeep checks only that the port accepts connections", proto)
		}
	}
	if typ == "tcpssl" && chk.Type != "http" {
		d.Note(at, "TLS: upkeep's TCP check does not do the handshake")
	}
	if chk.Type != "http" {
		for _, x := range []struct {
			what string
			v    []string
		}{{"send", send}, {"expect", expect}} {
			if len(x.v) > 0 {
				if x.what == "send" {
					chk.Send = x.v[0]
				} else {
					chk.Expect = strings.TrimSuffix(strings.TrimPrefix(x.v[0], "^"), ".*")
				}
			}
			if len(x.v) > 1 {
				unknown = append(unknown, fmt.Sprintf("%d more %s", len(x.v)-1, x.what))
			}
		}
		if chk.Send != "" {
			chk.Send = monitUnescape(chk.Send)
		}
	} else if len(send)+len(expect) > 0 {
		unknown = append(unknown, "send/expect")
	}
	if !p.checkAction(at, &chk, action, exec) {
		return
	}
	if len(unknown) > 0 {
		d.Note(at, "%s: not translated; the rest of the test is kept", strings.Join(unknown, ", "))
	}
	p.addCheck(chk, at)
}

// monitUnescape turns the \r \n \t \\ that monit accepts in send strings
// into the bytes.
func monitUnescape(s string) string {
	return strings.NewReplacer(`\r`, "\r", `\n`, "\n", `\t`, "\t", `\\`, `\`).Replace(s)
}

// monitStatusRange turns `status OP N` into service.toml's range.
func monitStatusRange(op, v string) string {
	n, err := strconv.Atoi(v)
	if err != nil || n < 100 || n > 599 {
		return ""
	}
	switch op {
	case "=", "==", "equal":
		return v
	case "<", "lt", "less":
		if n-1 < 100 {
			return ""
		}
		return fmt.Sprintf("100-%d", n-1)
	case "<=":
		return fmt.Sprintf("100-%d", n)
	case ">", "gt", "greater":
		if n+1 > 599 {
			return ""
		}
		return fmt.Sprintf("%d-599", n+1)
	case ">=":
		return fmt.Sprintf("%d-599", n)
	}
	return ""
}

var monitResources = map[string]string{
	"cpu": "cpu", "totalcpu": "cpu", "memory": "memory", "mem": "memory", "totalmem": "memory",
	"totalmemory": "memory", "children": "children", "uptime": "uptime", "filedescriptors": "fds",
	"totalfiledescriptors": "fds",
}

// resourceTest reads `if cpu|memory|totalmem|children|uptime|… > N … then`.
func (p *monitParser) resourceTest(at Pos, c []mtok, action string, exec []string) {
	d := p.cur.d
	k := 0
	if c[0].k == "total" && len(c) > 1 {
		k = 1
	}
	kind, ok := monitResources[c[k].k]
	if !ok {
		d.Drop(at, "")
		return
	}
	k++
	if k < len(c) && (c[k].k == "user" || c[k].k == "system" || c[k].k == "wait") {
		d.Drop(at, "upkeep's cpu check counts user and system time together")
		return
	}
	if k >= len(c) {
		d.Note(at, "no limit; dropped")
		return
	}
	switch c[k].k {
	case ">", "gt", "greater", ">=", "ge":
	default:
		d.Drop(at, "a resource check in upkeep fails only above a limit")
		return
	}
	k++
	if k >= len(c) {
		d.Note(at, "no limit; dropped")
		return
	}
	num := c[k].s
	unit := ""
	if i := strings.IndexFunc(num, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') }); i >= 0 {
		num, unit = num[:i], num[i:]
	}
	k++
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		d.Note(at, "limit %q not understood; dropped", c[k-1].s)
		return
	}
	if unit == "" && k < len(c) && !isInt(c[k].s) && c[k].k != "then" && !strings.HasPrefix(c[k].k, "cycle") {
		unit = c[k].s
		k++
	}
	chk := spec.Check{Type: kind}
	switch kind {
	case "cpu":
		if unit != "%" && unit != "" {
			d.Note(at, "unit %q not understood; dropped", unit)
			return
		}
		chk.Max = trimFloat(v) + "%"
		d.Note(at, "monit counts a share of all CPUs, upkeep of one core: multiply by the number of cores")
	case "memory":
		if unit == "%" {
			d.Drop(at, "upkeep's memory limit is a size, not a share of the host's memory")
			return
		}
		b, ok := monitBytes(v, unit)
		if !ok {
			d.Note(at, "unit %q not understood; dropped", unit)
			return
		}
		chk.Max = sizeString(b)
	case "uptime":
		dur, _, ok := monitDuration([]mtok{{s: num, k: num}, {s: unit, k: strings.ToLower(unit)}}, 0)
		if !ok || dur < time.Second {
			d.Note(at, "uptime limit not understood; dropped")
			return
		}
		chk.Max = FormatDuration(dur)
	default:
		if unit != "" || v != math.Trunc(v) || v > 1e9 {
			d.Note(at, "limit not understood; dropped")
			return
		}
		chk.Max = trimFloat(v)
	}
	if k < len(c) {
		cy, within, n, ok := cyclesAt(c, k)
		if !ok {
			d.Note(at, "%q not understood; dropped", c[k].s)
			return
		}
		chk.Cycles, chk.Within = cy, within
		if within == cy {
			chk.Within = 0
		}
		k += n
		if k < len(c) {
			d.Note(at, "%q not understood; the test is kept", c[k].s)
		}
	}
	if !p.checkAction(at, &chk, action, exec) {
		return
	}
	p.addCheck(chk, at)
}

func (p *monitParser) addCheck(c spec.Check, at Pos) {
	p.cur.checkEvery = append(p.cur.checkEvery, len(p.cur.d.Svc.Checks))
	p.cur.d.AddCheck(c, at)
}

func trimFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// monitBytes reads monit's size units, powers of 1024.
func monitBytes(v float64, unit string) (float64, bool) {
	switch strings.ToLower(strings.TrimSuffix(strings.ToLower(unit), "s")) {
	case "", "b", "byte":
		return v, true
	case "k", "kb", "kilobyte":
		return v * (1 << 10), true
	case "m", "mb", "megabyte":
		return v * (1 << 20), true
	case "g", "gb", "gigabyte":
		return v * (1 << 30), true
	case "t", "tb", "terabyte":
		return v * (1 << 40), true
	}
	return 0, false
}

// sizeString writes bytes as "200M" when a unit holds it exactly.
func sizeString(b float64) string {
	if b >= 1<<62 {
		return "4194304T"
	}
	return spec.Size(int64(b)).String()
}

// delegates are start programs that only ask another init system to
// start its own job: the process is that system's, not monit's, so the
// definition has to come from the job.
func delegated(ws []string, ok bool) (job, system string) {
	if !ok || len(ws) < 2 {
		return "", ""
	}
	prog := path.Base(ws[0])
	switch {
	case prog == "start" && len(ws) == 2:
		return ws[1], "upstart"
	case prog == "initctl" && len(ws) == 3 && ws[1] == "start":
		return ws[2], "upstart"
	case prog == "systemctl" && len(ws) == 3 && ws[1] == "start":
		return strings.TrimSuffix(ws[2], ".service"), "systemd"
	}
	return "", ""
}

// finish turns what the stanza said into draft keys, now that the cycle
// length is known.
func (c *monitCheck) finish(cycle time.Duration) {
	d := c.d
	if d == nil {
		return
	}
	interval := time.Duration(c.every) * cycle
	if interval != spec.DefaultCheckInterval {
		for _, i := range c.checkEvery {
			d.Svc.Checks[i].Interval = spec.Duration(interval)
		}
	}
	if c.limit > 0 {
		d.Svc.Restart.Limit = c.limit
		d.Svc.Restart.Window = spec.Duration(time.Duration(c.window) * interval)
		d.Set("restart.limit", c.limitAt)
		d.Set("restart.window", c.limitAt)
	}
	restarts := c.kind == "process" // monit starts a process that does not exist
	for _, chk := range d.Svc.Checks {
		restarts = restarts || chk.Then == "restart"
	}
	switch {
	case c.passive:
		d.Svc.Restart.Policy = spec.Never
		d.Set("restart.policy", c.at)
	case restarts && !d.IsSet("restart.policy"):
		// A dead service fails its checks, and monit restarts it: the
		// pair of a job without respawn and this check restarts always.
		d.Svc.Restart.Policy = spec.Always
		d.Set("restart.policy", c.at)
	}
	if c.start != nil && strings.TrimSpace(c.start.cmd) == "" {
		d.Note(c.start.at, "an empty start program; dropped")
		c.start = nil
	}
	if c.stop != nil && strings.TrimSpace(c.stop.cmd) == "" {
		d.Note(c.stop.at, "an empty stop program; dropped")
		c.stop = nil
	}
	if c.start != nil {
		words, plain := plainWords(c.start.cmd)
		if job, system := delegated(words, plain); job != "" {
			dl := &delegation{job: job, system: system, at: c.start.at}
			if c.pidfile != "" {
				dl.drop = append(dl.drop, c.pidAt)
			}
			if c.stop != nil {
				dl.drop = append(dl.drop, c.stop.at)
			}
			d.delegate = dl
			return
		}
		argv := words
		if !plain || len(words) == 0 || words[0] == "" {
			argv = []string{"/bin/sh", "-c", c.start.cmd}
		}
		if c.pidfile != "" {
			d.Svc.StartCommand, d.Svc.PIDFile = argv, c.pidfile
			d.Set("start_command", c.start.at)
			d.Set("pidfile", c.pidAt)
		} else {
			d.Svc.Command = argv
			d.Set("command", c.start.at)
			d.Note(c.start.at, "imported as command: without a pid file upkeep runs it as the main process, which must stay in the foreground (if it forks, rename it start_command and add pidfile)")
		}
		if c.start.timeout > 0 {
			d.Drop(c.start.at, "with timeout: upkeep waits up to 10 s for the pid file, or ready_after")
		}
		c.credentials(c.start)
	} else if c.pidfile != "" {
		d.Svc.PIDFile = c.pidfile
		d.Set("pidfile", c.pidAt)
	}
	if c.stop != nil {
		d.Svc.StopCommand = argvOrShell(c.stop.cmd)
		d.Set("stop_command", c.stop.at)
		if c.stop.timeout > 0 {
			d.Svc.Stop.Timeout = spec.Duration(c.stop.timeout)
			d.Set("stop.timeout", c.stop.at)
		}
		if c.start == nil || c.stop.uid != c.start.uid || c.stop.gid != c.start.gid {
			if c.stop.uid != "" || c.stop.gid != "" {
				d.Note(c.stop.at, "as uid/gid: the stop command runs as the service's user")
			}
		}
	}
}

func (c *monitCheck) credentials(p *monitProgram) {
	if p.uid != "" {
		c.d.Svc.User = p.uid
		c.d.Set("user", p.at)
	}
	if p.gid != "" {
		c.d.Svc.Group = p.gid
		c.d.Set("group", p.at)
	}
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
