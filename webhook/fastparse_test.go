package webhook

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/alertmanager/template"
)

var fixtures = []string{"firing-1.json", "resolved-1.json", "firing-100.json", "am025-firing.json", "am025-partial-resolve.json"}

// agree checks the fast pass's promise on one input: when it says yes,
// Parse says yes with the same summary.
func agree(t testing.TB, body []byte) (fast bool) {
	t.Helper()
	got, ok := fastSummary(body)
	if !ok {
		return false
	}
	m, err := Parse(body)
	if err != nil {
		t.Fatalf("the fast pass accepted what Parse refuses (%v):\n%s", err, body)
	}
	if want := m.Summary(); got != want {
		t.Fatalf("summaries differ:\nfast  %+v\nParse %+v\ninput %s", got, want, body)
	}
	return true
}

// Payloads as Alertmanager sends them take the fast pass (otherwise it
// would be dead code and the agreement tests would prove nothing).
func TestFastSummaryTakesAlertmanagerPayloads(t *testing.T) {
	for _, name := range fixtures {
		if !agree(t, readFixture(t, name)) {
			t.Errorf("%s: the fast pass refused a payload from Alertmanager", name)
		}
	}
}

func TestFastSummaryCases(t *testing.T) {
	const alert = `{"status":"firing","labels":{"a":"b"},"startsAt":"2026-11-23T03:01:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"f1"}`
	msg := func(fields string) string {
		return `{"version":"4","groupKey":"g","status":"firing","alerts":[` + alert + `]` + fields + `}`
	}
	for _, tc := range []struct {
		name string
		body string
		fast bool // whether the fast pass may take it (Parse decides otherwise)
	}{
		{"plain", msg(""), true},
		{"escaped group key", `{"version":"4","groupKey":"{}:{a=\"b\"}","status":"firing","alerts":[` + alert + `]}`, true},
		{"unicode escapes", msg(`,"receiver":"r\u00e9\ud83d\ude00"`), true},
		{"invalid utf-8 in a value", msg(",\"receiver\":\"r\xff\""), true},
		{"unknown fields of every kind", msg(`,"x":[1,-2.5e+3,true,false,null,{"y":[{}]}],"z":"q"`), true},
		{"nulls where Parse ignores them", msg(`,"externalURL":null,"groupLabels":null,"commonAnnotations":{"k":null}`), true},
		{"truncated alerts", msg(`,"truncatedAlerts":18446744073709551615`), true},
		{"key in another case", `{"Version":"4","GROUPKEY":"g","Status":"firing","Alerts":[` + alert + `]}`, true},
		{"whitespace everywhere", " \n{ \"version\" : \"4\" ,\t\"groupKey\":\"g\",\"status\":\"firing\",\"alerts\":[ " + alert + " ] }\r\n", true},
		{"two alerts", `{"version":"4","groupKey":"g","status":"resolved","alerts":[` + alert + `,` + strings.Replace(alert, `"f1"`, `"f2"`, 1) + `]}`, true},
		{"alert without fingerprint", `{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"firing","labels":{"a":"b"}}]}`, false},
		{"duplicate field", msg(`,"status":"resolved"`), false},
		{"duplicate field in another case", msg(`,"STATUS":"resolved"`), false},
		{"kelvin sign key", msg(`,"ver\u212Aion":"5"`), false},
		{"non-ascii key", msg(",\"ſtatus\":\"resolved\""), false},
		{"overflowing truncated alerts", msg(`,"truncatedAlerts":18446744073709551616`), false},
		{"fractional truncated alerts", msg(`,"truncatedAlerts":1.0`), false},
		{"negative truncated alerts", msg(`,"truncatedAlerts":-1`), false},
		{"string truncated alerts", msg(`,"truncatedAlerts":"1"`), false},
		{"number as a label value", `{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"firing","labels":{"a":1},"fingerprint":"f"}]}`, false},
		{"bad time", `{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"yesterday","fingerprint":"f"}]}`, false},
		{"trailing bracket", msg("") + "]", false},
		{"trailing brace", msg("") + "}", false},
		{"trailing value", msg("") + " {}", false},
		{"bom", "\xef\xbb\xbf" + msg(""), false},
		{"control character in a string", msg(",\"receiver\":\"a\x01\""), false},
		{"bad escape", msg(`,"receiver":"\x"`), false},
		{"short unicode escape", msg(`,"receiver":"\u12"`), false},
		{"leading zero", msg(`,"x":01`), false},
		{"bare minus", msg(`,"x":-`), false},
		{"truncated literal", msg(`,"x":nul`), false},
		{"literal with a tail", msg(`,"x":nullx`), false},
		{"missing value", msg(`,"x":`), false},
		{"trailing comma", msg(`,`), false},
		{"empty alerts", `{"version":"4","groupKey":"g","status":"firing","alerts":[]}`, false},
		{"null alerts", `{"version":"4","groupKey":"g","status":"firing","alerts":null}`, false},
		{"version 3", strings.Replace(msg(""), `"4"`, `"3"`, 1), false},
		{"empty labels", strings.Replace(msg(""), `{"a":"b"}`, `{}`, 1), false},
		{"bad alert status", strings.Replace(msg(""), `"status":"firing","labels"`, `"status":"burning","labels"`, 1), false},
		{"deep nesting", msg(`,"x":` + strings.Repeat("[", 600) + strings.Repeat("]", 600)), false},
		{"array", `[]`, false},
		{"empty", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := agree(t, []byte(tc.body)); got != tc.fast {
				t.Errorf("fast pass took it: %v, want %v", got, tc.fast)
			}
			// Whatever the pass, Summarize answers as Parse does.
			s, err := Summarize([]byte(tc.body))
			m, perr := Parse([]byte(tc.body))
			if (err == nil) != (perr == nil) || (err != nil && err.Error() != perr.Error()) {
				t.Fatalf("Summarize error %v, Parse error %v", err, perr)
			}
			if err == nil && s != m.Summary() {
				t.Fatalf("Summarize %+v, Parse %+v", s, m.Summary())
			}
		})
	}
}

