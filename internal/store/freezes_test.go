package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestFreezesSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	f := FreezeRecord{ID: "f1", Cluster: "c", State: FreezeApplying, Method: "profile", Targets: []string{"user app"}, StartedAt: now, ExpiresAt: now.Add(time.Hour),
		Nodes: []FreezeNode{{Name: "ch-1", State: "pending"}}}
	if err := st.CreateFreeze(ctx, f); err != nil {
		t.Fatal(err)
	}
	f.ID = "f2"
	if err := st.CreateFreeze(ctx, f); !errors.Is(err, ErrConflict) {
		t.Fatalf("second open freeze: %v", err)
	}
	if _, err := st.UpdateFreeze(ctx, "f1", func(r *FreezeRecord) error {
		r.State = FreezeActive
		r.Node("ch-1").State = "frozen"
		r.Node("ch-1").Snapshot = []byte(`{"file":"absent"}`)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, ok, err := st.OpenFreeze(ctx, "c")
	if err != nil || !ok || got.State != FreezeActive || got.Node("ch-1").State != "frozen" || string(got.Node("ch-1").Snapshot) != `{"file":"absent"}` || !got.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("after reopen %+v %v %v", got, ok, err)
	}
	st.UpdateFreeze(ctx, "f1", func(r *FreezeRecord) error { r.State = FreezeLifted; return nil })
	if _, ok, _ := st.OpenFreeze(ctx, "c"); ok {
		t.Error("a lifted freeze is open")
	}
	list, err := st.Freezes(ctx, time.Time{}, 10)
	if err != nil || len(list) != 1 || list[0].State != FreezeLifted {
		t.Errorf("list %+v %v", list, err)
	}
	if _, err := st.Freeze(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
}
