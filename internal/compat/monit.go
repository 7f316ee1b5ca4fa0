package compat

import (
	"runtime"
	"strings"
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

// The monit reader, file by file: monit_lex.go cuts a control file into
// tokens; monit_parts.go parses a large one in parts at once;
// monit_stmt.go reads the statements of a check stanza; monit_network.go
// and monit_resource.go translate its tests (`if failed port …`, `if cpu
// > …`); monit_finish.go turns each stanza into a draft once all is read.

// ParseMonit reads a monit control file (and, with opt's functions, the
// files it includes) into one draft per `check process` or `check host`.
func ParseMonit(file string, data []byte, opt Options) ([]*Draft, []Note) {
	parts := 1
	if len(data) >= monitPartMin {
		parts = 4 * runtime.GOMAXPROCS(0)
	}
	return parseMonit(file, data, opt, parts)
}

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
