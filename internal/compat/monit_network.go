package compat

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"upkeep/internal/spec"
)

var monitProtocols = map[string]bool{"http": true, "https": true, "redis": true, "mysql": true, "pgsql": true,
	"postgres": true, "smtp": true, "smtps": true, "ssh": true, "ftp": true, "imap": true, "imaps": true, "pop": true,
	"pops": true, "ldap2": true, "ldap3": true, "memcache": true, "mongodb": true, "ntp3": true, "dns": true,
	"apache-status": true, "fail2ban": true, "websocket": true, "ws": true, "default": true, "generic": true,
	"spamassassin": true, "rdate": true, "rsync": true, "sip": true, "lmtp": true, "nntp": true, "clamav": true,
	"dwp": true, "gps": true, "mqtt": true, "postfix-policy": true, "radius": true, "tns": true}

// testCursor walks the tokens of one test, a token at a time: next takes
// the following one, peek looks at it without taking it. k is the token
// taken last (-1 before the first).
type testCursor struct {
	c []mtok
	k int
}

func (r *testCursor) next() (mtok, bool) {
	if r.k+1 >= len(r.c) {
		return mtok{}, false
	}
	r.k++
	return r.c[r.k], true
}

func (r *testCursor) peek() (mtok, bool) {
	if r.k+1 >= len(r.c) {
		return mtok{}, false
	}
	return r.c[r.k+1], true
}

// netTest is a network test (`if failed port …`) as written, before it is
// translated: its options, what of the check they set already, and the
// words not understood.
type netTest struct {
	host, port, unix, typ, proto                 string
	request, status, hostHeader, content, method string
	send, expect                                 []string
	chk                                          spec.Check // Timeout, Cycles, Within
	unknown                                      []string
	icmp                                         bool // a ping test: nothing to translate
}

// value takes the value of option t, the next token; an option without
// one is not understood.
func (t *netTest) value(r *testCursor, opt mtok) string {
	if v, ok := r.next(); ok {
		return v.s
	}
	t.unknown = append(t.unknown, opt.s)
	return ""
}

// readNetTest reads the options of a network test.
func readNetTest(c []mtok) netTest {
	t := netTest{typ: "tcp"}
	r := &testCursor{c: c, k: -1}
	for tok, ok := r.next(); ok; tok, ok = r.next() {
		switch {
		case tok.quoted:
			t.unknown = append(t.unknown, `"`+tok.s+`"`)
		case tok.k == "host":
			t.host = t.value(r, tok)
		case tok.k == "port":
			t.port = t.value(r, tok)
		case tok.k == "unixsocket" || tok.k == "unix":
			t.unix = t.value(r, tok)
		case tok.k == "type":
			t.typ = strings.ToLower(t.value(r, tok))
		case tok.k == "tcp" || tok.k == "udp" || tok.k == "tcpssl":
			t.typ = tok.k
		case tok.k == "ssl" || tok.k == "tls":
			t.typ = "tcpssl"
		case tok.k == "protocol" || tok.k == "proto":
			t.proto = strings.ToLower(t.value(r, tok))
		case tok.k == "request":
			t.request = t.value(r, tok)
		case tok.k == "method":
			t.method = strings.ToUpper(t.value(r, tok))
		case tok.k == "status":
			op := "="
			if p, ok := r.peek(); ok && strings.ContainsAny(p.s, "=<>!") {
				op = t.value(r, tok)
			}
			if t.status = monitStatusRange(op, t.value(r, tok)); t.status == "" {
				t.unknown = append(t.unknown, "status "+op)
			}
		case tok.k == "hostheader":
			t.hostHeader = t.value(r, tok)
		case tok.k == "content":
			if p, ok := r.peek(); ok && (p.k == "=" || p.k == "==") {
				r.next()
			} else if ok && p.k == "!=" {
				r.next()
				t.unknown = append(t.unknown, "content != "+t.value(r, tok))
				continue
			}
			t.content = t.value(r, tok)
		case tok.k == "send":
			t.send = append(t.send, t.value(r, tok))
		case tok.k == "expect":
			t.expect = append(t.expect, t.value(r, tok))
		case tok.k == "timeout":
			dur, n, ok := monitDuration(c, r.k+1)
			if !ok {
				t.unknown = append(t.unknown, "timeout")
				continue
			}
			t.chk.Timeout = spec.Duration(dur)
			r.k += n
		case tok.k == "ipv4" || tok.k == "ipv6":
			t.unknown = append(t.unknown, tok.s)
		case tok.k == "retry":
			t.unknown = append(t.unknown, "retry "+t.value(r, tok))
		case tok.k == "ping" || tok.k == "icmp":
			t.icmp = true
			return t
		case isInt(tok.s):
			cy, within, n, ok := cyclesAt(c, r.k)
			if !ok {
				t.unknown = append(t.unknown, tok.s)
				continue
			}
			t.chk.Cycles, t.chk.Within = cy, within
			if within == cy {
				t.chk.Within = 0
			}
			r.k += n - 1
		case tok.k == "certificate" || tok.k == "http" && peekIs(r, "headers") || tok.k == "username" || tok.k == "password" || tok.k == "options":
			// Skip the option with its value or list.
			if p, ok := r.peek(); ok && (p.k == "[" || p.k == "{") {
				for v, ok := r.next(); ok && v.k != "]" && v.k != "}"; v, ok = r.next() {
				}
			} else {
				r.next()
			}
			t.unknown = append(t.unknown, tok.s+" …")
		default:
			t.unknown = append(t.unknown, tok.s)
		}
	}
	return t
}

