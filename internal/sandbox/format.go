package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Format prints the report for a person.
func (r *Report) Format(w io.Writer) {
	fmt.Fprintf(w, "service %s\n", r.Service)
	if r.Image != "" {
		fmt.Fprintf(w, "image %s, unpacked at /var/www/%s\n", r.Image, r.Service)
	}
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
	if r.Kept == nil {
		fmt.Fprintf(w, "stopped in %dms\n", r.StopMS)
	}
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
	if r.OK && r.Kept == nil {
		fmt.Fprintf(w, "running after %dms, torn down in %dms\n", r.StartMS, r.TeardownMS)
	}
	if k := r.Kept; k != nil {
		fmt.Fprintf(w, "kept: sandbox %s (pid %d); its record is run/upkeep/sandbox/%s under the root\n", k.ID, k.PID, k.ID)
		fmt.Fprintf(w, "  enter: %s [-- CMD...]\n", k.Enter)
		fmt.Fprintf(w, "  or:    %s\n", k.NSEnter)
		fmt.Fprintf(w, "  stop:  %s\n", strings.Replace(k.Enter, "--enter", "--stop", 1))
	}
	if r.OK {
		fmt.Fprintln(w, "ok")
	}
}
