package compat

import (
	"path"
	"strings"
)

// shWord is one word of a shell command line, or a redirection operator
// (op set: ">", ">>", "<", "2>", "2>>", "2>&1", "&>", "&>>", "1>", …).
type shWord struct {
	text string
	op   string
}

// splitShell splits a command line the way sh does for the simple cases:
// blanks separate words, quotes and backslashes quote, a backslash before
// a newline joins lines. It gives up (ok false) on anything whose meaning
// depends on the shell at run time: $ expansions, backquotes, globs,
// pipes, lists, subshells, here documents. Redirections are returned as
// operators for the caller to interpret.
func splitShell(s string) (words []shWord, ok bool) {
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, shWord{text: cur.String()})
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
				continue
			}
			if i+1 >= len(s) {
				return nil, false
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, false
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				switch s[i] {
				case '$', '`':
					return nil, false
				case '\\':
					if i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
						i++
						if s[i] == '\n' {
							continue
						}
					}
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, false
			}
			inWord = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			flush()
		case c == '>' || c == '<' || c == '&':
			// An all-digit word right before the operator is its fd.
			fd := ""
			if inWord && isDigits(cur.String()) && (i == 0 || s[i-1] != '\'' && s[i-1] != '"') {
				fd = cur.String()
				cur.Reset()
				inWord = false
			}
			flush()
			op := fd
			switch {
			case c == '&' && strings.HasPrefix(s[i:], "&>>"):
				op, i = "&>>", i+2
			case c == '&' && strings.HasPrefix(s[i:], "&>"):
				op, i = "&>", i+1
			case c == '&':
				return nil, false // a background job or a list
			case c == '>' && strings.HasPrefix(s[i:], ">>"):
				op, i = op+">>", i+1
			case c == '>' && strings.HasPrefix(s[i:], ">&"):
				if i+2 < len(s) && (s[i+2] == '1' || s[i+2] == '2') {
					op, i = op+">&"+string(s[i+2]), i+2
				} else {
					return nil, false
				}
			case c == '<' && strings.HasPrefix(s[i:], "<<"):
				return nil, false
			default:
				op += string(c)
			}
			words = append(words, shWord{op: op})
		case c == '#' && !inWord:
			return words, true // a comment runs to the end of the line
		case strings.IndexByte("$`|;()*?[]{}~", c) >= 0:
			if c == '~' && inWord || (c == '{' || c == '}') && inWord {
				cur.WriteByte(c)
				continue
			}
			return nil, false
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// plainWords returns the words of a command line without operators, or
// ok false when it holds redirections or anything sh would expand.
func plainWords(s string) ([]string, bool) {
	ws, ok := splitShell(s)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		if w.op != "" {
			return nil, false
		}
		out = append(out, w.text)
	}
	return out, true
}

// commandLine is a shell command line reduced to what service.toml says
// directly: the program and its arguments, the user a sudo-like wrapper
// switches to, variables set before it, and where its output goes.
type commandLine struct {
	argv         []string
	user, group  string
	env          [][2]string
	stdout       string // "" when not redirected
	stderr       string // "&1": to wherever stdout goes
	stdoutTrunc  bool   // > rather than >>
	stderrTrunc  bool
	stdin        string
	wrapper      string // "sudo -u nodejs", for notes
	wrapperFlags []string
}

