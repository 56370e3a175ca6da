package webhook

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// Summary is what acceptance needs of a payload: the fields stored beside
// it and its dedup key. The workers decode the stored payload in full.
type Summary struct {
	GroupKey, Status, Receiver string
	Alerts                     int
	DedupKey                   string
}

// Summary of a decoded message.
func (m *Message) Summary() Summary {
	return Summary{GroupKey: m.GroupKey, Status: m.Status, Receiver: m.Receiver, Alerts: len(m.Alerts), DedupKey: m.DedupKey()}
}

// Summarize validates a payload and returns its summary. Payloads of the
// shape Alertmanager sends take a single pass over the bytes that
// allocates little (fastSummary); anything else — an error to explain, an
// escaped or non-ASCII key, a duplicate field, an alert without a
// fingerprint — goes through Parse, the reference. The fast pass only says
// yes to payloads Parse accepts, with the same summary
// (FuzzFastSummaryAgreesWithParse): it exists because decoding into maps
// and times was most of the CPU of accepting a storm's large payloads.
func Summarize(body []byte) (Summary, error) {
	if s, ok := fastSummary(body); ok {
		return s, nil
	}
	m, err := Parse(body)
	if err != nil {
		return Summary{}, err
	}
	return m.Summary(), nil
}

// maxFastDepth bounds the nesting the fast pass follows; deeper input is
// left to Parse (encoding/json allows 10000).
const maxFastDepth = 512

type fastScanner struct {
	b     []byte
	i     int
	depth int
}

func fastSummary(body []byte) (Summary, bool) {
	s := &fastScanner{b: body}
	var (
		version, groupKey, status, receiver string
		truncated                           uint64
		parts                               []string
		haveAlerts                          bool
		seen                                uint32
	)
	ok := s.object(func(key []byte) bool {
		f := lookupField(key, messageFields)
		if f < 0 {
			return s.skip()
		}
		if seen&(1<<f) != 0 { // a repeated field: Parse knows what wins
			return false
		}
		seen |= 1 << f
		switch messageFields[f] {
		case "version":
			return s.str(&version)
		case "groupKey":
			return s.str(&groupKey)
		case "status":
			return s.str(&status)
		case "receiver":
			return s.str(&receiver)
		case "truncatedAlerts":
			return s.uint(&truncated)
		case "alerts":
			haveAlerts = true
			return s.alerts(&parts)
		case "groupLabels", "commonLabels", "commonAnnotations", "routeLabels":
			_, ok := s.kv(true)
			return ok
		default: // externalURL, notification_reason
			return s.strOrNull()
		}
	})
	if !ok {
		return Summary{}, false
	}
	s.ws()
	if s.i != len(s.b) {
		return Summary{}, false
	}
	// Validate's rules; a payload that breaks one is explained by Parse.
	if version != "4" || groupKey == "" || !haveAlerts || len(parts) == 0 || (status != "firing" && status != "resolved") {
		return Summary{}, false
	}
	return Summary{GroupKey: groupKey, Status: status, Receiver: receiver, Alerts: len(parts),
		DedupKey: dedupKey(groupKey, status, truncated, parts)}, true
}

// messageFields and alertFields are the JSON names Parse decodes (Message,
// template.Data, template.Alert); TestFastFieldsMatchTheTypes keeps them in
// step with the types.
var (
	messageFields = []string{"version", "groupKey", "truncatedAlerts", "receiver", "status", "alerts",
		"notification_reason", "groupLabels", "commonLabels", "commonAnnotations", "routeLabels", "externalURL"}
	alertFields = []string{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
)

// lookupField matches a key as encoding/json does: the exact name, else
// one equal under bytes.EqualFold (the keys given here are plain ASCII:
// object refuses any other, whose folding is left to Parse); -1 for a
// field Parse ignores.
func lookupField(key []byte, fields []string) int {
	for i, f := range fields {
		if string(key) == f {
			return i
		}
	}
	for i, f := range fields {
		if bytes.EqualFold(key, []byte(f)) {
			return i
		}
	}
	return -1
}

func (s *fastScanner) alerts(parts *[]string) bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '[' {
		return false // null or not an array: Parse explains
	}
	return s.elements(func() bool {
		p, ok := s.alert()
		if ok {
			*parts = append(*parts, p)
		}
		return ok
	})
}

// alert scans one alert object and returns its dedup part.
func (s *fastScanner) alert() (string, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return "", false
	}
	var (
		status, fingerprint string
		startsAt, endsAt    time.Time
		labels              bool
		seen                uint32
	)
	ok := s.object(func(key []byte) bool {
		f := lookupField(key, alertFields)
		if f < 0 {
			return s.skip()
		}
		if seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		switch alertFields[f] {
		case "status":
			return s.str(&status)
		case "fingerprint":
			return s.str(&fingerprint)
		case "labels":
			n, ok := s.kv(false)
			labels = n > 0
			return ok
		case "annotations":
			_, ok := s.kv(true)
			return ok
		case "startsAt":
			return s.time(&startsAt)
		case "endsAt":
			return s.time(&endsAt)
		default: // generatorURL
			return s.strOrNull()
		}
	})
	if !ok || !labels || fingerprint == "" || (status != "firing" && status != "resolved") {
		return "", false
	}
	return dedupPart(fingerprint, status, startsAt, endsAt), true
}

