package compat

import (
	"strings"
)

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
