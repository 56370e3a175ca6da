package ddlfreeze

import (
	"context"
	"fmt"

	"github.com/chmedic/chmedic/internal/grants"
)

// ReadSnapshot reads one target's grants on a node (SHOW GRANTS FOR).
func ReadSnapshot(ctx context.Context, c Conn, t grants.Target) (grants.Snapshot, error) {
	lines, err := c.QueryStrings(ctx, grants.ShowGrantsQuery(t))
	if err != nil {
		return grants.Snapshot{}, fmt.Errorf("node %s: read the grants of %s: %w", c.Name(), t, err)
	}
	s, err := grants.ParseSnapshot(t, lines)
	if err != nil {
		return grants.Snapshot{}, fmt.Errorf("node %s: %w", c.Name(), err)
	}
	return s, nil
}

// Freeze applies the grants method to one target on one node and verifies
// it: before is the snapshot stored before anything changed. Running it
// again is harmless (REVOKE of what is not held is a no-op).
func Freeze(ctx context.Context, c Conn, before grants.Snapshot, p grants.Privileges) (grants.Freeze, error) {
	f, err := grants.PlanFreeze(before, p)
	if err != nil {
		return f, fmt.Errorf("node %s: %w", c.Name(), err)
	}
	if f.Revoke != "" {
		if err := c.Exec(ctx, f.Revoke); err != nil {
			return f, fmt.Errorf("node %s: %s: %w", c.Name(), f.Revoke, err)
		}
	}
	after, err := ReadSnapshot(ctx, c, before.Target)
	if err != nil {
		return f, err
	}
	if err := grants.VerifyFrozen(before, after, p); err != nil {
		return f, fmt.Errorf("node %s: %w", c.Name(), err)
	}
	return f, nil
}

// Unfreeze gives one target on one node back what the freeze took: it reads
// the grants now, computes the restore (grants added during the freeze are
// kept and reported in the result), runs it and verifies it. Running it
// again does nothing more.
func Unfreeze(ctx context.Context, c Conn, before grants.Snapshot, p grants.Privileges) (grants.Restore, error) {
	now, err := ReadSnapshot(ctx, c, before.Target)
	if err != nil {
		return grants.Restore{}, err
	}
	r, err := grants.PlanRestore(before, now, p)
	if err != nil {
		return r, fmt.Errorf("node %s: %w", c.Name(), err)
	}
	for _, st := range r.Statements {
		if err := c.Exec(ctx, st); err != nil {
			return r, fmt.Errorf("node %s: %s: %w", c.Name(), st, err)
		}
	}
	after, err := ReadSnapshot(ctx, c, before.Target)
	if err != nil {
		return r, err
	}
	if err := grants.VerifyRestored(before, now, after, p); err != nil {
		return r, fmt.Errorf("node %s: %w", c.Name(), err)
	}
	return r, nil
}
