package playbooks

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/pkg/labels"
	"gopkg.in/yaml.v3"

	"github.com/chmedic/chmedic/internal/yamlerr"
)

const builtinDir = "builtin"

//go:embed builtin/*.yaml
var builtinFS embed.FS

// Limits enforced on every playbook.
const (
	// MaxLabelLen is the longest button label, in characters.
	MaxLabelLen = 30
	// MaxSectionLen is the longest section, in characters: a Slack section
	// block holds at most 3000.
	MaxSectionLen = 3000
	// MaxTitleLen is the longest title, in characters.
	MaxTitleLen = 150
	// MaxNameLen is the longest name.
	MaxNameLen = 64
)

// Validator checks the names a playbook refers to. A nil function accepts
// everything.
type Validator struct {
	// Probe reports whether a probe of that name exists.
	Probe func(name string) bool
	// Action checks an action kind and its parameters; it returns an error
	// for an unknown kind or bad parameters.
	Action func(kind string, params map[string]string) error
}

// Error is one problem in one playbook file; it prints as
// "FILE:LINE:COL: field.path: message".
type Error = yamlerr.Error

// Errors is every problem found by one Load, sorted by file and position.
type Errors = yamlerr.List

// Load reads the embedded built-in playbooks, then every *.yaml and *.yml
// file in dir when dir is not empty; a playbook from dir replaces the
// built-in of the same name. Every problem is returned at once, as Errors.
func Load(dir string, v Validator) (*Set, error) {
	if dir == "" {
		return load(nil, v)
	}
	return load(&source{
		fsys:       os.DirFS(dir),
		dir:        ".",
		displayDir: dir,
		display:    func(n string) string { return filepath.Join(dir, n) },
	}, v)
}

// LoadFS is Load with the override directory dir read from fsys (nil for
// none); error messages name its files dir/FILE.
func LoadFS(fsys fs.FS, dir string, v Validator) (*Set, error) {
	if fsys == nil {
		return load(nil, v)
	}
	if dir == "" {
		dir = "."
	}
	return load(&source{
		fsys:       fsys,
		dir:        dir,
		displayDir: dir,
		display:    func(n string) string { return path.Join(dir, n) },
	}, v)
}

// source is one origin of playbooks: the built-ins or the override dir.
type source struct {
	fsys       fs.FS
	dir        string                   // in fsys
	displayDir string                   // the directory as shown in errors
	display    func(name string) string // file name → path shown in errors
}

