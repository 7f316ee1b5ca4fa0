package compat

import (
	"bytes"
	"strings"
	"sync"
)

// monitPartMin is the size from which a file is parsed in parts, on every
// core: 5,000 stanzas are 3 MB.
const monitPartMin = 256 << 10

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
