package incident

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/chmedic/chmedic/internal/store"
)

// TestNotificationCostIndependentOfIncidentSize: processing one more
// notification of a storm reads as much from the store with 30 groups in
// the incident as with 600 (the incident's state is kept incrementally,
// not reloaded group by group).
func TestNotificationCostIndependentOfIncidentSize(t *testing.T) {
	p, _, _ := newProcessor(t)
	var c store.Counters
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "counted.db"), store.WithCounters(&c))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p.Store = st
	ctx := context.Background()
	next := 0
	process := func(key, status string) {
		t.Helper()
		next++
		if err := p.Process(ctx, store.Notification{ID: int64(next), GroupKey: key, Status: status}, message(key, "ClickHouseReadonlyReplica", status, nil)); err != nil {
			t.Fatal(err)
		}
	}
	grow := func(to int) {
		for i := 0; i < to; i++ {
			process(fmt.Sprintf("g-%04d", i), "firing")
		}
	}
	// cost of a batch of typical notifications: new groups joining, a
	// group resolving, a group firing again.
	cost := func(round int) (stmts, rows int64) {
		s0, r0 := c.Statements.Load(), c.Rows.Load()
		for i := 0; i < 10; i++ {
			process(fmt.Sprintf("new-%d-%d", round, i), "firing")
		}
		process("g-0001", "resolved")
		process("g-0001", "firing")
		return c.Statements.Load() - s0, c.Rows.Load() - r0
	}
	grow(30)
	s1, r1 := cost(1)
	grow(600)
	s2, r2 := cost(2)
	t.Logf("12 notifications: %d statements, %d rows with ~40 groups; %d statements, %d rows with ~600", s1, r1, s2, r2)
	if s2 > s1 || r2 > r1+r1/10 {
		t.Errorf("the store work per notification grew with the incident: %d statements / %d rows at ~40 groups, %d / %d at ~600", s1, r1, s2, r2)
	}
}
