package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
)

// Format prints the report for a person.
func (r *Report) Format(w io.Writer) {
	fmt.Fprintf(w, "service %s\n", r.Service)
	for _, s := range r.States {
		fmt.Fprintf(w, "  %s  %s -> %s  %s\n", s.Time.Format("15:04:05.000"), s.From, s.To, s.Detail)
	}
	for _, c := range r.Checks {
		b, _ := json.Marshal(c)
		fmt.Fprintf(w, "check %s\n", b)
	}
	if t := r.Test; t != nil {
		fmt.Fprintf(w, "test %q: exit %d in %dms\n", t.Command, t.Exit, t.Millis)
	}
	fmt.Fprintf(w, "stopped in %dms\n", r.StopMS)
	for _, l := range r.Links {
		fmt.Fprintf(w, "overlay %s\n", l)
	}
	for _, l := range r.Log {
		fmt.Fprintf(w, "log: %s\n", l)
	}
	for _, l := range r.ErrorLog {
		fmt.Fprintf(w, "error log: %s\n", l)
	}
	for _, c := range r.Touched {
		fmt.Fprintf(w, "touched %s /%s\n", c.What, c.Path)
	}
	if r.OK {
		fmt.Fprintln(w, "ok")
	}
}