func load(extra *source, v Validator) (*Set, error) {
	var errs Errors
	all, e := loadSource(&source{
		fsys:       builtinFS,
		dir:        builtinDir,
		displayDir: builtinDir,
		display:    func(n string) string { return builtinDir + "/" + n },
	}, v)
	errs = append(errs, e...)
	if extra != nil {
		more, e := loadSource(extra, v)
		errs = append(errs, e...)
		for name, p := range more {
			all[name] = p
		}
	}
	if _, ok := all[GenericName]; !ok && len(errs) == 0 {
		errs = append(errs, &Error{File: builtinDir, Msg: "the built-in generic playbook is missing"})
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return newSet(all), nil
}

// loadSource parses every playbook file of one source. Two files of the same
// source defining the same name is an error.
func loadSource(src *source, v Validator) (map[string]*Playbook, Errors) {
	var errs Errors
	out := map[string]*Playbook{}
	entries, err := fs.ReadDir(src.fsys, src.dir)
	if err != nil {
		return out, Errors{{File: src.displayDir, Msg: "cannot read playbook directory: " + unwrapPathError(err)}}
	}
	nameAt := map[string]string{} // name → file that defined it
	for _, ent := range entries {
		name := ent.Name()
		if ent.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		if ext := path.Ext(name); ext != ".yaml" && ext != ".yml" {
			continue
		}
		file := src.display(name)
		data, err := fs.ReadFile(src.fsys, path.Join(src.dir, name))
		if err != nil {
			errs = append(errs, &Error{File: file, Msg: "cannot read: " + unwrapPathError(err)})
			continue
		}
		p, nameNode, perrs := parseFile(file, data, v)
		errs = append(errs, perrs...)
		if p == nil || p.Name == "" {
			continue
		}
		if prev, dup := nameAt[p.Name]; dup {
			errs = append(errs, nodeErr(file, nameNode, "name", fmt.Sprintf("duplicate playbook name %q (also defined in %s)", p.Name, prev)))
			continue
		}
		nameAt[p.Name] = file
		if len(perrs) == 0 {
			out[p.Name] = p
		}
	}
	return out, errs
}

func unwrapPathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

var (
	nameRE     = regexp.MustCompile(`^[a-z0-9-]+$`)
	yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// Known keys, in the order they are documented.
var (
	topKeys     = []string{"name", "title", "priority", "match", "probes", "sections", "actions"}
	sectionKeys = []string{"meaning", "impact", "diagnosis", "mitigation"}
	actionKeys  = []string{"kind", "label", "params"}
)

// parser collects the problems of one file.
type parser struct {
	file string
	errs Errors
}

func (ps *parser) errorf(n *yaml.Node, fieldPath, format string, args ...any) {
	ps.errs = append(ps.errs, nodeErr(ps.file, n, fieldPath, fmt.Sprintf(format, args...)))
}

func nodeErr(file string, n *yaml.Node, fieldPath, msg string) *Error {
	e := &Error{File: file, Path: fieldPath, Msg: msg}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	return e
}

// parseFile parses and validates one playbook file. It returns the playbook
// (possibly partial, when there are errors), the node holding its name (for
// duplicate reports) and the problems found.
func parseFile(file string, data []byte, v Validator) (*Playbook, *yaml.Node, Errors) {
	ps := &parser{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, Errors{{File: file, Line: 1, Col: 1, Msg: "empty file: expected one playbook"}}
		}
		return nil, nil, Errors{yamlErr(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		ps.errorf(&extra, "", "more than one YAML document: put one playbook per file")
	} else if !errors.Is(err, io.EOF) {
		ps.errs = append(ps.errs, yamlErr(file, err))
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		ps.errorf(root, "", "expected a mapping (name:, title:, match:, ...), got %s", kindName(root))
		return nil, nil, ps.errs
	}

	p := &Playbook{Source: file, Probes: []string{}}
	fields := ps.mapping(root, "", topKeys)
	var nameNode *yaml.Node
	if n := fields["name"]; n != nil {
		nameNode = n
		if s, ok := ps.str(n, "name"); ok {
			switch {
			case !nameRE.MatchString(s):
				ps.errorf(n, "name", "%q is not a valid name: use lower-case letters, digits and '-'", s)
			case len(s) > MaxNameLen:
				ps.errorf(n, "name", "longer than %d characters", MaxNameLen)
			default:
				p.Name = s
			}
		}
	} else {
		ps.errorf(root, "name", "required field is missing")
	}
	if n := fields["title"]; n != nil {
		if s, ok := ps.str(n, "title"); ok {
			switch {
			case strings.ContainsAny(s, "\r\n"):
				ps.errorf(n, "title", "must be a single line")
			case utf8.RuneCountInString(s) > MaxTitleLen:
				ps.errorf(n, "title", "longer than %d characters", MaxTitleLen)
			}
			p.Title = s
		}
	} else {
		ps.errorf(root, "title", "required field is missing")
	}
	if n := fields["priority"]; n != nil {
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			ps.errorf(n, "priority", "expected an integer, got %s", kindName(n))
		} else if i, err := strconv.Atoi(strings.ReplaceAll(n.Value, "_", "")); err != nil {
			ps.errorf(n, "priority", "expected an integer: %v", err)
		} else {
			p.Priority = i
		}
	}
	if n := fields["match"]; n != nil {
		ps.matchers(n, p)
		if p.Name == GenericName && len(p.Match) > 0 {
			ps.errorf(n, "match", "the generic playbook is the fallback for unmatched alerts and must have no matchers")
		}
	} else if p.Name != GenericName {
		ps.errorf(root, "match", "required field is missing (use `match: []` for a playbook that is only used by name)")
	}
	if n := fields["probes"]; n != nil {
		ps.probes(n, p, v)
	}
	if n := fields["sections"]; n != nil {
		ps.sections(n, p)
	} else {
		ps.errorf(root, "sections", "required field is missing (meaning, impact, diagnosis, mitigation)")
	}
	if n := fields["actions"]; n != nil {
		ps.actions(n, p, v)
	}
	return p, nameNode, ps.errs
}

func yamlErr(file string, err error) *Error {
	msg := err.Error()
	// yaml.v3 reports "yaml: line N: ..." for syntax errors.
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Col: 1, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: file, Line: 1, Col: 1, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing"
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		default:
			return fmt.Sprintf("%q", n.Value)
		}
	}
	return "a document"
}

