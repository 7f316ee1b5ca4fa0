package compat

import (
	"math"
	"strconv"
	"strings"
	"time"

	"upkeep/internal/spec"
)

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
