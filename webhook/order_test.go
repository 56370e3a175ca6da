package webhook

import (
	"strings"
	"testing"

	"github.com/chmedic/chmedic/internal/store"
)

// TestStaleReason is the ordering rule of order.go, case by case: n is the
// notification to process (accepted as id), last the group's mark.
func TestStaleReason(t *testing.T) {
	tests := []struct {
		name      string
		n         []ev
		id        int64
		last      []ev
		lastID    int64
		wantStale bool
	}{
		{"retried firing after its resolve", []ev{firingAt("a", 1)}, 1, []ev{resolvedAt("a", 1, 10)}, 2, true},
		{"resolve after its firing", []ev{resolvedAt("a", 1, 10)}, 2, []ev{firingAt("a", 1)}, 1, false},
		{"retried resolve after the firing that followed it (same startsAt, source resumed)", []ev{resolvedAt("a", 1, 10)}, 2, []ev{firingAt("a", 1)}, 3, true},
		{"firing again with the original startsAt, accepted after the resolve", []ev{firingAt("a", 1)}, 3, []ev{resolvedAt("a", 1, 10)}, 2, false},
		{"re-fire after the resolve", []ev{firingAt("a", 12)}, 3, []ev{resolvedAt("a", 1, 10)}, 2, false},
		{"re-fire accepted before the old resolve (HA twin), still newer", []ev{firingAt("a", 12)}, 2, []ev{resolvedAt("a", 1, 10)}, 3, false},
		{"old resolve processed after the re-fire", []ev{resolvedAt("a", 1, 10)}, 4, []ev{firingAt("a", 12)}, 3, true},
		{"old resolve after the re-fire resolved", []ev{resolvedAt("a", 1, 10)}, 4, []ev{resolvedAt("a", 12, 14)}, 3, true},
		{"earlier startsAt of a merged HA Prometheus pair, accepted later", []ev{firingAt("a", 0), firingAt("b", 5)}, 2, []ev{firingAt("a", 1)}, 1, false},
		{"repeat of the same state, accepted later", []ev{firingAt("a", 1)}, 5, []ev{firingAt("a", 1)}, 4, false},
		{"same state accepted earlier", []ev{firingAt("a", 1)}, 4, []ev{firingAt("a", 1)}, 5, true},
		{"no alert in common, accepted later", []ev{firingAt("b", 1)}, 6, []ev{firingAt("a", 1)}, 5, false},
		{"no alert in common, accepted earlier", []ev{firingAt("b", 1)}, 4, []ev{firingAt("a", 1)}, 5, true},
		{"one alert newer, one older: newer wins", []ev{firingAt("a", 12), resolvedAt("b", 1, 2)}, 3, []ev{resolvedAt("a", 1, 10), firingAt("b", 3)}, 4, false},
		{"the mark's own notification (processing again)", []ev{firingAt("a", 1)}, 3, []ev{firingAt("a", 1)}, 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Parse(groupPayload(t, "g", tc.n...))
			if err != nil {
				t.Fatal(err)
			}
			l, err := Parse(groupPayload(t, "g", tc.last...))
			if err != nil {
				t.Fatal(err)
			}
			reason := staleReason(tc.id, n.versions(), store.GroupMark{GroupKey: "g", NotificationID: tc.lastID, Alerts: l.versions()})
			if (reason != "") != tc.wantStale {
				t.Fatalf("reason %q, want stale=%v", reason, tc.wantStale)
			}
			if reason != "" && !strings.HasPrefix(reason, "stale: ") {
				t.Errorf("reason %q does not start with \"stale: \"", reason)
			}
		})
	}
}
