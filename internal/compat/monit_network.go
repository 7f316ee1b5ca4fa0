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
