package incident

import (
	"context"
	"testing"

	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks/report"
)

type savedReports struct{ keys []string }

func (s *savedReports) SaveAndRender(_ context.Context, key string, r *report.Report) ([]byte, error) {
	s.keys = append(s.keys, key+" "+r.Title)
	return []byte(`{"text":"rendered with request states"}`), nil
}

// The report of each thread is handed to Reports, which renders the body
// that is queued.
func TestProcessSavesTheReport(t *testing.T) {
	p, st, _ := newProcessor(t)
	rs := &savedReports{}
	p.Reports = rs
	if err := p.Process(context.Background(), store.Notification{ID: 1}, message("g1", "ClickHouseReadonlyReplica", "firing", nil)); err != nil {
		t.Fatal(err)
	}
	if len(rs.keys) != 1 || rs.keys[0] != "group:g1 ClickHouseReadonlyReplica" {
		t.Fatalf("saved %v", rs.keys)
	}
	es := due(t, st)
	if len(es) != 1 || outboxBody(t, st, es[0].ID).Text != "rendered with request states" {
		t.Fatalf("queued %+v", es)
	}
}
