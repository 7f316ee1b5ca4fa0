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

// trace folds points, as they come in time order, into at most about n
// buckets over [t0, t1]: the highest of each bucket (a spike stays
// visible), failed as soon as any of it failed. A sparkline 120 px wide
// gains nothing from 360 points but weight, and folding as they come
// keeps no copy of the history.
type trace struct {
	t0, t1 time.Time
	n      int
	pts    []point
	bucket int
	count  int // points added in range, before folding
	top    float64
}

func newTrace(t0, t1 time.Time, n int) *trace {
	return &trace{t0: t0, t1: t1, n: max(n, 1), bucket: -1}
}

func (tr *trace) add(t time.Time, v float64, bad bool) {
	if t.Before(tr.t0) || t.After(tr.t1) {
		return
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		v = 0
	}
	tr.count++
	tr.top = max(tr.top, v)
	k := int(int64(t.Sub(tr.t0)) * int64(tr.n) / max(int64(tr.t1.Sub(tr.t0)), 1))
	if k != tr.bucket || len(tr.pts) == 0 {
		tr.pts = append(tr.pts, point{t, v, bad})
		tr.bucket = k
		return
	}
	q := &tr.pts[len(tr.pts)-1]
	if v > q.v {
		q.t, q.v = t, v
	}
	q.bad = q.bad || bad
}

// lastValue is the newest bucket's value (0 without points).
func (tr *trace) lastValue() float64 {
	if len(tr.pts) == 0 {
		return 0
	}
	return tr.pts[len(tr.pts)-1].v
}

func (tr *trace) scale() float64 {
	if tr.top == 0 {
		return 1
	}
	return tr.top * 1.1
}

// spark is an inline sparkline of tr: a polyline, nothing else.
// data-points says how many values it was drawn from (the tests read it).
func spark(tr *trace) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 %d %d" width="%d" height="%d" data-points="%d" role="img">`, sparkW, sparkH, sparkW, sparkH, tr.count)
	if len(tr.pts) > 0 {
		b.WriteString(`<polyline points="`)
		polyline(&b, tr, 1, 1, sparkW-2, sparkH-2)
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built here from numbers only
}

const chartW, chartH, padL, padB = 720, 140, 56, 18

// chartPoints is about one point per two pixels of a chart's width.
const chartPoints = (chartW - padL - 4) / 2

// chart is a service page's plot of tr with its maximum and time labels,
// failed points as red dots, and state changes as thin vertical lines
// coloured by the state entered.
func chart(title, unit string, tr *trace, marks []mark) template.HTML {
	var b strings.Builder
	t0, t1 := tr.t0, tr.t1
	w, h := float64(chartW-padL-4), float64(chartH-padB-4)
	fmt.Fprintf(&b, `<figure class="chart"><figcaption>%s</figcaption>`, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" width="%d" height="%d" data-points="%d" data-title="%s" role="img">`,
		chartW, chartH, chartW, chartH, tr.count, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<rect class="frame" x="%d" y="4" width="%.0f" height="%.0f"/>`, padL, w, h)
	fmt.Fprintf(&b, `<text class="axis" x="%d" y="12" text-anchor="end">%s</text>`, padL-4, label(tr.scale(), unit))
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
	if len(tr.pts) > 0 {
		b.WriteString(`<polyline class="line" points="`)
		polyline(&b, tr, padL, 4, w, h)
		b.WriteString(`"/>`)
		for _, p := range tr.pts {
			if p.bad {
				x, y := place(tr, p, padL, 4, w, h)
				fmt.Fprintf(&b, `<circle class="fail" cx="%.1f" cy="%.1f" r="3"><title>failed %s</title></circle>`, x, y, p.t.Local().Format("15:04:05"))
			}
		}
	} else {
		fmt.Fprintf(&b, `<text class="empty" x="%.0f" y="%.0f" text-anchor="middle">no data yet</text>`, float64(padL)+w/2, h/2+8)
	}
	b.WriteString(`</svg></figure>`)
	return template.HTML(b.String()) // numbers and escaped text only
}

func polyline(b *strings.Builder, tr *trace, x0, y0, w, h float64) {
	for i, p := range tr.pts {
		x, y := place(tr, p, x0, y0, w, h)
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(b, "%.1f,%.1f", x, y)
	}
}

func place(tr *trace, p point, x0, y0, w, h float64) (float64, float64) {
	top := tr.scale()
	return x0 + w*p.t.Sub(tr.t0).Seconds()/tr.t1.Sub(tr.t0).Seconds(), y0 + h - h*math.Min(p.v, top)/top
}

func label(v float64, unit string) string {
	if unit == "B" {
		return size(uint64(v))
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}
