package keeper

import (
	"path/filepath"
	"strings"
	"testing"
)

func seedFixtures(f *testing.F, match ...string) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		for _, m := range match {
			if strings.Contains(filepath.Base(file), m) {
				f.Add(fixture(f, filepath.Base(file)))
				break
			}
		}
	}
	f.Add("")
	f.Add("zk_\t\n")
	f.Add(" /[(queued=,)\n")
}

func FuzzParseMntr(f *testing.F) {
	seedFixtures(f, "-mntr", "-srvr")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMntr(s)
		if err == nil && len(m.Raw) == 0 {
			t.Fatal("success without any key")
		}
		_, _ = ParseSrvr(s)
		_, _ = ParseStat(s)
		_, _ = ParseWchs(s)
		_, _ = ParseDirs(s)
		_, _ = ParseIsro(s)
		_ = ParseRuok(s)
		_ = CleanVersion(s)
		_ = ReleaseVersion(s)
	})
}

func FuzzParseCons(f *testing.F) {
	seedFixtures(f, "-cons", "-stat", "-conf", "-envi")
	f.Fuzz(func(t *testing.T, s string) {
		conns, err := ParseCons(s)
		if err != nil && conns != nil {
			t.Fatal("connections returned with an error")
		}
		counts := CountByIP(conns)
		total := 0
		for _, n := range counts {
			total += n
		}
		if total != len(conns) {
			t.Fatalf("CountByIP counted %d of %d", total, len(conns))
		}
		_, _ = ParseConf(s)
		_, _ = ParseEnvi(s)
	})
}
