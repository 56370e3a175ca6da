package playbooks

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// siteFS is testdata/site: an override of keeper-down and a new playbook.
func siteFS() fs.FS { return os.DirFS("testdata") }

func TestOverrideDir(t *testing.T) {
	builtins := mustBuiltins(t)
	for _, tc := range []struct {
		name string
		load func() (*Set, error)
		dir  string // how the files are named in Source
	}{
		{"LoadFS", func() (*Set, error) { return LoadFS(siteFS(), "site", testValidator()) }, "site"},
		{"Load", func() (*Set, error) { return Load(filepath.Join("testdata", "site"), testValidator()) }, filepath.Join("testdata", "site")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.load()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(s.All()), len(builtins.All())+1; got != want {
				t.Errorf("%d playbooks, want %d (built-ins plus one new)", got, want)
			}

			// A same-named file replaces the built-in.
			kd, _ := s.Get("keeper-down")
			if want := filepath.Join(tc.dir, "keeper-down.yaml"); kd.Source != want {
				t.Errorf("keeper-down Source = %q, want %q", kd.Source, want)
			}
			if kd.Builtin() {
				t.Error("override reports Builtin() = true")
			}
			if !strings.Contains(kd.Sections.Mitigation, "#dba-oncall") || kd.Title != "Keeper is down (site runbook)" {
				t.Errorf("keeper-down was not replaced: %q", kd.Title)
			}
			if len(kd.Actions) != 1 || kd.Actions[0].Label != "Collect logs" || kd.Actions[0].Params["window"] != "15m" {
				t.Errorf("keeper-down actions = %+v (want the default label and the site's params)", kd.Actions)
			}
			// The replaced built-in's other names no longer match...
			if pb, matched := s.Match(map[string]string{"alertname": "ZookeeperMissingLeader"}); matched {
				t.Errorf("ZookeeperMissingLeader still matches %s after the override", pb.Name)
			}
			// ...and the site's do.
			for _, lset := range []map[string]string{
				{"alertname": "ZookeeperDown"},
				{"alertname": "KeeperQuorumLost", "team": "dba"},
			} {
				if pb, _ := s.Match(lset); pb != kd {
					t.Errorf("Match(%v) = %s, want the site keeper-down", lset, pb.Name)
				}
			}
			if pb, _ := s.Match(map[string]string{"alertname": "KeeperQuorumLost"}); pb.Name != GenericName {
				t.Errorf("KeeperQuorumLost without team=dba matched %s", pb.Name)
			}

			// A new name adds a playbook (.yml counts too); non-YAML files are ignored.
			df, ok := s.Get("site-disk-full")
			if !ok {
				t.Fatal("site-disk-full not loaded")
			}
			if want := filepath.Join(tc.dir, "site-disk-full.yml"); df.Source != want {
				t.Errorf("Source = %q, want %q", df.Source, want)
			}
			if pb, matched := s.Match(map[string]string{"alertname": "ClickHouseDiskUsage"}); !matched || pb != df {
				t.Errorf("ClickHouseDiskUsage matched %s, %v", pb.Name, matched)
			}
			want := map[string]string{"max_unavailable": "1", "wait_healthy": "10m", "require_keeper_healthy": "true"}
			if len(df.Actions) != 1 || df.Actions[0].Label != "Restart one by one" || !equalMaps(df.Actions[0].Params, want) {
				t.Errorf("site-disk-full actions = %+v", df.Actions)
			}

			// Built-ins not overridden are untouched.
			ro, _ := s.Get("keeper-readonly-replicas")
			if ro.Source != "builtin/keeper-readonly-replicas.yaml" {
				t.Errorf("keeper-readonly-replicas Source = %q", ro.Source)
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// valid is a minimal valid playbook body after the name line.
const valid = `title: T
match:
  - '{alertname="X"}'
probes: [clickhouse.ping]
sections:
  meaning: m
  impact: i
  diagnosis: d
  mitigation: x
`

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // every error line, in order
	}{
		{
			name: "unknown top-level key",
			file: "name: a\ntitel: T\n" + strings.TrimPrefix(valid, "title: T\n"),
			want: []string{
				"site/f.yaml:1:1: title: required field is missing",
				"site/f.yaml:2:1: titel: unknown field (known: name, title, priority, match, probes, sections, actions)",
			},
		},
		{
			name: "unknown section and action keys",
			file: "name: a\n" + strings.Replace(valid, "  mitigation: x\n", "  mitigation: x\n  summary: s\n", 1) +
				"actions:\n  - kind: collect_logs\n    lable: Logs\n",
			want: []string{
				"site/f.yaml:11:3: sections.summary: unknown field (known: meaning, impact, diagnosis, mitigation)",
				"site/f.yaml:14:5: actions[0].lable: unknown field (known: kind, label, params)",
			},
		},
		{
			name: "bad matchers",
			file: "name: a\ntitle: T\nmatch:\n  - '{alertname=~\"(\"}'\n  - '{foo}'\n  - '{}'\n  - ''\n  - '{alertname=\"ok\"}'\n" +
				"sections: {meaning: m, impact: i, diagnosis: d, mitigation: x}\n",
			want: []string{
				"site/f.yaml:4:5: match[0]: bad matcher: error parsing regexp: missing closing ): `^(?:()$`",
				"site/f.yaml:5:5: match[1]: bad matcher: bad matcher format: foo",
				"site/f.yaml:6:5: match[2]: empty matcher set would match every alert",
				"site/f.yaml:7:5: match[3]: must not be empty",
			},
		},
		{
			name: "unknown and duplicate probes",
			file: "name: a\n" + strings.Replace(valid, "probes: [clickhouse.ping]", "probes: [clickhouse.ping, clickhouse.foo, clickhouse.ping]", 1),
			want: []string{
				`site/f.yaml:5:27: probes[1]: unknown probe "clickhouse.foo"`,
				`site/f.yaml:5:43: probes[2]: duplicate probe "clickhouse.ping"`,
			},
		},
		{
			name: "unknown action kind",
			file: "name: a\n" + valid + "actions:\n  - kind: reboot_everything\n",
			want: []string{
				`site/f.yaml:12:11: actions[0].kind: unknown action kind "reboot_everything"`,
			},
		},
		{
			name: "bad action params from the validator",
			file: "name: a\n" + valid + "actions:\n  - kind: ddl_freeze\n    params: {duration: 48h}\n" +
				"  - kind: collect_logs\n    params: {sources: \"clickhouse,zookeeper\"}\n",
			want: []string{
				"site/f.yaml:13:13: actions[0].params: ddl_freeze: duration: 48h0m0s is out of range (0, 24h0m0s]",
				`site/f.yaml:15:13: actions[1].params: collect_logs: sources: "zookeeper" is not one of clickhouse, keeper`,
			},
		},
		{
			name: "action shape",
			file: "name: a\n" + valid + "actions:\n  - collect_logs\n  - label: No kind\n" +
				"  - kind: ddl_freeze\n    label: This label is far too long for a Slack button\n" +
				"  - kind: collect_logs\n    params: [window]\n",
			want: []string{
				`site/f.yaml:12:5: actions[0]: expected a mapping (kind:, label:, params:), got the string "collect_logs"`,
				"site/f.yaml:13:5: actions[1].kind: required field is missing",
				"site/f.yaml:15:12: actions[2].label: must be one line of at most 30 characters",
				"site/f.yaml:17:13: actions[3].params: expected a mapping of names to values, got a list",
			},
		},
		{
			name: "duplicate button labels",
			file: "name: a\n" + valid + "actions:\n  - kind: ddl_freeze\n  - kind: ddl_freeze\n    params: {duration: 2h}\n",
			want: []string{
				`site/f.yaml:13:5: actions[1].label: same button label "Freeze DDL" as actions[0]`,
			},
		},
		{
			name: "missing and empty sections",
			file: "name: a\ntitle: T\nmatch: ['{alertname=\"X\"}']\nsections:\n  meaning: m\n  impact: \"\"\n  diagnosis:\n",
			want: []string{
				"site/f.yaml:5:3: sections.mitigation: required section is missing",
				"site/f.yaml:6:11: sections.impact: must not be empty",
				"site/f.yaml:7:13: sections.diagnosis: expected a string, got nothing",
			},
		},
		{
			name: "missing required fields",
			file: "priority: 3\n",
			want: []string{
				"site/f.yaml:1:1: name: required field is missing",
				"site/f.yaml:1:1: title: required field is missing",
				"site/f.yaml:1:1: match: required field is missing (use `match: []` for a playbook that is only used by name)",
				"site/f.yaml:1:1: sections: required field is missing (meaning, impact, diagnosis, mitigation)",
			},
		},
		{
			name: "bad field values",
			file: "name: Keeper_Down\ntitle: [T]\npriority: high\nmatch: '{alertname=\"X\"}'\nprobes: clickhouse.ping\n" +
				"sections: [m, i, d, x]\nactions: {kind: ddl_freeze}\n",
			want: []string{
				`site/f.yaml:1:7: name: "Keeper_Down" is not a valid name: use lower-case letters, digits and '-'`,
				"site/f.yaml:2:8: title: expected a string, got a list",
				`site/f.yaml:3:11: priority: expected an integer, got the string "high"`,
				`site/f.yaml:4:8: match: expected a list, got the string "{alertname=\"X\"}"`,
				`site/f.yaml:5:9: probes: expected a list, got the string "clickhouse.ping"`,
				"site/f.yaml:6:11: sections: expected a mapping of meaning, impact, diagnosis, mitigation, got a list",
				"site/f.yaml:7:10: actions: expected a list, got a mapping",
			},
		},
		{
			name: "duplicate key",
			file: "name: a\nname: b\n" + valid,
			want: []string{"site/f.yaml:2:1: name: duplicate field"},
		},
		{
			name: "YAML syntax error",
			file: "name: a\ntitle: T\nmatch:\n  - '{alertname=\"X\"}\nprobes: []\n",
			want: []string{"site/f.yaml:4:1: invalid YAML: found unexpected end of stream"},
		},
		{
			name: "two documents",
			file: "name: a\n" + valid + "---\nname: b\n",
			want: []string{"site/f.yaml:11:1: more than one YAML document: put one playbook per file"},
		},
		{
			name: "not a mapping",
			file: "- name: a\n",
			want: []string{"site/f.yaml:1:1: expected a mapping (name:, title:, match:, ...), got a list"},
		},
		{
			name: "empty file",
			file: "# nothing here\n",
			want: []string{"site/f.yaml:1:1: empty file: expected one playbook"},
		},
		{
			name: "generic may not have matchers",
			file: "name: generic\n" + valid,
			want: []string{"site/f.yaml:4:3: match: the generic playbook is the fallback for unmatched alerts and must have no matchers"},
		},
		{
			name: "section too long",
			file: "name: a\n" + strings.Replace(valid, "  impact: i\n", "  impact: "+strings.Repeat("x", MaxSectionLen+1)+"\n", 1),
			want: []string{"site/f.yaml:8:11: sections.impact: too long: 3001 characters (Slack shows at most 3000)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"site/f.yaml": {Data: []byte(tt.file)}}
			s, err := LoadFS(fsys, "site", testValidator())
			got := loadErrors(t, s, err)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLoadAllErrorsAtOnce(t *testing.T) {
	fsys := fstest.MapFS{
		"site/b.yaml": {Data: []byte("name: b\ntitle: B\nmatch: ['{x=~\"[\"}']\nprobes: [keeper.nope]\nsections: {meaning: m, impact: i, diagnosis: d}\n")},
		"site/a.yml":  {Data: []byte("name: a\ntitle: A\nmatch: []\nsections: {meaning: m, impact: i, diagnosis: d, mitigation: x}\nactions: [{kind: nope}]\n")},
		"site/c.yaml": {Data: []byte("name: c\n" + valid)},
	}
	s, err := LoadFS(fsys, "site", testValidator())
	got := loadErrors(t, s, err)
	want := []string{
		`site/a.yml:5:18: actions[0].kind: unknown action kind "nope"`,
		"site/b.yaml:3:9: match[0]: bad matcher: error parsing regexp: missing closing ]: `[)$`",
		`site/b.yaml:4:10: probes[0]: unknown probe "keeper.nope"`,
		"site/b.yaml:5:11: sections.mitigation: required section is missing",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var es Errors
	if !errors.As(err, &es) || len(es) != len(want) || es[0].File != "site/a.yml" || es[0].Line != 5 || es[0].Col != 18 || es[0].Path != "actions[0].kind" {
		t.Errorf("structured errors = %+v", es)
	}
}

func TestDuplicateNames(t *testing.T) {
	t.Run("within the override dir", func(t *testing.T) {
		fsys := fstest.MapFS{
			"site/one.yaml": {Data: []byte("name: same\n" + valid)},
			"site/two.yaml": {Data: []byte("# two\nname: same\n" + valid)},
		}
		s, err := LoadFS(fsys, "site", testValidator())
		got := loadErrors(t, s, err)
		want := `site/two.yaml:2:7: name: duplicate playbook name "same" (also defined in site/one.yaml)`
		if len(got) != 1 || got[0] != want {
			t.Errorf("errors = %q, want %q", got, want)
		}
	})
	t.Run("within the built-ins", func(t *testing.T) {
		fsys := fstest.MapFS{
			"builtin/x.yaml": {Data: []byte("name: x\n" + valid)},
			"builtin/y.yaml": {Data: []byte("name: x\n" + valid)},
		}
		_, errs := loadSource(&source{fsys: fsys, dir: "builtin", displayDir: "builtin", display: func(n string) string { return "builtin/" + n }}, testValidator())
		want := `builtin/y.yaml:1:7: name: duplicate playbook name "x" (also defined in builtin/x.yaml)`
		if errs.Error() != want {
			t.Errorf("errors = %q, want %q", errs.Error(), want)
		}
	})
	t.Run("override dir replaces, not duplicates, a built-in", func(t *testing.T) {
		fsys := fstest.MapFS{"site/k.yaml": {Data: []byte("name: keeper-down\n" + valid)}}
		s, err := LoadFS(fsys, "site", testValidator())
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := s.Get("keeper-down"); p.Source != "site/k.yaml" {
			t.Errorf("keeper-down Source = %q", p.Source)
		}
	})
}

func TestLoadDirErrors(t *testing.T) {
	t.Run("missing directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		s, err := Load(dir, testValidator())
		got := loadErrors(t, s, err)
		if len(got) != 1 || !strings.HasPrefix(got[0], dir+": cannot read playbook directory: ") {
			t.Errorf("errors = %q", got)
		}
	})
	t.Run("errors name the OS path", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("name: bad\n"+valid+"oops: 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil { // directories are skipped
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ".hidden.yaml"), []byte("garbage: ["), 0o644); err != nil { // dotfiles too
			t.Fatal(err)
		}
		s, err := Load(dir, testValidator())
		got := loadErrors(t, s, err)
		want := filepath.Join(dir, "bad.yaml") + ":11:1: oops: unknown field (known: name, title, priority, match, probes, sections, actions)"
		if len(got) != 1 || got[0] != want {
			t.Errorf("errors = %q, want %q", got, want)
		}
	})
	t.Run("empty directory", func(t *testing.T) {
		s, err := Load(t.TempDir(), testValidator())
		if err != nil {
			t.Fatal(err)
		}
		if len(s.All()) != len(wantBuiltins) {
			t.Errorf("%d playbooks", len(s.All()))
		}
	})
}

func TestNilValidatorAcceptsAll(t *testing.T) {
	fsys := fstest.MapFS{"site/a.yaml": {Data: []byte("name: a\n" + strings.Replace(valid, "clickhouse.ping", "anything.goes", 1) +
		"actions:\n  - kind: page_someone\n    params: {who: dba}\n")}}
	s, err := LoadFS(fsys, "site", Validator{})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Get("a")
	if len(p.Actions) != 1 || p.Actions[0].Label != "Page someone" || p.Probes[0] != "anything.goes" {
		t.Errorf("a = %+v", p)
	}
}

func TestPlaybookOnlyByName(t *testing.T) {
	fsys := fstest.MapFS{"site/a.yaml": {Data: []byte("name: manual\ntitle: T\nmatch: []\nsections: {meaning: m, impact: i, diagnosis: d, mitigation: x}\n")}}
	s, err := LoadFS(fsys, "site", testValidator())
	if err != nil {
		t.Fatal(err)
	}
	p, ok := s.Get("manual")
	if !ok || len(p.Match) != 0 || p.Priority != 0 || p.Probes == nil || len(p.Actions) != 0 {
		t.Fatalf("manual = %+v", p)
	}
	if pb, matched := s.Match(map[string]string{}); matched || pb.Name != GenericName {
		t.Errorf("an empty label set matched %s", pb.Name)
	}
}

func TestDefaultLabel(t *testing.T) {
	for kind, want := range map[string]string{
		"ddl_freeze":                   "Freeze DDL",
		"rolling_restart":              "Rolling restart",
		"collect_logs":                 "Collect logs",
		"page_someone":                 "Page someone",
		"x_" + strings.Repeat("y", 40): "X " + strings.Repeat("y", 28),
	} {
		if got := DefaultLabel(kind); got != want {
			t.Errorf("DefaultLabel(%q) = %q, want %q", kind, got, want)
		}
	}
}

func TestOverrideGeneric(t *testing.T) {
	fsys := fstest.MapFS{"site/generic.yaml": {Data: []byte("name: generic\ntitle: Site fallback\nprobes: [clickhouse.ping]\n" +
		"sections: {meaning: m, impact: i, diagnosis: d, mitigation: Page the DBA on-call.}\n")}}
	s, err := LoadFS(fsys, "site", testValidator())
	if err != nil {
		t.Fatal(err)
	}
	pb, matched := s.Match(map[string]string{"alertname": "Whatever"})
	if matched || pb.Title != "Site fallback" || pb.Source != "site/generic.yaml" || s.Generic() != pb {
		t.Errorf("Match = %+v, %v", pb, matched)
	}
}
