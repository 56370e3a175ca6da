package playbooks

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/prometheus/alertmanager/pkg/labels"
)

// GenericName is the name of the built-in playbook used for alerts that no
// playbook matches.
const GenericName = "generic"

// Playbook is one runbook.
type Playbook struct {
	// Name is unique, [a-z0-9-]+.
	Name string
	// Title is a one-line heading.
	Title string
	// Priority decides between several matching playbooks (higher wins).
	Priority int
	// Match is any-of: each entry is a set of matchers that must all match.
	Match [][]*labels.Matcher
	// MatchText is the text each Match entry was parsed from, in order.
	MatchText []string
	// Probes are the probes whose findings matter most (shown first).
	Probes []string
	// Sections are the runbook text, Slack mrkdwn.
	Sections Sections
	// Actions are the buttons offered.
	Actions []ActionRef
	// Source is "builtin/NAME.yaml" for a built-in, else the file's path.
	Source string
}

// Sections are the four runbook sections.
type Sections struct {
	Meaning, Impact, Diagnosis, Mitigation string
}

// ActionRef is an action offered by a playbook.
type ActionRef struct {
	// Kind is an action kind known to chmedic (ddl_freeze, ...).
	Kind string
	// Label is the button text (≤ 30 characters).
	Label string
	// Params are validated by the action kind; never nil after loading.
	Params map[string]string
}

// Builtin reports whether the playbook comes from the embedded set.
func (p *Playbook) Builtin() bool { return strings.HasPrefix(p.Source, builtinDir+"/") }

// score reports whether one of the playbook's matcher sets matches lset and,
// if so, the size of the largest matching set (its specificity). A label
// missing from lset has the empty value, as in Alertmanager.
func (p *Playbook) score(lset map[string]string) (int, bool) {
	best, ok := 0, false
	for _, set := range p.Match {
		if matchesAll(set, lset) {
			ok = true
			if len(set) > best {
				best = len(set)
			}
		}
	}
	return best, ok
}

func matchesAll(set []*labels.Matcher, lset map[string]string) bool {
	for _, m := range set {
		if !m.Matches(lset[m.Name]) {
			return false
		}
	}
	return true
}

// Set is a loaded, validated collection of playbooks. It is read-only and
// safe for concurrent use.
type Set struct {
	list    []*Playbook // sorted by name
	byName  map[string]*Playbook
	generic *Playbook
}

func newSet(m map[string]*Playbook) *Set {
	s := &Set{byName: m}
	for _, p := range m {
		s.list = append(s.list, p)
	}
	sort.Slice(s.list, func(i, j int) bool { return s.list[i].Name < s.list[j].Name })
	s.generic = m[GenericName]
	return s
}

// All returns every playbook, sorted by name.
func (s *Set) All() []*Playbook {
	out := make([]*Playbook, len(s.list))
	copy(out, s.list)
	return out
}

// Get returns the playbook with that name.
func (s *Set) Get(name string) (*Playbook, bool) {
	p, ok := s.byName[name]
	return p, ok
}

// Generic returns the fallback playbook.
func (s *Set) Generic() *Playbook { return s.generic }

// candidate is a matching playbook and the specificity of its match.
type candidate struct {
	pb   *Playbook
	spec int
}

// better reports whether c beats o: higher priority, then more matchers in
// the matching set, then the smaller name.
func (c candidate) better(o candidate) bool {
	if o.pb == nil {
		return c.pb != nil
	}
	if c.pb == nil {
		return false
	}
	if c.pb.Priority != o.pb.Priority {
		return c.pb.Priority > o.pb.Priority
	}
	if c.spec != o.spec {
		return c.spec > o.spec
	}
	return c.pb.Name < o.pb.Name
}

func (s *Set) best(lset map[string]string) candidate {
	var b candidate
	if lset == nil {
		return b
	}
	for _, p := range s.list {
		if spec, ok := p.score(lset); ok {
			if c := (candidate{p, spec}); c.better(b) {
				b = c
			}
		}
	}
	return b
}

// Match returns the best playbook for an alert's labels, or the generic
// playbook with matched=false when none matches.
func (s *Set) Match(lset map[string]string) (pb *Playbook, matched bool) {
	if b := s.best(lset); b.pb != nil {
		return b.pb, true
	}
	return s.generic, false
}

// MatchGroup picks the playbook for an Alertmanager group: it matches the
// group's common labels first, then each alert's labels, and the best
// candidate of all (priority, then specificity, then name; on a full tie the
// earlier one) wins. With no match it returns the generic playbook and false.
func (s *Set) MatchGroup(common map[string]string, alerts []map[string]string) (*Playbook, bool) {
	b := s.best(common)
	for _, a := range alerts {
		if c := s.best(a); c.better(b) {
			b = c
		}
	}
	if b.pb != nil {
		return b.pb, true
	}
	return s.generic, false
}

// Describe prints a table of the playbooks for `chmedic playbooks`: name,
// priority, probes, actions, source and what it matches. List cells (probes,
// actions, matcher sets) take one line per item; the long matcher sets come
// last so the other columns stay narrow.
func (s *Set) Describe(w io.Writer) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPRIORITY\tPROBES\tACTIONS\tSOURCE\tMATCHES")
	for i, p := range s.list {
		if i > 0 {
			fmt.Fprintln(tw, "\t\t\t\t\t")
		}
		matches := p.MatchText
		if len(matches) == 0 {
			if p.Name == GenericName {
				matches = []string{"(fallback for alerts no playbook matches)"}
			} else {
				matches = []string{"(nothing: used only by name)"}
			}
		}
		probes := p.Probes
		if len(probes) == 0 {
			probes = []string{"-"}
		}
		actions := make([]string, 0, len(p.Actions))
		for _, a := range p.Actions {
			actions = append(actions, describeAction(a))
		}
		if len(actions) == 0 {
			actions = []string{"-"}
		}
		rows := max(len(matches), len(probes), len(actions))
		for r := 0; r < rows; r++ {
			name, prio, src := "", "", ""
			if r == 0 {
				name, prio, src = p.Name, strconv.Itoa(p.Priority), p.Source
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, prio, item(probes, r), item(actions, r), src, item(matches, r))
		}
	}
	tw.Flush()
	// The padding of empty trailing cells would leave trailing blanks.
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		io.WriteString(w, strings.TrimRight(line, " \n")+"\n")
	}
}

func item(list []string, i int) string {
	if i < len(list) {
		return list[i]
	}
	return ""
}

func describeAction(a ActionRef) string {
	if len(a.Params) == 0 {
		return a.Kind
	}
	keys := make([]string, 0, len(a.Params))
	for k := range a.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + a.Params[k]
	}
	return a.Kind + " " + strings.Join(parts, ",")
}
