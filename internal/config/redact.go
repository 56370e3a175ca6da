package config

import (
	"bytes"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Redacted returns the configuration as loaded — defaults filled in, paths
// resolved — as YAML, for "chmedic config". Secrets are shown by their
// source key (e.g. "bot_token_file: /run/secrets/slack") with a
// "# <redacted>" comment, never by value; a secret without a source (from
// NewSecret) is shown as "<redacted>". Unset optional sections are left out.
// The output is itself a loadable configuration.
func (c *Config) Redacted() ([]byte, error) {
	n := encodeValue(reflect.ValueOf(c).Elem())
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// encodeValue builds the YAML node for v; nil means "leave out".
func encodeValue(v reflect.Value) *yaml.Node {
	t := v.Type()
	switch {
	case t == durationType:
		return scalarNode(fmtDuration(time.Duration(v.Int())))
	case t == byteSizeType:
		return scalarNode(ByteSize(v.Int()).String())
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return encodeValue(v.Elem())
	case reflect.Slice:
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		scalars := true
		for i := range v.Len() {
			item := encodeValue(v.Index(i))
			if item == nil {
				item = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
			}
			if item.Kind != yaml.ScalarNode {
				scalars = false
			}
			seq.Content = append(seq.Content, item)
		}
		if scalars {
			seq.Style = yaml.FlowStyle
		}
		return seq
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			if f.Type == secretType {
				m.Content = append(m.Content, encodeSecret(name, v.Field(i).Interface().(Secret))...)
				continue
			}
			val := encodeValue(v.Field(i))
			if val == nil {
				continue
			}
			m.Content = append(m.Content, scalarNode(name), val)
		}
		if len(m.Content) == 0 {
			return nil
		}
		return m
	}
	var n yaml.Node
	if err := n.Encode(v.Interface()); err != nil {
		return scalarNode(err.Error())
	}
	return &n
}

func encodeSecret(name string, s Secret) []*yaml.Node {
	switch {
	case !s.IsSet():
		return nil
	case s.file != "":
		v := scalarNode(s.file)
		v.LineComment = redacted
		return []*yaml.Node{scalarNode(name + "_file"), v}
	case s.env != "":
		v := scalarNode(s.env)
		v.LineComment = redacted
		return []*yaml.Node{scalarNode(name + "_env"), v}
	}
	return []*yaml.Node{scalarNode(name), scalarNode(redacted)}
}

func scalarNode(s string) *yaml.Node {
	var n yaml.Node
	_ = n.Encode(s)
	return &n
}
