package store

import (
	"context"
	"testing"
	"time"
)

// TestAcceptComparesWithTheLatestOnly: a key equal to an earlier, but not
// the latest, notification of the group is a new event (firing, resolved,
// firing again); another group's identical key is not a duplicate.
func TestAcceptComparesWithTheLatestOnly(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	acc := func(group, key string) (int64, bool) {
		t.Helper()
		id, dup, err := s.Accept(ctx, Notification{GroupKey: group, Status: "firing", DedupKey: key, Payload: []byte("{}")}, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return id, dup
	}
	first, _ := acc("g", "firing")
	if id, dup := acc("g", "firing"); !dup || id != first {
		t.Fatalf("repeat: id %d dup %v, want duplicate of %d", id, dup, first)
	}
	if _, dup := acc("g", "resolved"); dup {
		t.Fatal("resolved collapsed")
	}
	if id, dup := acc("g", "firing"); dup || id == first {
		t.Fatalf("firing after resolved: id %d dup %v, want a new event", id, dup)
	}
	if _, dup := acc("other", "firing"); dup {
		t.Fatal("another group's notification collapsed")
	}
}