// mapping returns the values of a mapping by key, reporting unknown and
// duplicate keys.
func (ps *parser) mapping(n *yaml.Node, at string, known []string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := join(at, k.Value)
		if k.Kind != yaml.ScalarNode {
			ps.errorf(k, at, "keys must be plain strings")
			continue
		}
		if !contains(known, k.Value) {
			ps.errorf(k, fp, "unknown field (known: %s)", strings.Join(known, ", "))
			continue
		}
		if _, dup := out[k.Value]; dup {
			ps.errorf(k, fp, "duplicate field")
			continue
		}
		out[k.Value] = val
	}
	return out
}

func join(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// str returns a scalar's text; any non-null scalar counts as a string.
func (ps *parser) str(n *yaml.Node, fp string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		ps.errorf(n, fp, "expected a string, got %s", kindName(n))
		return "", false
	}
	s := strings.TrimSpace(n.Value)
	if s == "" {
		ps.errorf(n, fp, "must not be empty")
		return "", false
	}
	return s, true
}

// seq checks that n is a list (an empty or null value is an empty list).
func (ps *parser) seq(n *yaml.Node, fp string) ([]*yaml.Node, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		ps.errorf(n, fp, "expected a list, got %s", kindName(n))
		return nil, false
	}
	return n.Content, true
}

func (ps *parser) matchers(n *yaml.Node, p *Playbook) {
	items, ok := ps.seq(n, "match")
	if !ok {
		return
	}
	for i, it := range items {
		fp := fmt.Sprintf("match[%d]", i)
		s, ok := ps.str(it, fp)
		if !ok {
			continue
		}
		ms, err := labels.ParseMatchers(s)
		if err != nil {
			ps.errorf(it, fp, "bad matcher: %v", err)
			continue
		}
		if len(ms) == 0 {
			ps.errorf(it, fp, "empty matcher set would match every alert")
			continue
		}
		p.Match = append(p.Match, ms)
		p.MatchText = append(p.MatchText, s)
	}
}

func (ps *parser) probes(n *yaml.Node, p *Playbook, v Validator) {
	items, ok := ps.seq(n, "probes")
	if !ok {
		return
	}
	seen := map[string]bool{}
	for i, it := range items {
		fp := fmt.Sprintf("probes[%d]", i)
		s, ok := ps.str(it, fp)
		if !ok {
			continue
		}
		switch {
		case v.Probe != nil && !v.Probe(s):
			ps.errorf(it, fp, "unknown probe %q", s)
		case seen[s]:
			ps.errorf(it, fp, "duplicate probe %q", s)
		default:
			seen[s] = true
			p.Probes = append(p.Probes, s)
		}
	}
}

