package dashboard

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// point is one value at one time; bad marks a failed check run.
type point struct {
	t   time.Time
	v   float64
	bad bool
}

// mark is a state change, drawn as a line across a chart.
type mark struct {
	t     time.Time
	state string
}

const sparkW, sparkH = 120, 24

// spark is an inline sparkline of ps over [t0, t1]: a polyline, nothing
// else. data-points says how many it drew (the browser tests read it).
func spark(ps []point, t0, t1 time.Time) template.HTML {
	var b strings.Builder
	n := inRange(ps, t0, t1)
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 %d %d" width="%d" height="%d" data-points="%d" role="img">`, sparkW, sparkH, sparkW, sparkH, n)
	if n > 0 {
		b.WriteString(`<polyline points="`)
		polyline(&b, thin(ps, t0, t1, sparkW/2), t0, t1, 1, 1, sparkW-2, sparkH-2, maxOf(ps, t0, t1))
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built here from numbers only
}

const chartW, chartH, padL, padB = 720, 140, 56, 18

// chart is a service page's plot: ps over [t0, t1] with its maximum and
// time labels, failed points as red dots, and state changes as thin
// vertical lines coloured by the state entered.
func chart(title, unit string, ps []point, marks []mark, t0, t1 time.Time) template.HTML {
	var b strings.Builder
	n := inRange(ps, t0, t1)
	top := maxOf(ps, t0, t1)
	w, h := float64(chartW-padL-4), float64(chartH-padB-4)
	fmt.Fprintf(&b, `<figure class="chart"><figcaption>%s</figcaption>`, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" width="%d" height="%d" data-points="%d" data-title="%s" role="img">`,
		chartW, chartH, chartW, chartH, n, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<rect class="frame" x="%d" y="4" width="%.0f" height="%.0f"/>`, padL, w, h)
	fmt.Fprintf(&b, `<text class="axis" x="%d" y="12" text-anchor="end">%s</text>`, padL-4, label(top, unit))
	fmt.Fprintf(&b, `<text class="axis" x="%d" y="%.0f" text-anchor="end">0</text>`, padL-4, h+4)
	mins := t1.Sub(t0).Minutes()
	for i, l := range []string{fmt.Sprintf("-%.0f min", mins), fmt.Sprintf("-%.0f min", mins/2), "now"} {
		anchor := [...]string{"start", "middle", "end"}[i]
		fmt.Fprintf(&b, `<text class="axis" x="%.0f" y="%d" text-anchor="%s">%s</text>`, float64(padL)+w*float64(i)/2, chartH-4, anchor, l)
	}
	span := t1.Sub(t0).Seconds()
	for _, m := range marks {
		if m.t.Before(t0) || m.t.After(t1) {
			continue
		}
		x := float64(padL) + w*m.t.Sub(t0).Seconds()/span
		fmt.Fprintf(&b, `<line class="mark st-%s" x1="%.1f" x2="%.1f" y1="4" y2="%.0f"><title>%s %s</title></line>`,
			template.HTMLEscapeString(m.state), x, x, h+4, template.HTMLEscapeString(m.state), m.t.Local().Format("15:04:05"))
	}
	if n > 0 {
		ps = thin(ps, t0, t1, int(w)/2)
		b.WriteString(`<polyline class="line" points="`)
		polyline(&b, ps, t0, t1, padL, 4, w, h, top)
		b.WriteString(`"/>`)
		for _, p := range ps {
			if !p.bad || p.t.Before(t0) || p.t.After(t1) {
				continue
			}
			x, y := place(p, t0, span, padL, 4, w, h, top)
			fmt.Fprintf(&b, `<circle class="fail" cx="%.1f" cy="%.1f" r="3"><title>failed %s</title></circle>`, x, y, p.t.Local().Format("15:04:05"))
		}
	} else {
		fmt.Fprintf(&b, `<text class="empty" x="%.0f" y="%.0f" text-anchor="middle">no data yet</text>`, float64(padL)+w/2, h/2+8)
	}
	b.WriteString(`</svg></figure>`)
	return template.HTML(b.String()) // numbers and escaped text only
}

// thin keeps at most about n of ps's points in [t0, t1], one per time
// bucket: the highest of each (a spike stays visible) and failed as soon
// as any of the bucket failed. A sparkline 120 px wide gains nothing from
// 360 points but weight.
func thin(ps []point, t0, t1 time.Time, n int) []point {
	if inRange(ps, t0, t1) <= n {
		return ps
	}
	span := t1.Sub(t0)
	out := make([]point, 0, n+1)
	last := -1
	for _, p := range ps {
		if p.t.Before(t0) || p.t.After(t1) {
			continue
		}
		k := int(int64(p.t.Sub(t0)) * int64(n) / int64(span))
		if k != last {
			out = append(out, p)
			last = k
			continue
		}
		q := &out[len(out)-1]
		if p.v > q.v {
			q.t, q.v = p.t, p.v
		}
		q.bad = q.bad || p.bad
	}
	return out
}

func inRange(ps []point, t0, t1 time.Time) int {
	n := 0
	for _, p := range ps {
		if !p.t.Before(t0) && !p.t.After(t1) {
			n++
		}
	}
	return n
}

func maxOf(ps []point, t0, t1 time.Time) float64 {
	top := 0.0
	for _, p := range ps {
		if !p.t.Before(t0) && !p.t.After(t1) && p.v > top {
			top = p.v
		}
	}
	if top == 0 {
		return 1
	}
	return top * 1.1
}

func polyline(b *strings.Builder, ps []point, t0, t1 time.Time, x0, y0, w, h, top float64) {
	span := t1.Sub(t0).Seconds()
	first := true
	for _, p := range ps {
		if p.t.Before(t0) || p.t.After(t1) {
			continue
		}
		x, y := place(p, t0, span, x0, y0, w, h, top)
		if !first {
			b.WriteByte(' ')
		}
		first = false
		fmt.Fprintf(b, "%.1f,%.1f", x, y)
	}
}

func place(p point, t0 time.Time, span, x0, y0, w, h, top float64) (float64, float64) {
	v := p.v
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		v = 0
	}
	return x0 + w*p.t.Sub(t0).Seconds()/span, y0 + h - h*math.Min(v, top)/top
}

func label(v float64, unit string) string {
	if unit == "B" {
		return size(uint64(v))
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}