// Random edits of real payloads: wherever the fast pass says yes, Parse
// agrees. Some edits keep the payload valid, so both sides are exercised.
func TestFastSummaryAgreesOnMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("{}[]\":,\\ 0123456789-+.eEtrufalsn\x00\xff\u00e9abAB\n")
	n := 20000
	if testing.Short() {
		n = 2000
	}
	var fast, valid int
	for i := range n {
		base := readFixture(t, fixtures[i%len(fixtures)])
		b := slices.Clone(base)
		for range 1 + rng.IntN(3) {
			if len(b) == 0 {
				break
			}
			p := rng.IntN(len(b))
			switch rng.IntN(3) {
			case 0:
				b[p] = alphabet[rng.IntN(len(alphabet))]
			case 1:
				b = slices.Delete(b, p, p+1)
			default:
				b = slices.Insert(b, p, alphabet[rng.IntN(len(alphabet))])
			}
		}
		if agree(t, b) {
			fast++
		}
		if _, err := Parse(b); err == nil {
			valid++
		}
	}
	t.Logf("%d mutations: %d valid for Parse, %d taken by the fast pass", n, valid, fast)
	if fast == 0 || valid == fast && valid == n {
		t.Fatalf("the mutations exercised one side only (%d valid, %d fast)", valid, fast)
	}
}

func FuzzFastSummaryAgreesWithParse(f *testing.F) {
	for _, name := range fixtures {
		f.Add(readFixture(f, name))
	}
	f.Add([]byte(`{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"firing","labels":{"a":"b"},"fingerprint":"f"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) { agree(t, body) })
}

// The fast pass knows every field Parse decodes: a field added to the
// types (an Alertmanager upgrade) must be taught to it, or a payload with
// a wrong type there would pass the fast pass and fail in the workers.
func TestFastFieldsMatchTheTypes(t *testing.T) {
	tags := func(typ reflect.Type) []string {
		var out []string
		for f := range typ.Fields() {
			if f.Anonymous || !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				t.Fatalf("%s.%s has no JSON name", typ, f.Name)
			}
			out = append(out, name)
		}
		return out
	}
	msg := append(tags(reflect.TypeFor[Message]()), tags(reflect.TypeFor[template.Data]())...)
	for _, tc := range []struct {
		what      string
		got, want []string
	}{{"message", messageFields, msg}, {"alert", alertFields, tags(reflect.TypeFor[template.Alert]())}} {
		got, want := slices.Sorted(slices.Values(tc.got)), slices.Sorted(slices.Values(tc.want))
		if !slices.Equal(got, want) {
			t.Errorf("%s fields: the fast pass knows %v, the types have %v", tc.what, got, want)
		}
	}
	// And each known field is decoded with the type the types give it:
	// a string field refuses a number, a map refuses a string.
	for _, f := range messageFields {
		if f == "alerts" {
			continue
		}
		body := `{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"firing","labels":{"a":"b"},"fingerprint":"f"}]`
		for _, v := range []string{`1`, `"s"`, `{}`, `[]`, `true`} {
			agree(t, []byte(strings.Replace(body, `{"version"`, `{"`+f+`":`+v+`,"version"`, 1)+"}"))
		}
	}
	for _, f := range alertFields {
		for _, v := range []string{`1`, `"s"`, `{}`, `[]`, `true`, `null`, `"2026-11-23T03:01:00Z"`} {
			body := `{"version":"4","groupKey":"g","status":"firing","alerts":[{"` + f + `":` + v + `,"status":"firing","labels":{"a":"b"},"fingerprint":"f"}]}`
			agree(t, []byte(body))
		}
	}
}

// A payload followed by a stray ']' or '}' is refused (before, Parse's
// dec.More let it through).
func TestParseRejectsTrailingData(t *testing.T) {
	base := readFixture(t, "firing-1.json")
	base = bytes.TrimSpace(base)
	for _, tail := range []string{"]", "}", " {}", "x", "\n]"} {
		_, err := Parse(append(slices.Clone(base), tail...))
		if err == nil || !strings.Contains(err.Error(), "trailing data") {
			t.Errorf("tail %q: got %v, want a trailing data error", tail, err)
		}
	}
	if _, err := Parse(append(slices.Clone(base), " \n\t"...)); err != nil {
		t.Errorf("trailing whitespace refused: %v", err)
	}
}

// unescape gives what encoding/json gives, or leaves the string to it.
func TestUnescapeAgreesWithEncodingJSON(t *testing.T) {
	for _, lit := range []string{`""`, `"a"`, `"{}:{a=\"b\"}"`, `"\\\/\b\f\n\r\t\""`, `"x\\"`, `"\u00e9"`, "\"\xc3\xa9\"", "\"\xff\"", `"a\u0000b"`} {
		body := []byte(lit[1 : len(lit)-1])
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatalf("%s: %v", lit, err)
		}
		got, ok := unescape(body)
		if ok && got != want {
			t.Errorf("%s: unescape %q, encoding/json %q", lit, got, want)
		}
		ascii := !strings.Contains(lit, `\u`)
		for i := range len(lit) {
			ascii = ascii && lit[i] < 0x80
		}
		if ok != ascii {
			t.Errorf("%s: unescape took it: %v", lit, ok)
		}
	}
}