// peekIs reports whether the next token is the keyword k.
func peekIs(r *testCursor, k string) bool {
	p, ok := r.peek()
	return ok && p.k == k
}

// networkTest translates the test after `if failed`: a port or unix
// socket, with a protocol and its options.
func (p *monitParser) networkTest(at Pos, c []mtok, action string, exec []string) {
	d := p.cur.d
	t := readNetTest(c)
	if t.icmp {
		d.Drop(at, "upkeep has no ICMP check")
		return
	}
	chk := t.chk
	if t.typ == "udp" {
		d.Drop(at, "upkeep checks TCP, HTTP and unix sockets only")
		return
	}
	if t.host == "" {
		t.host = p.cur.address
	}
	if t.host == "" || t.host == "localhost" {
		t.host = "127.0.0.1"
	}
	switch {
	case t.unix != "":
		chk.Type, chk.Address = "unix", t.unix
	case t.port == "":
		d.Note(at, "no port or unix socket; dropped")
		return
	default:
		n, err := strconv.Atoi(t.port)
		if err != nil || n < 1 || n > 65535 {
			d.Note(at, "port %q is not a port number; dropped", t.port)
			return
		}
		chk.Type, chk.Address = "tcp", net.JoinHostPort(t.host, t.port)
	}
	switch {
	case t.proto == "http" || t.proto == "https" || (t.proto == "" && t.request != ""):
		if chk.Type == "unix" {
			d.Drop(at, "upkeep's HTTP check speaks TCP only")
			return
		}
		scheme := "http"
		if t.proto == "https" || t.typ == "tcpssl" {
			scheme = "https"
		}
		if t.request == "" {
			t.request = "/"
		}
		if !strings.HasPrefix(t.request, "/") {
			t.request = "/" + t.request
		}
		chk.Type, chk.URL, chk.Address = "http", scheme+"://"+chk.Address+t.request, ""
		chk.Status, chk.Host = t.status, t.hostHeader
		if t.method != "" && t.method != "GET" {
			chk.Method = t.method
		}
		if t.content != "" {
			if lit := regexp.QuoteMeta(t.content); lit == t.content {
				chk.Body = t.content
			} else {
				t.unknown = append(t.unknown, "content = \""+t.content+"\" (a regular expression; upkeep matches a substring)")
			}
		}
	case t.proto == "redis":
		chk.Send, chk.Expect = "PING\r\n", "+PONG"
	case t.proto != "" && t.proto != "default" && t.proto != "generic":
		if !monitProtocols[t.proto] {
			t.unknown = append(t.unknown, "protocol "+t.proto)
		} else {
			d.Note(at, "protocol %s: upkeep checks only that the port accepts connections", t.proto)
		}
	}
	if t.typ == "tcpssl" && chk.Type != "http" {
		d.Note(at, "TLS: upkeep's TCP check does not do the handshake")
	}
	if chk.Type != "http" {
		for _, x := range []struct {
			what string
			v    []string
		}{{"send", t.send}, {"expect", t.expect}} {
			if len(x.v) > 0 {
				if x.what == "send" {
					chk.Send = x.v[0]
				} else {
					chk.Expect = strings.TrimSuffix(strings.TrimPrefix(x.v[0], "^"), ".*")
				}
			}
			if len(x.v) > 1 {
				t.unknown = append(t.unknown, fmt.Sprintf("%d more %s", len(x.v)-1, x.what))
			}
		}
		if chk.Send != "" {
			chk.Send = monitUnescape(chk.Send)
		}
	} else if len(t.send)+len(t.expect) > 0 {
		t.unknown = append(t.unknown, "send/expect")
	}
	if !p.checkAction(at, &chk, action, exec) {
		return
	}
	if len(t.unknown) > 0 {
		d.Note(at, "%s: not translated; the rest of the test is kept", strings.Join(t.unknown, ", "))
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
