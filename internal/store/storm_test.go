package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestHotQueriesUseIndexes: the statements run for every notification
// accepted or processed read through an index (no full scan of a table
// that grows with a storm, no sort of an incident's groups).
func TestHotQueriesUseIndexes(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	hot := map[string]string{
		"accept: group's latest":          `SELECT id, dedup_key, received_at FROM notifications WHERE group_key = ? ORDER BY id DESC LIMIT 1`,
		"queue: notification":             `SELECT ` + notificationCols + ` FROM notifications WHERE id = ?`,
		"queue: group mark":               `SELECT notification_id, alerts, updated_at FROM notification_groups WHERE group_key = ?`,
		"route: group's incident":         qGroupIncident,
		"route: group's own thread":       qGroupHasOwn,
		"route: open incident":            qOpenIncident,
		"route: recent own messages":      qRecentOwn,
		"route: member upsert":            qUpsertMember,
		"route: title leave":              qTitleLeave,
		"route: title gone":               qTitleGone,
		"route: title join":               qTitleJoin,
		"route: incident counts":          qIncidentCounts,
		"route: incident":                 qIncident,
		"route: incident titles":          qIncidentTitles,
		"route: top groups":               qTopGroups,
		"thread":                          `SELECT thread_key, channel, ts, cluster, status, firing, resolved_at, created_at, updated_at FROM slack_threads WHERE thread_key = ?`,
		"offer: by key":                   `SELECT id FROM action_requests WHERE offer_key = ?`,
		"offers: supersede":               `UPDATE action_requests SET state = ? WHERE thread_key = ? AND state = ? AND scope = '' AND id NOT IN (?)`,
		"outbox: live posts (copied)":     `SELECT ts, (SELECT COUNT(*) FROM outbox WHERE thread_key = ? AND kind = ? AND state IN (?, ?, ?)) FROM slack_threads WHERE thread_key = ?`,
		"outbox: pending update (copied)": `SELECT id, kind FROM outbox WHERE thread_key = ? AND kind IN (?, ?) AND state = ? ORDER BY id DESC LIMIT 1`,
	}
	for name, q := range hot {
		args := make([]any, strings.Count(q, "?"))
		for i := range args {
			args[i] = "x"
		}
		rows, err := s.db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, d := range plan {
			if (strings.HasPrefix(d, "SCAN ") && !strings.HasPrefix(d, "SCAN CONSTANT ROW")) || strings.Contains(d, "FOR ORDER BY") {
				t.Errorf("%s: %q in the plan %q", name, d, plan)
			}
		}
	}
}

// TestRouteGroupKeepsIncidentCounts: the incident's counts follow its
// groups joining, changing title and status, and resolving, and the top
// groups put those firing first, the most recent first.
func TestRouteGroupKeepsIncidentCounts(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	route := func(key, title, status string, firing int) *Incident {
		t.Helper()
		c.t = c.t.Add(time.Second)
		_, inc, err := s.RouteGroup(ctx, GroupView{Cluster: "prod", GroupKey: key, Title: title, Status: status, Firing: firing}, 3, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return inc
	}
	if route("a", "A", "firing", 1) != nil || route("b", "A", "firing", 1) != nil {
		t.Fatal("the first two groups are folded")
	}
	for i := 0; i < 20; i++ {
		route(fmt.Sprintf("g%02d", i), "B", "firing", 2)
	}
	inc := route("g03", "C", "firing", 5)
	inc = route("g04", "B", "resolved", 0)
	if inc.GroupCount != 20 || inc.OpenGroups != 19 || len(inc.Groups) != IncidentTopGroups {
		t.Fatalf("counts %d groups, %d open, %d top", inc.GroupCount, inc.OpenGroups, len(inc.Groups))
	}
	want := []IncidentTitle{{"B", "firing", 18, 36}, {"B", "resolved", 1, 0}, {"C", "firing", 1, 5}}
	if fmt.Sprint(inc.Titles) != fmt.Sprint(want) {
		t.Errorf("titles %v, want %v", inc.Titles, want)
	}
	if inc.Groups[0].GroupKey != "g03" || inc.Groups[1].GroupKey != "g19" {
		t.Errorf("top groups %v", inc.Groups)
	}
	for i := 0; i < 20; i++ {
		inc = route(fmt.Sprintf("g%02d", i), "B", "resolved", 0)
	}
	if inc.OpenGroups != 0 || inc.Groups[0].Status != "resolved" {
		t.Fatalf("all resolved: %d open, top %v", inc.OpenGroups, inc.Groups[0])
	}
	// Closed: a new storm opens a new incident.
	if next := route("h", "A", "firing", 1); next == nil || next.ID == inc.ID || next.GroupCount != 1 {
		t.Errorf("after the close: %+v", next)
	}
}