// parseCommandLine reads `[exec] [VAR=x…] [sudo -u U|chpst -u U|setuidgid
// U|env VAR=x…] program args… [redirections]`. ok is false for anything
// else, which then stays a shell script.
func parseCommandLine(s string) (cl commandLine, ok bool) {
	ws, ok := splitShell(s)
	if !ok {
		return cl, false
	}
	var words []string
	for i := 0; i < len(ws); i++ {
		w := ws[i]
		if w.op == "" {
			words = append(words, w.text)
			continue
		}
		target := ""
		if !strings.Contains(w.op, ">&") {
			if i+1 >= len(ws) || ws[i+1].op != "" {
				return cl, false
			}
			i++
			target = ws[i].text
		}
		switch w.op {
		case ">", "1>":
			cl.stdout, cl.stdoutTrunc = target, true
		case ">>", "1>>":
			cl.stdout, cl.stdoutTrunc = target, false
		case "2>":
			cl.stderr, cl.stderrTrunc = target, true
		case "2>>":
			cl.stderr, cl.stderrTrunc = target, false
		case "2>&1":
			cl.stderr = "&1"
		case "&>", "&>>":
			cl.stdout, cl.stdoutTrunc = target, w.op == "&>"
			cl.stderr = "&1"
		case "<", "0<":
			cl.stdin = target
		default:
			return cl, false
		}
	}
	if len(words) > 0 && words[0] == "exec" {
		words = words[1:]
	}
	for len(words) > 0 && isAssignment(words[0]) {
		k, v, _ := strings.Cut(words[0], "=")
		cl.env = append(cl.env, [2]string{k, v})
		words = words[1:]
	}
	for len(words) > 0 {
		rest, ok := cl.unwrap(words)
		if !ok {
			return cl, false
		}
		if len(rest) == len(words) {
			break
		}
		words = rest
	}
	if len(words) == 0 || words[0] == "" {
		return cl, false
	}
	switch words[0] {
	case "exec", "cd", "export", "source", ".", "set", "if", "while", "for", "case", "test", "[", "ulimit", "umask", "trap", "eval":
		return cl, false // builtins: the line is shell, not a program to run
	}
	cl.argv = words
	return cl, true
}

// unwrap strips one privilege or environment wrapper; ok false for a
// wrapper with options it does not know.
func (cl *commandLine) unwrap(words []string) ([]string, bool) {
	switch path.Base(words[0]) {
	case "sudo":
		i := 1
		for ; i < len(words); i++ {
			w := words[i]
			switch {
			case w == "--":
				i++
				goto done
			case w == "-u" || w == "-g":
				if i+1 >= len(words) {
					return nil, false
				}
				if w == "-u" {
					cl.user = words[i+1]
				} else {
					cl.group = words[i+1]
				}
				i++
			case strings.HasPrefix(w, "-u") && len(w) > 2:
				cl.user = w[2:]
			case strings.HasPrefix(w, "--user="):
				cl.user = strings.TrimPrefix(w, "--user=")
			case w == "-H" || w == "-E" || w == "-n":
				cl.wrapperFlags = append(cl.wrapperFlags, "sudo "+w)
			case strings.HasPrefix(w, "-"):
				return nil, false
			case isAssignment(w):
				k, v, _ := strings.Cut(w, "=")
				cl.env = append(cl.env, [2]string{k, v})
			default:
				goto done
			}
		}
	done:
		cl.wrapper = strings.Join(words[:i], " ")
		return words[i:], true
	case "chpst", "setuidgid":
		if path.Base(words[0]) == "setuidgid" {
			if len(words) < 3 {
				return nil, false
			}
			cl.user, cl.wrapper = words[1], strings.Join(words[:2], " ")
			return words[2:], true
		}
		if len(words) < 4 || words[1] != "-u" {
			return nil, false
		}
		u, g, _ := strings.Cut(words[2], ":")
		cl.user, cl.group, cl.wrapper = u, g, strings.Join(words[:3], " ")
		return words[3:], true
	case "env":
		i := 1
		for ; i < len(words) && isAssignment(words[i]); i++ {
			k, v, _ := strings.Cut(words[i], "=")
			cl.env = append(cl.env, [2]string{k, v})
		}
		if i < len(words) && strings.HasPrefix(words[i], "-") {
			return nil, false
		}
		return words[i:], true
	}
	return words, true
}

func isAssignment(w string) bool {
	k, _, ok := strings.Cut(w, "=")
	if !ok || k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// argvOrShell turns a command string (monit's start program, supervisord's
// command, a Procfile line) into argv: the words themselves when sh would
// not change them, else ["/bin/sh", "-c", s].
func argvOrShell(s string) []string {
	if ws, ok := plainWords(s); ok && len(ws) > 0 && ws[0] != "" {
		return ws
	}
	return []string{"/bin/sh", "-c", s}
}
