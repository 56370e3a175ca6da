package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder decodes a yaml.Node tree into Go values by reflection, following
// `yaml:"key"` struct tags, and collects FieldErrors instead of stopping at
// the first one. It remembers the node of every path it decoded so that
// validation can report positions.
type decoder struct {
	file     string
	baseDir  string
	env      func(string) (string, bool)
	readFile func(string) ([]byte, error)

	root  *yaml.Node            // the document's top-level node, nil if empty
	nodes map[string]*yaml.Node // path → value node
	bad   map[string]bool       // paths whose value could not be decoded
	// validating is set once decoding is done; errors no longer mark paths bad.
	validating bool
	errs       Errors
}

func parse(file, baseDir string, data []byte, env func(string) (string, bool), readFile func(string) ([]byte, error)) (*Config, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	d := &decoder{file: file, baseDir: baseDir, env: env, readFile: readFile, nodes: map[string]*yaml.Node{}, bad: map[string]bool{}}
	cfg := defaults()
	cfg.File = file
	if d.parseYAML(data) {
		if d.root != nil {
			d.decode(d.root, reflect.ValueOf(cfg).Elem(), "")
		}
		d.validating = true
		d.finish(cfg)
		d.validate(cfg)
	}
	if len(d.errs) > 0 {
		d.errs.Sort()
		return nil, d.errs
	}
	return cfg, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses data into d.root; it reports syntax errors and returns
// false when there is nothing to decode.
func (d *decoder) parseYAML(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return true // empty file: defaults only, validation reports what is missing
	}
	if err != nil {
		d.syntaxError(err)
		return false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errs = append(d.errs, &FieldError{File: d.file, Line: extra.Line, Col: extra.Column, Msg: "more than one YAML document; only one is allowed"})
		return false
	} else if !errors.Is(err, io.EOF) {
		d.syntaxError(err)
		return false
	}
	if len(doc.Content) == 0 {
		return true
	}
	d.root = doc.Content[0]
	if d.root.Kind == yaml.ScalarNode && d.root.Tag == "!!null" {
		d.root = nil
	}
	return true
}

func (d *decoder) syntaxError(err error) {
	fe := &FieldError{File: d.file, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		fe.Line, _ = strconv.Atoi(m[1])
		fe.Msg = "invalid YAML: " + m[2]
	}
	d.errs = append(d.errs, fe)
}

// errAt records an error at node n. During decoding, it also marks path as
// bad, so that validation does not report it again.
func (d *decoder) errAt(n *yaml.Node, path, format string, args ...any) {
	if !d.validating {
		d.bad[path] = true
	}
	fe := &FieldError{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		fe.Line, fe.Col = n.Line, n.Column
	} else {
		fe.Line, fe.Col = 1, 1
	}
	d.errs = append(d.errs, fe)
}

// fail records a validation error for path, positioned at path's node or,
// when the key is absent, at the nearest enclosing node that is present. It
// is silent when path or an enclosing path already failed to decode.
func (d *decoder) fail(path, format string, args ...any) {
	for p := path; ; p = parentPath(p) {
		if d.bad[p] {
			return
		}
		if p == "" {
			break
		}
	}
	d.errAt(d.nodeFor(path), path, format, args...)
}

func (d *decoder) nodeFor(path string) *yaml.Node {
	for p := path; p != ""; p = parentPath(p) {
		if n, ok := d.nodes[p]; ok {
			return n
		}
	}
	return d.root
}

// present reports whether path was given a non-null value in the file.
func (d *decoder) present(path string) bool {
	n, ok := d.nodes[path]
	return ok && !isNull(n)
}

func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	}
	return "a scalar"
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
	secretType   = reflect.TypeFor[Secret]()
)

// defaulter is implemented by list element types with per-element defaults.
type defaulter interface{ setDefaults() }

// decode decodes n into v. A null value leaves v (its default) unchanged.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if path != "" {
		d.nodes[path] = n
	}
	if isNull(n) {
		return
	}
	t := v.Type()
	switch {
	case t == durationType:
		s, ok := d.scalar(n, path, "a duration")
		if !ok {
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.errAt(n, path, "invalid duration %q (use a Go duration such as 30s, 5m or 1h30m)", s)
			return
		}
		v.SetInt(int64(dur))
		return
	case t == byteSizeType:
		s, ok := d.scalar(n, path, "a byte size")
		if !ok {
			return
		}
		b, err := ParseByteSize(s)
		if err != nil {
			d.errAt(n, path, "%v", err)
			return
		}
		v.SetInt(int64(b))
		return
	}
	switch t.Kind() {
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		s, ok := d.scalar(n, path, "true or false")
		if !ok {
			return
		}
		switch strings.ToLower(s) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.errAt(n, path, "invalid boolean %q (use true or false)", s)
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		s, ok := d.scalar(n, path, "an integer")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, t.Bits())
		if err != nil {
			d.errAt(n, path, "invalid integer %q", s)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		s, ok := d.scalar(n, path, "a number")
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.errAt(n, path, "invalid number %q", s)
			return
		}
		v.SetFloat(f)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errAt(n, path, "expected a list, got %s", kindName(n))
			return
		}
		if len(n.Content) == 0 {
			v.Set(reflect.Zero(t)) // an empty list is the same as none
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			e := s.Index(i)
			if df, ok := e.Addr().Interface().(defaulter); ok {
				df.setDefaults()
			}
			d.decode(item, e, fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Pointer:
		if v.IsNil() {
			p := reflect.New(t.Elem())
			if df, ok := p.Interface().(defaulter); ok {
				df.setDefaults()
			}
			v.Set(p)
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	default:
		panic("config: cannot decode into " + t.String())
	}
}

// scalar returns n's value when it is a scalar, else records an error.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errAt(n, path, "expected %s, got %s", want, kindName(n))
		return "", false
	}
	return n.Value, true
}

