package store

import (
	"context"
	"testing"
	"time"
)

// TestRefusedPostDoesNotWedgeTheThread: the thread's first post is refused
// for good while an update and a reply wait on it. Something of the
// thread must still be due (a post carrying the newest content), with or
// without a further change; never an update waiting for a ts that will
// never exist.
func TestRefusedPostDoesNotWedgeTheThread(t *testing.T) {
	for _, further := range []bool{false, true} {
		s, _ := open(t)
		ctx := context.Background()
		th := Thread{Key: "group:w", Channel: "C1", Status: "firing"}
		post, _ := s.UpsertThreadMessage(ctx, th, []byte(`{"text":"first"}`))
		if err := s.MarkSending(ctx, post); err != nil {
			t.Fatal(err)
		}
		s.UpsertThreadMessage(ctx, th, []byte(`{"text":"second"}`))
		if _, err := s.EnqueueReply(ctx, th.Key, []byte(`{"text":"note"}`)); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkFailed(ctx, post, "channel_not_found"); err != nil {
			t.Fatal(err)
		}
		want := `{"text":"second"}`
		if further {
			s.UpsertThreadMessage(ctx, th, []byte(`{"text":"third"}`))
			want = `{"text":"third"}`
		}
		due, err := s.DueOutbox(ctx, time.Now().Add(time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != 1 || due[0].Kind != KindPost || string(due[0].Body) != want {
			t.Fatalf("further change %v: due %+v, want one post of %s", further, due, want)
		}
	}
}

// TestOffersExpireAndArePruned: an offer still offered OfferTTL after it
// was made expires; superseded and expired offers older than the
// retention are deleted, offered ones are kept.
func TestOffersExpireAndArePruned(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	offer := func(key string) string {
		id, err := s.OfferAction(ctx, ActionRequest{OfferKey: key, Kind: "collect_logs", ThreadKey: "group:g", Params: map[string]string{}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	state := func(id string) string {
		a, err := s.ActionRequestByID(ctx, id)
		if err != nil {
			return "deleted"
		}
		return a.State
	}
	old := offer("n1/0")
	c.t = c.t.Add(OfferTTL + time.Minute)
	fresh := offer("n2/0")
	n, err := s.ExpireOffers(ctx, c.t)
	if err != nil || n != 1 {
		t.Fatalf("expired %d, %v; want 1", n, err)
	}
	if state(old) != ActionExpired || state(fresh) != ActionOffered {
		t.Fatalf("old %s fresh %s", state(old), state(fresh))
	}
	n, err = s.PruneOffers(ctx, c.t)
	if err != nil || n != 1 || state(old) != "deleted" || state(fresh) != ActionOffered {
		t.Fatalf("pruned %d, %v; old %s fresh %s", n, err, state(old), state(fresh))
	}
}
