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
