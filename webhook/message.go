// Package webhook owns chmedic's inbound side: the Alertmanager webhook
// (payload version 4) — authentication, size limits, decoding and
// validation, deduplication, durable acceptance — and the bounded queue of
// workers that processes accepted notifications asynchronously, replaying
// unfinished ones after a restart.
package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/alertmanager/template"
)

// Message is Alertmanager's webhook payload (version 4): the template data
// plus the protocol fields the webhook notifier adds.
type Message struct {
	*template.Data

	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// RequestError is a rejection: the HTTP status to answer and a one-line reason.
type RequestError struct {
	Status int
	Reason string
	// Kind is a short stable label for the rejection metric.
	Kind string
}

func (e *RequestError) Error() string { return e.Reason }

func reject(status int, kind, format string, args ...any) *RequestError {
	return &RequestError{Status: status, Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

// Decode reads and validates one payload of at most limit bytes.
func Decode(r io.Reader, limit int64) (*Message, []byte, error) {
	body, err := ReadBody(r, limit)
	if err != nil {
		return nil, nil, err
	}
	m, err := Parse(body)
	if err != nil {
		return nil, nil, err
	}
	return m, body, nil
}

// ReadBody reads a payload of at most limit bytes.
func ReadBody(r io.Reader, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, reject(http.StatusRequestEntityTooLarge, "too_large", "payload larger than %d bytes", limit)
		}
		return nil, reject(http.StatusBadRequest, "read_error", "reading body: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, reject(http.StatusRequestEntityTooLarge, "too_large", "payload larger than %d bytes", limit)
	}
	return body, nil
}

// Parse decodes and validates a payload already in memory.
func Parse(body []byte) (*Message, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, reject(http.StatusBadRequest, "empty", "empty body: expected an Alertmanager webhook JSON payload")
	}
	var m Message
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil {
		return nil, reject(http.StatusBadRequest, "bad_json", "not valid JSON: %s", jsonErr(err))
	}
	// Only whitespace may follow (dec.More alone lets a stray ']' or '}' pass).
	if rest := bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, reject(http.StatusBadRequest, "bad_json", "not valid JSON: trailing data after the payload (at byte %d)", len(body)-len(rest))
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q: expected %s, got %s (at byte %d)", te.Field, te.Type, te.Value, te.Offset)
	}
	return err.Error()
}

// Validate checks the fields chmedic relies on.
func (m *Message) Validate() error {
	bad := func(kind, format string, args ...any) error {
		return reject(http.StatusBadRequest, kind, format, args...)
	}
	switch {
	case m.Version == "":
		return bad("bad_version", "missing version: expected \"4\"")
	case m.Version != "4":
		return bad("bad_version", "unsupported payload version %q: expected \"4\"", m.Version)
	case m.GroupKey == "":
		return bad("missing_group_key", "missing groupKey")
	case m.Data == nil || m.Alerts == nil:
		return bad("missing_alerts", "missing alerts")
	case len(m.Alerts) == 0:
		return bad("missing_alerts", "alerts is empty")
	case m.Status != "firing" && m.Status != "resolved":
		return bad("bad_status", "status %q: expected \"firing\" or \"resolved\"", m.Status)
	}
	for i, a := range m.Alerts {
		if a.Status != "firing" && a.Status != "resolved" {
			return bad("bad_status", "alerts[%d].status %q: expected \"firing\" or \"resolved\"", i, a.Status)
		}
		if len(a.Labels) == 0 {
			return bad("missing_labels", "alerts[%d].labels is empty", i)
		}
	}
	return nil
}

// DedupKey identifies one state of a group: the group, its overall status,
// how many alerts were truncated, and each alert's fingerprint, status and
// startsAt (and endsAt once resolved; Alertmanager sends firing alerts with
// a zero endsAt). Alert order does not matter. The store collapses a
// notification only when it equals the group's latest accepted state, as
// Alertmanager's nflog compares with its latest entry: a repeat or an HA
// twin of that state is one event; any other state (an alert gained, lost,
// resolved, or firing again with a new startsAt) is a change.
func (m *Message) DedupKey() string {
	parts := make([]string, 0, len(m.Alerts))
	for _, a := range m.Alerts {
		parts = append(parts, dedupPart(alertID(a), a.Status, a.StartsAt, a.EndsAt))
	}
	return dedupKey(m.GroupKey, m.Status, m.TruncatedAlerts, parts)
}

// dedupPart is one alert's share of the dedup key.
func dedupPart(id, status string, startsAt, endsAt time.Time) string {
	p := id + "=" + status + "@" + strconv.FormatInt(startsAt.UnixNano(), 10)
	if status == "resolved" {
		p += "-" + strconv.FormatInt(endsAt.UnixNano(), 10)
	}
	return p
}

// dedupKey hashes a group's state from its alerts' parts (reordered).
func dedupKey(groupKey, status string, truncated uint64, parts []string) string {
	sort.Strings(parts)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d", groupKey, status, truncated)
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// alertID is the alert's fingerprint, or (for hand-made payloads without
// one) a hash of its labels.
func alertID(a template.Alert) string {
	if a.Fingerprint != "" {
		return a.Fingerprint
	}
	sum := sha256.Sum256([]byte(labelsKey(a.Labels)))
	return "labels:" + hex.EncodeToString(sum[:8])
}

func labelsKey(kv template.KV) string {
	var b bytes.Buffer
	for _, p := range kv.SortedPairs() {
		b.WriteString(p.Name)
		b.WriteByte(0xff)
		b.WriteString(p.Value)
		b.WriteByte(0xfe)
	}
	return b.String()
}
