package config

import (
	"fmt"
	"log/slog"
	"strconv"
)

const redacted = "<redacted>"

// Secret is a resolved secret value (a token or password). It is read from a
// file (a "*_file" key) or an environment variable (a "*_env" key) when the
// configuration is loaded; inline values are rejected.
//
// Every way of printing or encoding a Secret — String, fmt verbs (including
// %+v and %#v), GoString, MarshalYAML, MarshalJSON and slog's LogValue —
// gives "<redacted>" when it is set and "" when it is not. Only Value returns
// the secret itself.
type Secret struct {
	value string
	file  string // resolved path of the *_file key it was read from
	env   string // name of the environment variable it was read from
}

// NewSecret returns a Secret holding v, for tests and programmatic
// configuration.
func NewSecret(v string) Secret { return Secret{value: v} }

// Value returns the secret itself. Pass it only to the party that needs it
// (an HTTP header, a database driver); never log it.
func (s Secret) Value() string { return s.value }

// IsSet reports whether the secret has a (non-empty) value.
func (s Secret) IsSet() bool { return s.value != "" }

// String returns "<redacted>", or "" when the secret is not set.
func (s Secret) String() string {
	if s.value == "" {
		return ""
	}
	return redacted
}

// GoString returns the same as String, so %#v does not reveal the value.
func (s Secret) GoString() string { return s.String() }

// Format implements fmt.Formatter so that no verb (%v, %+v, %#v, %s, %q, %x,
// %d, ...) reveals the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = f.Write([]byte(strconv.Quote(s.String())))
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// MarshalYAML encodes the secret as "<redacted>" (or "" when unset).
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON encodes the secret as "<redacted>" (or "" when unset).
func (s Secret) MarshalJSON() ([]byte, error) {
	if s.value == "" {
		return []byte(`""`), nil
	}
	return []byte(`"` + redacted + `"`), nil
}

// LogValue implements slog.LogValuer: "<redacted>" (or "" when unset).
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
