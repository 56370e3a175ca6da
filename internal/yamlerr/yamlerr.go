// Package yamlerr owns the error chmedic reports for a problem in one of its
// YAML files (the config, a playbook): where it is — file, line, column and
// field path — and what is wrong, formatted "file:line:col: path: message",
// and the list of all problems of a file set, reported at once.
package yamlerr

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem. Line and Col are 1-based, 0 when unknown; Path names
// the field, e.g. "clusters[0].keeper.nodes" or "probes[2]", empty for the
// file as a whole.
type Error struct {
	File string
	Line int
	Col  int
	Path string
	Msg  string
}

// Error formats the problem as "file:line:col: path: message", leaving out
// the parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// List is every problem found, one per line when printed.
type List []*Error

// Error joins the problems, one per line.
func (l List) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Sort orders the problems by file, line and column (stable).
func (l List) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}
