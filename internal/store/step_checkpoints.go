package store

import (
	"context"
)

// CheckpointStep records the intermediate result of a step that is still
// running (what it did so far: e.g. a server's start time read before it is
// restarted, an Alertmanager silence created), so that an attempt after a
// crash can tell what the interrupted one did. It changes nothing once the
// step has finished; StartStep keeps the result for the next attempt.
func (s *Store) CheckpointStep(ctx context.Context, executionID, stepID string, result []byte) error {
	res, err := s.db.ExecContext(ctx, `UPDATE action_steps SET result = ? WHERE execution_id = ? AND step_id = ? AND state = 'running'`,
		result, executionID, stepID)
	return affected(res, err, "checkpoint execution %q step %s", executionID, stepID)
}
