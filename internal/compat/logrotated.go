package compat

import (
	"fmt"
	"strings"

	"upkeep/internal/paths"
	"upkeep/internal/spec"
)

// LogrotateD says how a service's logrotate.d file is written: for
// `upkeep logrotate` (upkeep's daemon runs the service) or for an export
// (systemd does).
type LogrotateD struct {
	// HostPath turns a path that spec resolved under the root into the
	// path on the host ("/var/log/nginx/x.log").
	HostPath func(abs string) string
	// Signal is the command that sends a [[log.file]]'s signal to the
	// service's main process.
	Signal func(lf spec.LogFile) string
	// HeldOpen says the captured output is held open for append by a
	// writer that never reopens it (systemd's StandardOutput=append:): a
	// renamed file would go on receiving the output, so logrotate must
	// copy and truncate in place.
	HeldOpen bool
}

// File is the logrotate.d file for s, without a header: a stanza for its
// captured output, /var/log/<name>.log and <name>.error.log, from its
// [log], and one for each file it writes itself ([[log.file]]). err says
// that the [log] has no logrotate equivalent (then there is no file);
// skipped lists the [[log.file]]s left out, each with why.
func (o LogrotateD) File(s *spec.Service) (text string, skipped []error, err error) {
	text, err = WriteStanza(s.Log, []string{"/" + paths.LogRel(s.Name), "/" + paths.ErrorLogRel(s.Name)})
	if err != nil {
		return "", nil, err
	}
	if o.HeldOpen && !strings.Contains(text, "copytruncate") {
		text = strings.TrimSuffix(text, "}\n") + "  copytruncate\n}\n"
	}
	for _, lf := range s.LogFiles {
		more, err := WriteFileStanza(lf, o.HostPath(lf.Abs), o.Signal(lf))
		if err != nil {
			skipped = append(skipped, fmt.Errorf("%s: %w", lf.Path, err))
			continue
		}
		text += "\n" + more
	}
	return text, skipped, nil
}

// Sections writes each stanza read from file as the [log] section that
// does the same, with what has no equivalent as comments: `upkeep
// logrotate --read`.
func Sections(file string, stanzas []Stanza) string {
	var b strings.Builder
	for i, st := range stanzas {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "# %s (%s:%d)\n", strings.Join(st.Paths, " "), file, st.Line)
		for _, ig := range st.Ignored {
			fmt.Fprintf(&b, "# no equivalent, left out: %s\n", ig)
		}
		if st.CopyTruncate {
			b.WriteString("# copytruncate: not needed, upkeep rotates its captured output between two writes\n")
		}
		b.WriteString(st.Log.Section())
	}
	return b.String()
}
