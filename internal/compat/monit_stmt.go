package compat

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"upkeep/internal/spec"
)

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
