package actions

import (
	"fmt"
	"io"
	"strings"
)

// WritePlan writes plan as text for a terminal (chmedic request, chmedic
// collect) or a code block: the summary, how, the gates, every step with
// its exact SQL or command, the notes and the hash.
func WritePlan(w io.Writer, p Plan) {
	fmt.Fprintf(w, "%s on %s: %s\n", p.Kind, p.Cluster, p.Summary)
	if p.Method != "" {
		fmt.Fprintf(w, "how: %s\n", p.Method)
	}
	for _, g := range p.Gates {
		mark := "ok"
		if !g.OK {
			mark = "NO"
		}
		fmt.Fprintf(w, "gate %s: %s (%s)\n", g.Name, mark, g.Evidence)
	}
	fmt.Fprintf(w, "steps (%d):\n", len(p.Steps))
	for i, s := range p.Steps {
		fmt.Fprintf(w, "  %d. %s — %s\n", i+1, s.ID, s.Title)
		for _, q := range s.SQL {
			fmt.Fprintf(w, "       sql: %s\n", q)
		}
		if len(s.Command) > 0 {
			fmt.Fprintf(w, "       command: %s\n", quoteArgv(s.Command))
		}
		if s.Undo != "" {
			fmt.Fprintf(w, "       undo: %s\n", s.Undo)
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, o := range p.Observed {
		fmt.Fprintf(w, "observed at plan time: %s\n", o)
	}
	fmt.Fprintf(w, "plan hash: %s\n", p.Hash())
}

// quoteArgv shows an argv unambiguously (each argument quoted when it
// holds spaces or quotes); it is never run through a shell.
func quoteArgv(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`;&|<>(){}*?[]#~") {
			out[i] = fmt.Sprintf("%q", a)
		} else {
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}
