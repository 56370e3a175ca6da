package slack

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func TestRenderFreezeReminder(t *testing.T) {
	v := FreezeView{ID: "20261201T090000Z-abcd1234", Cluster: "prod <!here>", State: "partial", Method: "profile", Targets: []string{"user app"},
		ExpiresAt: time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC), Nodes: []string{"ch-1: frozen", "ch-2: failed"},
		ExtendOffer: "offerextend", UnfreezeOffer: "offerunfreeze", Extend: 30 * time.Minute}
	msg := RenderFreezeReminder(v)
	checkValid(t, msg)
	got, err := json.MarshalIndent(struct {
		Text   string       `json:"text"`
		Blocks slack.Blocks `json:"blocks"`
	}{msg.Text, msg.Blocks}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "golden", "freeze-reminder.json")
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/slack/ -run TestRenderFreezeReminder -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update and review the diff):\n%s", path, firstDiff(string(want), string(got)))
	}
	s := string(got)
	for _, w := range []string{`"action_id": "chmedic:ddl_freeze:0"`, `"value": "offerextend"`, `"action_id": "chmedic:ddl_unfreeze:1"`, "Extend 30m", "prod \\u0026lt;!here\\u0026gt;"} {
		if !strings.Contains(s, w) {
			t.Errorf("reminder lacks %s", w)
		}
	}
	if strings.Contains(s, `\u003c!here`) || strings.Contains(msg.Text, "<!here>") {
		t.Error("the cluster name pings")
	}
	for d, want := range map[time.Duration]string{30 * time.Minute: "30m", 2 * time.Hour: "2h", 90 * time.Minute: "1h30m", 45 * time.Second: "45s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestRenderFreezePartial(t *testing.T) {
	v := FreezeView{ID: "f1", Cluster: "prod", State: "partial", Method: "grants", Targets: []string{"user app"},
		ExpiresAt: time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC), Nodes: []string{"ch-1: frozen", "ch-2: failed"},
		ExtendOffer: "retry", UnfreezeOffer: "unfreeze", Extend: time.Hour, Partial: true}
	msg := RenderFreezeReminder(v)
	checkValid(t, msg)
	b, _ := json.Marshal(msg.Blocks)
	for _, w := range []string{"is partial", "Retry failed nodes", "Unfreeze all", "ch-2: failed"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("partial notice lacks %q: %s", w, b)
		}
	}
}
