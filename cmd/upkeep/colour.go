package main

import (
	"bytes"
	"os"
	"strings"

	"golang.org/x/term"

	"upkeep/internal/api"
)

// Colour of the state words in status's table and of logs' times and
// stderr marks: on a terminal only, and never when NO_COLOR is set
// (no-color.org) or TERM is dumb.

const (
	green  = "\033[32m"
	red    = "\033[31m"
	yellow = "\033[33m"
	dim    = "\033[2m"
	reset  = "\033[0m"
)

func colourStdout() bool {
	if _, ok := os.LookupEnv("NO_COLOR"); ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	return term.IsTerminal(int(os.Stdout.Fd()))
}

func stateColour(s api.State) string {
	switch s {
	case api.Running:
		return green
	case api.Fatal, api.Backoff:
		return red
	case api.Starting, api.Stopping:
		return yellow
	}
	return ""
}

// colourTable colours the state word of each row of table, the text
// tabwriter laid out: the codes go in after the layout, since tabwriter
// would count their bytes as width. Row i+1 of table is st[i]; the state
// word starts in the column of the header's STATE.
func colourTable(table []byte, st []api.Status) []byte {
	lines := bytes.SplitAfter(table, []byte("\n"))
	if len(lines) == 0 {
		return table
	}
	col := bytes.Index(lines[0], []byte("STATE"))
	if col < 0 {
		return table
	}
	var out bytes.Buffer
	out.Write(lines[0])
	for i, l := range lines[1:] {
		if i >= len(st) {
			out.Write(l)
			continue
		}
		word := st[i].State.String()
		c := stateColour(st[i].State)
		if c == "" || len(l) < col+len(word) || !strings.HasPrefix(string(l[col:]), word) {
			out.Write(l)
			continue
		}
		out.Write(l[:col])
		out.WriteString(c + word + reset)
		out.Write(l[col+len(word):])
	}
	return out.Bytes()
}
