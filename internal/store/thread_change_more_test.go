package store

import (
	"context"
	"errors"
	"testing"
)

// TestThreadChangeRecordsOffersReportAndOutcome: the message's offers,
// the thread's report and the notification's outcome are written with
// the message, in its transaction; processing again (a replay) offers the
// same ids; a change that fails (here its notification is unknown) leaves
// none of them.
func TestThreadChangeRecordsOffersReportAndOutcome(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	id, _, _ := s.Accept(ctx, Notification{GroupKey: "g", Status: "firing", DedupKey: "1", Payload: []byte("{}")}, 0)
	if err := s.StartProcessing(ctx, id); err != nil {
		t.Fatal(err)
	}
	reqs := []ActionRequest{
		{OfferKey: "n1/0", Kind: "collect_logs", Params: map[string]string{"window": "10m"}, ThreadKey: "group:g"},
		{OfferKey: "n1/1", Kind: "ddl_freeze", ThreadKey: "group:g"},
	}
	offers, err := s.PrepareOffers(ctx, reqs)
	if err != nil || len(offers) != 2 || offers[0].ID == "" || offers[1].ID == offers[0].ID {
		t.Fatalf("prepared %+v %v", offers, err)
	}
	if _, err := s.ActionRequestByID(ctx, offers[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("PrepareOffers wrote the offer: %v", err)
	}
	change := ThreadChange{Thread: Thread{Key: "group:g", Channel: "#c", Status: "firing"}, Body: []byte(`{"text":"m"}`),
		SupersedeOffers: true, Offers: []string{offers[0].ID, offers[1].ID}, NewOffers: offers, Report: []byte(`{"title":"r"}`),
		Finish: &FinishMark{NotificationID: id, Mark: GroupMark{GroupKey: "g", Alerts: map[string]AlertVersion{}}}}

	// A failing change: an unknown notification to finish.
	bad := change
	bad.Finish = &FinishMark{NotificationID: 999, Mark: GroupMark{GroupKey: "x"}}
	if _, err := s.ApplyThreadChange(ctx, bad); !errors.Is(err, ErrNotFound) {
		t.Fatalf("finishing an unknown notification: %v", err)
	}
	if _, err := s.ActionRequestByID(ctx, offers[0].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("a failed change kept its offer: %v", err)
	}
	if _, err := s.ThreadReport(ctx, "group:g"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a failed change kept its report: %v", err)
	}
	if _, err := s.Thread(ctx, "group:g"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a failed change kept its thread: %v", err)
	}

	if _, err := s.ApplyThreadChange(ctx, change); err != nil {
		t.Fatal(err)
	}
	for _, o := range offers {
		a, err := s.ActionRequestByID(ctx, o.ID)
		if err != nil || a.OfferKey != o.OfferKey || a.State != ActionOffered || a.ThreadKey != "group:g" {
			t.Errorf("offer %s: %+v %v", o.OfferKey, a, err)
		}
	}
	if r, err := s.ThreadReport(ctx, "group:g"); err != nil || string(r) != `{"title":"r"}` {
		t.Errorf("report %q %v", r, err)
	}
	if n, _ := s.Notification(ctx, id); n.State != StateDone || n.ProcessedAt.IsZero() {
		t.Errorf("notification %s, want done", n.State)
	}
	if m, err := s.GroupMark(ctx, "g"); err != nil || m.NotificationID != id {
		t.Errorf("mark %+v %v", m, err)
	}

	// The replay of the same notification: the same ids, recorded once.
	again, err := s.PrepareOffers(ctx, reqs)
	if err != nil || again[0].ID != offers[0].ID || again[1].ID != offers[1].ID {
		t.Fatalf("replay prepared %+v, want the recorded ids %s %s (%v)", again, offers[0].ID, offers[1].ID, err)
	}
	change.NewOffers = again
	if _, err := s.ApplyThreadChange(ctx, change); err != nil {
		t.Fatal(err)
	}
	// An offer key recorded under another id meanwhile: refused, the
	// message would carry a button nobody can approve.
	stolen := []ActionRequest{{ID: "other", OfferKey: "n1/0", Kind: "collect_logs", ThreadKey: "group:g"}}
	if _, err := s.ApplyThreadChange(ctx, ThreadChange{Thread: change.Thread, Body: change.Body, NewOffers: stolen}); !errors.Is(err, ErrConflict) {
		t.Errorf("an offer key recorded under another id: %v, want ErrConflict", err)
	}
}