func (ps *parser) sections(n *yaml.Node, p *Playbook) {
	if n.Kind != yaml.MappingNode {
		ps.errorf(n, "sections", "expected a mapping of meaning, impact, diagnosis, mitigation, got %s", kindName(n))
		return
	}
	fields := ps.mapping(n, "sections", sectionKeys)
	dst := map[string]*string{
		"meaning":    &p.Sections.Meaning,
		"impact":     &p.Sections.Impact,
		"diagnosis":  &p.Sections.Diagnosis,
		"mitigation": &p.Sections.Mitigation,
	}
	for _, k := range sectionKeys {
		fp := "sections." + k
		sn := fields[k]
		if sn == nil {
			ps.errorf(n, fp, "required section is missing")
			continue
		}
		s, ok := ps.str(sn, fp)
		if !ok {
			continue
		}
		if l := utf8.RuneCountInString(s); l > MaxSectionLen {
			ps.errorf(sn, fp, "too long: %d characters (Slack shows at most %d)", l, MaxSectionLen)
			continue
		}
		*dst[k] = s
	}
}

func (ps *parser) actions(n *yaml.Node, p *Playbook, v Validator) {
	items, ok := ps.seq(n, "actions")
	if !ok {
		return
	}
	labelsSeen := map[string]int{}
	for i, it := range items {
		at := fmt.Sprintf("actions[%d]", i)
		if it.Kind != yaml.MappingNode {
			ps.errorf(it, at, "expected a mapping (kind:, label:, params:), got %s", kindName(it))
			continue
		}
		before := len(ps.errs)
		fields := ps.mapping(it, at, actionKeys)
		a := ActionRef{Params: map[string]string{}}
		if kn := fields["kind"]; kn != nil {
			a.Kind, _ = ps.str(kn, at+".kind")
		} else {
			ps.errorf(it, at+".kind", "required field is missing")
		}
		if pn := fields["params"]; pn != nil {
			ps.params(pn, at+".params", a.Params)
		}
		if ln := fields["label"]; ln != nil {
			if s, ok := ps.str(ln, at+".label"); ok {
				if utf8.RuneCountInString(s) > MaxLabelLen || strings.ContainsAny(s, "\r\n") {
					ps.errorf(ln, at+".label", "must be one line of at most %d characters", MaxLabelLen)
				}
				a.Label = s
			}
		} else if a.Kind != "" {
			a.Label = DefaultLabel(a.Kind)
		}
		if len(ps.errs) > before {
			continue
		}
		if v.Action != nil {
			if err := v.Action(a.Kind, a.Params); err != nil {
				where, fp := fields["kind"], at+".kind"
				if pn := fields["params"]; pn != nil && len(a.Params) > 0 {
					where, fp = pn, at+".params"
				}
				ps.errorf(where, fp, "%s", err.Error())
				continue
			}
		}
		if j, dup := labelsSeen[a.Label]; dup {
			ps.errorf(it, at+".label", "same button label %q as actions[%d]", a.Label, j)
			continue
		}
		labelsSeen[a.Label] = i
		p.Actions = append(p.Actions, a)
	}
}

func (ps *parser) params(n *yaml.Node, at string, dst map[string]string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		ps.errorf(n, at, "expected a mapping of names to values, got %s", kindName(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			ps.errorf(k, at, "parameter names must be plain strings")
			continue
		}
		fp := at + "." + k.Value
		if _, dup := dst[k.Value]; dup {
			ps.errorf(k, fp, "duplicate parameter")
			continue
		}
		if val.Kind != yaml.ScalarNode || val.Tag == "!!null" {
			ps.errorf(val, fp, "expected a value, got %s", kindName(val))
			continue
		}
		dst[k.Value] = val.Value
	}
}

// DefaultLabel is the button text used when an action has no label.
func DefaultLabel(kind string) string {
	switch kind {
	case "ddl_freeze":
		return "Freeze DDL"
	case "rolling_restart":
		return "Rolling restart"
	case "collect_logs":
		return "Collect logs"
	}
	s := strings.ReplaceAll(kind, "_", " ")
	if s == "" {
		return s
	}
	r, size := utf8.DecodeRuneInString(s)
	s = strings.ToUpper(string(r)) + s[size:]
	if utf8.RuneCountInString(s) > MaxLabelLen {
		s = string([]rune(s)[:MaxLabelLen])
	}
	return s
}