// object scans an object, calling field with each key (a plain ASCII key
// without escapes; any other key refuses the fast pass) positioned before
// the value, which field must consume.
func (s *fastScanner) object(field func(key []byte) bool) bool {
	s.ws()
	return s.members(true, field)
}

// kv scans a map of strings (template.KV): an object whose values are
// strings or null, or null when nullOK. It returns the number of keys.
func (s *fastScanner) kv(nullOK bool) (int, bool) {
	s.ws()
	if s.literal("null") {
		return 0, nullOK
	}
	n := 0
	ok := s.objectAnyKeys(func() bool {
		n++
		return s.strOrNull()
	})
	return n, ok
}

// objectAnyKeys is object for maps: any valid key (escapes and non-ASCII
// included, as encoding/json decodes them into the map).
func (s *fastScanner) objectAnyKeys(value func() bool) bool {
	return s.members(false, func([]byte) bool { return value() })
}

// members scans the object at s.i: its keys (plain ASCII ones only when
// plainKeys) and, through field, their values.
func (s *fastScanner) members(plainKeys bool, field func(key []byte) bool) bool {
	return s.container('{', '}', func() bool {
		raw, plain, ok := s.rawString()
		if !ok || (plainKeys && !plain) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		return field(raw[1 : len(raw)-1])
	})
}

// elements scans the array at s.i, each element through elem.
func (s *fastScanner) elements(elem func() bool) bool {
	return s.container('[', ']', elem)
}

// container scans an object or an array at s.i: open, then items
// separated by commas, then close; item consumes one (after whitespace).
func (s *fastScanner) container(open, close byte, item func() bool) bool {
	if s.i >= len(s.b) || s.b[s.i] != open {
		return false
	}
	s.depth++
	if s.depth > maxFastDepth {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == close {
		s.i++
		s.depth--
		return true
	}
	for {
		s.ws()
		if !item() {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case close:
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// str scans a string (not null) into v.
func (s *fastScanner) str(v *string) bool {
	s.ws()
	raw, plain, ok := s.rawString()
	if !ok {
		return false
	}
	if plain {
		*v = string(raw[1 : len(raw)-1])
		return true
	}
	if u, ok := unescape(raw[1 : len(raw)-1]); ok {
		*v = u
		return true
	}
	// \u escapes or non-ASCII bytes: encoding/json's own unquoting (invalid
	// UTF-8 becomes U+FFFD there).
	return json.Unmarshal(raw, v) == nil
}

func (s *fastScanner) strOrNull() bool {
	s.ws()
	if s.literal("null") {
		return true
	}
	_, _, ok := s.rawString()
	return ok
}

// uint scans an unsigned integer as encoding/json decodes one into uint64.
func (s *fastScanner) uint(v *uint64) bool {
	s.ws()
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	digits := s.b[start:s.i]
	if len(digits) == 0 || (len(digits) > 1 && digits[0] == '0') {
		return false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return false
		}
	}
	n, err := strconv.ParseUint(string(digits), 10, 64)
	*v = n
	return err == nil
}

// time scans a timestamp with time.Time's own UnmarshalJSON, given the
// literal as encoding/json would give it.
func (s *fastScanner) time(v *time.Time) bool {
	s.ws()
	raw, _, ok := s.rawString()
	if !ok {
		return false
	}
	return v.UnmarshalJSON(raw) == nil
}

// rawString scans a JSON string and returns it with its quotes; plain
// means no escapes and only ASCII, so that the bytes are the value.
func (s *fastScanner) rawString() (raw []byte, plain, ok bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, false
	}
	start := s.i
	s.i++
	plain = true
	for s.i < len(s.b) {
		for s.i < len(s.b) && plainByte[s.b[s.i]] {
			s.i++
		}
		if s.i >= len(s.b) {
			break
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start:s.i], plain, true
		case c == '\\':
			plain = false
			s.i++
			if s.i >= len(s.b) {
				return nil, false, false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+4 >= len(s.b) {
					return nil, false, false
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !isHex(h) {
						return nil, false, false
					}
				}
				s.i += 5
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		default: // >= 0x80
			plain = false
			s.i++
		}
	}
	return nil, false, false
}

// plainByte marks the bytes a string's value has as they are: printable
// ASCII other than the quote and the backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// unescape decodes the body of a JSON string whose escapes are the
// one-letter ones and whose bytes are ASCII (a group key's \"): the value
// encoding/json gives it. ok is false for anything else (\u escapes,
// non-ASCII bytes), left to encoding/json.
func unescape(body []byte) (string, bool) {
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c >= 0x80 {
			return "", false
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++ // rawString checked that an escape follows
		switch body[i] {
		case '"', '\\', '/':
			out = append(out, body[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		default: // u
			return "", false
		}
	}
	return string(out), true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (s *fastScanner) literal(lit string) bool {
	if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		s.i += len(lit)
		return true
	}
	return false
}

// skip scans any JSON value.
func (s *fastScanner) skip() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, ok := s.rawString()
		return ok
	case c == '{':
		return s.objectAnyKeys(s.skip)
	case c == '[':
		return s.elements(s.skip)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		return s.number()
	}
}

// number scans a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *fastScanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	s.i = i
	return true
}

func (s *fastScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}
