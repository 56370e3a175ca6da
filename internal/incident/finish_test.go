package incident

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks/report"
)

// renderingReports renders without storing (ReportRenderer); SaveAndRender
// must not be called then.
type renderingReports struct{ saved int }

func (r *renderingReports) SaveAndRender(context.Context, string, *report.Report) ([]byte, error) {
	r.saved++
	return nil, errors.New("SaveAndRender called: the report is stored with the message")
}

func (r *renderingReports) Render(context.Context, string, *report.Report) ([]byte, error) {
	return []byte(`{"text":"rendered"}`), nil
}

// failingChange fails the thread change, as a crash before its commit.
type failingChange struct{ *store.Store }

func (f failingChange) ApplyThreadChange(context.Context, store.ThreadChange) (store.ThreadChangeResult, error) {
	return store.ThreadChangeResult{}, errCrash
}

// TestProcessAndFinishIsOneTransaction: ProcessAndFinish stores the
// message, its offers, the thread's report and the notification's outcome
// in the thread change; when that change does not commit, none of them is
// in the store (a replay starts from nothing), and when it does, all are.
func TestProcessAndFinishIsOneTransaction(t *testing.T) {
	p, st, _ := newProcessor(t)
	rs := &renderingReports{}
	p.Reports = rs
	ctx := context.Background()
	m := message("g1", "ClickHouseReadonlyReplica", "firing", nil)
	id, _, err := st.Accept(ctx, store.Notification{GroupKey: "g1", Status: "firing", DedupKey: "d", Payload: []byte("{}")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.StartProcessing(ctx, id); err != nil {
		t.Fatal(err)
	}
	n, _ := st.Notification(ctx, id)
	mark := store.GroupMark{GroupKey: "g1", NotificationID: id, Alerts: map[string]store.AlertVersion{}}

	p.Store = failingChange{st}
	if err := p.ProcessAndFinish(ctx, n, m, mark); !errors.Is(err, errCrash) {
		t.Fatalf("ProcessAndFinish with a failing change: %v", err)
	}
	if got, _ := st.Notification(ctx, id); got.State != store.StateProcessing {
		t.Errorf("state %s after the failed change, want processing (replayed)", got.State)
	}
	if _, err := st.ThreadReport(ctx, "group:g1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("report stored without its message: %v", err)
	}
	// Nothing recorded under the notification's first offer key: each
	// preparation mints a new id.
	k := []store.ActionRequest{{OfferKey: fmt.Sprintf("n%d/0", id)}}
	if a, _ := st.PrepareOffers(ctx, k); len(a) == 1 {
		if b, _ := st.PrepareOffers(ctx, k); len(b) == 1 && a[0].ID == b[0].ID {
			t.Errorf("offer %s recorded without its message", a[0].ID)
		}
	}
	if _, err := st.GroupMark(ctx, "g1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("group mark recorded without the message: %v", err)
	}

	p.Store = st
	if err := p.ProcessAndFinish(ctx, n, m, mark); err != nil {
		t.Fatal(err)
	}
	if rs.saved != 0 {
		t.Errorf("SaveAndRender called %d times", rs.saved)
	}
	if got, _ := st.Notification(ctx, id); got.State != store.StateDone {
		t.Errorf("state %s, want done", got.State)
	}
	if mk, err := st.GroupMark(ctx, "g1"); err != nil || mk.NotificationID != id {
		t.Errorf("group mark %+v %v", mk, err)
	}
	b, err := st.ThreadReport(ctx, "group:g1")
	var r report.Report
	if err != nil || json.Unmarshal(b, &r) != nil || r.Title != "ClickHouseReadonlyReplica" || len(r.Actions) == 0 {
		t.Fatalf("stored report %s %v", b, err)
	}
	for _, a := range r.Actions {
		if o, err := st.ActionRequestByID(ctx, a.RequestID); err != nil || o.State != store.ActionOffered || o.ThreadKey != "group:g1" {
			t.Errorf("the message's button %s (%s): %+v %v", a.Kind, a.RequestID, o, err)
		}
	}
	es := due(t, st)
	if len(es) != 1 || outboxBody(t, st, es[0].ID).Text != "rendered" {
		t.Fatalf("queued %+v", es)
	}
}
