package profile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

var expires = time.Date(2026, 12, 1, 12, 30, 0, 0, time.FixedZone("CET", 3600))

func TestRender(t *testing.T) {
	got, err := Render(Override{FreezeID: "frz-42", Profiles: []string{"web", "app_profile", "web"}, Expires: expires, Root: RootYandex})
	if err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0"?>
<!-- Written by chmedic: DDL freeze frz-42, expires 2026-12-01T11:30:00Z. -->
<!-- chmedic removes this file when it lifts the freeze; removing it by hand lifts it too. -->
<yandex>
    <profiles>
        <app_profile>
            <allow_ddl>0</allow_ddl>
        </app_profile>
        <web>
            <allow_ddl>0</allow_ddl>
        </web>
    </profiles>
</yandex>
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	again, _ := Render(Override{FreezeID: "frz-42", Profiles: []string{"app_profile", "web"}, Expires: expires, Root: RootYandex})
	if string(again) != string(got) {
		t.Error("not deterministic")
	}
	h, ok := ParseHeader(got)
	if !ok || h.FreezeID != "frz-42" || !h.Expires.Equal(expires) {
		t.Errorf("header %+v %v", h, ok)
	}
	ch, _ := Render(Override{FreezeID: "x", Profiles: []string{"p"}, Expires: expires, Root: RootClickHouse})
	if !strings.Contains(string(ch), "<clickhouse>\n") || !strings.HasSuffix(string(ch), "</clickhouse>\n") {
		t.Errorf("clickhouse root: %s", ch)
	}
}

func TestRenderRefuses(t *testing.T) {
	ok := Override{FreezeID: "id", Profiles: []string{"p"}, Expires: expires, Root: RootYandex}
	for _, tt := range []struct {
		mod  func(*Override)
		want string
	}{
		{func(o *Override) { o.Root = "config" }, "root element"},
		{func(o *Override) { o.FreezeID = "a--b" }, "freeze id"},
		{func(o *Override) { o.FreezeID = "a b" }, "freeze id"},
		{func(o *Override) { o.Expires = time.Time{} }, "no expiry"},
		{func(o *Override) { o.Profiles = nil }, "no profiles"},
		{func(o *Override) { o.Profiles = []string{"<x>"} }, "not a name"},
		{func(o *Override) { o.Profiles = []string{"xml_p"} }, "not a name"},
		{func(o *Override) { o.Profiles = []string{"1p"} }, "not a name"},
	} {
		o := ok
		tt.mod(&o)
		if _, err := Render(o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", o, err, tt.want)
		}
	}
}

func TestRootFor(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want string
	}{
		{"18.16.1", RootYandex}, {"20.4.2.9", RootYandex}, {"21.8.15.7", RootYandex}, {"21.12.4.1", RootYandex},
		{"22.1.3.7", RootClickHouse}, {"24.8.4.13", RootClickHouse}, {"26.1.1.1", RootClickHouse},
	} {
		v, err := clickhouse.ParseVersion(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		if got := RootFor(v); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.v, got, tt.want)
		}
	}
	if RootFor(clickhouse.Version{}) != RootYandex {
		t.Error("unknown version")
	}
}

func TestParseHeaderRejectsOtherFiles(t *testing.T) {
	for _, c := range []string{
		"",
		"<yandex><profiles/></yandex>",
		"<!-- Written by someone: DDL freeze x, expires 2026-12-01T11:30:00Z. -->",
		"<!-- Written by chmedic: DDL freeze x, expires tomorrow. -->",
		strings.Repeat(" ", 2000) + "\n<!-- Written by chmedic: DDL freeze x, expires 2026-12-01T11:30:00Z. -->",
	} {
		if _, ok := ParseHeader([]byte(c)); ok {
			t.Errorf("%q taken for chmedic's", c)
		}
	}
}

func TestLocalWriter(t *testing.T) {
	dir := t.TempDir()
	w := LocalWriter{Dir: dir}
	if w.Path() != filepath.Join(dir, FileName) {
		t.Fatal(w.Path())
	}
	if err := w.Remove(); err != nil {
		t.Fatalf("remove of an absent file: %v", err)
	}
	if _, present, err := w.Read(); present || err != nil {
		t.Fatalf("read absent: %v %v", present, err)
	}
	c1, _ := Render(Override{FreezeID: "one", Profiles: []string{"p"}, Expires: expires, Root: RootYandex})
	if err := w.Write(c1); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(w.Path())
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("stat %v %v", st, err)
	}
	mt1 := st.ModTime()
	// Overwriting chmedic's own file (an extension) is fine, and moves the
	// mtime on by at least a whole second.
	c2, _ := Render(Override{FreezeID: "one", Profiles: []string{"p", "q"}, Expires: expires.Add(time.Hour), Root: RootYandex})
	if err := w.Write(c2); err != nil {
		t.Fatal(err)
	}
	st, _ = os.Stat(w.Path())
	if st.ModTime().Truncate(time.Second).Sub(mt1.Truncate(time.Second)) < time.Second {
		t.Errorf("mtime %v then %v", mt1, st.ModTime())
	}
	if got, _ := os.ReadFile(w.Path()); string(got) != string(c2) {
		t.Errorf("content %s", got)
	}
	h, present, err := w.Read()
	if !present || err != nil || h.FreezeID != "one" || !h.Expires.Equal(expires.Add(time.Hour)) {
		t.Errorf("read %+v %v %v", h, present, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	if err := w.Write([]byte("<yandex/>")); err == nil {
		t.Error("content without the header written")
	}
	if err := w.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := w.Remove(); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	// Someone else's file of that name is never overwritten or removed.
	foreign := []byte("<yandex><profiles><p><allow_ddl>0</allow_ddl></p></profiles></yandex>\n")
	if err := os.WriteFile(w.Path(), foreign, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(c1); !errors.Is(err, ErrNotOurs) {
		t.Errorf("overwrite foreign: %v", err)
	}
	if err := w.Remove(); !errors.Is(err, ErrNotOurs) {
		t.Errorf("remove foreign: %v", err)
	}
	if _, _, err := w.Read(); !errors.Is(err, ErrNotOurs) {
		t.Errorf("read foreign: %v", err)
	}
	if got, _ := os.ReadFile(w.Path()); string(got) != string(foreign) {
		t.Error("foreign file changed")
	}
	if err := (LocalWriter{Dir: filepath.Join(dir, "missing")}).Write(c1); err == nil {
		t.Error("write into a missing directory")
	}
}