type fieldKind int

const (
	fieldPlain fieldKind = iota
	fieldSecretFile
	fieldSecretEnv
	fieldSecretInline
)

type fieldRef struct {
	index int
	kind  fieldKind
	name  string // the yaml tag name
}

// structKeys maps every accepted key of struct type t to its field; a
// Secret field "x" accepts "x_file" and "x_env" and rejects "x". It also
// returns the accepted keys in field order.
func structKeys(t reflect.Type) (map[string]fieldRef, []string) {
	m := map[string]fieldRef{}
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		if f.Type == secretType {
			m[name+"_file"] = fieldRef{i, fieldSecretFile, name}
			m[name+"_env"] = fieldRef{i, fieldSecretEnv, name}
			m[name] = fieldRef{i, fieldSecretInline, name}
			keys = append(keys, name+"_file", name+"_env")
			continue
		}
		m[name] = fieldRef{i, fieldPlain, name}
		keys = append(keys, name)
	}
	return m, keys
}

type secretRef struct {
	envKey    *yaml.Node
	file, env *yaml.Node
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errAt(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields, keys := structKeys(v.Type())
	seen := map[string]*yaml.Node{}
	secrets := map[int]*secretRef{}
	var secretOrder []int
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		for vn.Kind == yaml.AliasNode && vn.Alias != nil {
			vn = vn.Alias
		}
		key := kn.Value
		kpath := joinPath(path, key)
		if kn.Kind != yaml.ScalarNode {
			d.errAt(kn, path, "mapping keys must be strings")
			continue
		}
		if prev, dup := seen[key]; dup {
			d.errAt(kn, kpath, "duplicate key (first set at line %d)", prev.Line)
			continue
		}
		seen[key] = kn
		f, ok := fields[key]
		if !ok {
			d.nodes[kpath] = kn
			d.errAt(kn, kpath, "%s", unknownKeyMsg(key, keys))
			continue
		}
		switch f.kind {
		case fieldPlain:
			d.decode(vn, v.Field(f.index), kpath)
		case fieldSecretInline:
			d.nodes[kpath] = vn
			d.errAt(kn, kpath, "inline secrets are not allowed; use %s_file or %s_env", key, key)
		case fieldSecretFile, fieldSecretEnv:
			d.nodes[kpath] = vn
			ref := secrets[f.index]
			if ref == nil {
				ref = &secretRef{}
				secrets[f.index] = ref
				secretOrder = append(secretOrder, f.index)
			}
			if f.kind == fieldSecretFile {
				ref.file = vn
			} else {
				ref.envKey, ref.env = kn, vn
			}
		}
	}
	for _, idx := range secretOrder {
		ref := secrets[idx]
		name, _, _ := strings.Cut(v.Type().Field(idx).Tag.Get("yaml"), ",")
		if ref.file != nil && !isNull(ref.file) && ref.env != nil && !isNull(ref.env) {
			d.errAt(ref.envKey, joinPath(path, name+"_env"), "cannot be combined with %s_file; set only one", name)
			continue
		}
		if s, ok := d.resolveSecret(ref, path, name); ok {
			v.Field(idx).Set(reflect.ValueOf(s))
		}
	}
}

// resolveSecret reads the secret named by a *_file or *_env key.
func (d *decoder) resolveSecret(ref *secretRef, path, name string) (Secret, bool) {
	if ref.file != nil && !isNull(ref.file) {
		p := joinPath(path, name+"_file")
		fn, ok := d.scalar(ref.file, p, "a file path")
		if !ok {
			return Secret{}, false
		}
		if fn == "" {
			d.errAt(ref.file, p, "must not be empty")
			return Secret{}, false
		}
		fn = d.resolvePath(fn)
		data, err := d.readFile(fn)
		if err != nil {
			d.errAt(ref.file, p, "cannot read secret file: %v", err)
			return Secret{}, false
		}
		val := strings.TrimRight(string(data), "\r\n")
		if val == "" {
			d.errAt(ref.file, p, "secret file %s is empty", fn)
			return Secret{}, false
		}
		return Secret{value: val, file: fn}, true
	}
	if ref.env != nil && !isNull(ref.env) {
		p := joinPath(path, name+"_env")
		env, ok := d.scalar(ref.env, p, "an environment variable name")
		if !ok {
			return Secret{}, false
		}
		if env == "" {
			d.errAt(ref.env, p, "must not be empty")
			return Secret{}, false
		}
		val, ok := d.env(env)
		if !ok {
			d.errAt(ref.env, p, "environment variable %s is not set", env)
			return Secret{}, false
		}
		if val == "" {
			d.errAt(ref.env, p, "environment variable %s is empty", env)
			return Secret{}, false
		}
		return Secret{value: val, env: env}, true
	}
	return Secret{}, false
}

// resolvePath makes p relative to the configuration file's directory.
func (d *decoder) resolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.baseDir, p)
}

func unknownKeyMsg(key string, valid []string) string {
	best, bestDist := "", 3
	for _, k := range valid {
		if dist := editDistance(key, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown key (did you mean %q?)", best)
	}
	return "unknown key (valid keys: " + strings.Join(valid, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
