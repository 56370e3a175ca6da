package config

import (
	"strings"
	"testing"
)

func TestZxidWarnShare(t *testing.T) {
	c, err := Parse("chmedic.yaml", []byte(minimal), fakeEnv(nil), fakeFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Diagnosis.Thresholds.ZxidWarnShare; got != 0.9 {
		t.Errorf("default zxid_warn_share = %v, want 0.9", got)
	}
	if got := DefaultDiagnosis().Thresholds.ZxidWarnShare; got != 0.9 {
		t.Errorf("DefaultDiagnosis zxid_warn_share = %v", got)
	}
	for _, v := range []string{"0", "1", "1.5", "-0.1"} {
		_, err := Parse("chmedic.yaml", []byte(y("diagnosis:", "  thresholds:", "    zxid_warn_share: "+v)+minimal), fakeEnv(nil), fakeFiles(nil))
		if err == nil || !strings.Contains(err.Error(), "diagnosis.thresholds.zxid_warn_share: must be greater than 0 and less than 1") {
			t.Errorf("zxid_warn_share %s: %v", v, err)
		}
	}
	c, err = Parse("chmedic.yaml", []byte(y("diagnosis:", "  thresholds:", "    zxid_warn_share: 0.75")+minimal), fakeEnv(nil), fakeFiles(nil))
	if err != nil || c.Diagnosis.Thresholds.ZxidWarnShare != 0.75 {
		t.Errorf("zxid_warn_share 0.75: %v %v", c, err)
	}
}
