package actions

import (
	"context"
	"fmt"
	"time"
)

// Commands left running by a chmedic that was killed: ExecRunner starts
// each command in a process group of its own, so a SIGKILL of chmedic
// leaves it running with nothing enforcing its timeout any more.
// rolling_restart records the command's pid, its start time (Linux: clock
// ticks since boot, so a reused pid is not mistaken for it) and its
// deadline in the step's checkpoint; the attempt after the crash (Resume)
// waits for a command still running up to that deadline, then kills its
// whole process group, before it looks at the node.

// orphanCommand is a command recorded by an attempt that was interrupted.
type orphanCommand struct {
	PID      int       `json:"pid"`
	Ticks    uint64    `json:"start_ticks,omitempty"`
	Deadline time.Time `json:"deadline"`
}

// running reports whether the recorded command (or a child in its group)
// still runs.
func (o orphanCommand) running() bool {
	if o.PID <= 1 || !processGroupAlive(o.PID) {
		return false
	}
	if n, ok := liveGroupMembers(o.PID); ok && n == 0 {
		return false // zombies only
	}
	if o.Ticks != 0 && processAlive(o.PID) {
		if t := processStartTicks(o.PID); t != 0 && t != o.Ticks {
			return false // the pid is another process's now
		}
	}
	return true
}

// reapOrphan waits for the recorded command to end, up to its deadline,
// then kills its process group. It returns what it found, in words ("" when
// nothing ran any more), and an error only when ctx ended.
func reapOrphan(ctx context.Context, o orphanCommand, now func() time.Time, poll time.Duration, report func(string)) (string, error) {
	if !o.running() {
		return "", nil
	}
	if poll <= 0 {
		poll = time.Second
	}
	if report != nil {
		report(fmt.Sprintf("waiting for the command left running by the interrupted chmedic (pid %d) to end, up to its deadline %s", o.PID, o.Deadline.UTC().Format(time.RFC3339)))
	}
	for now().Before(o.Deadline) {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(poll):
		}
		if !o.running() {
			return fmt.Sprintf("the command left running by the interrupted chmedic (pid %d) ended by itself before its deadline", o.PID), nil
		}
	}
	if err := killProcessGroup(o.PID); err != nil {
		return fmt.Sprintf("the command left running by the interrupted chmedic (pid %d) passed its deadline and could not be killed: %v", o.PID, err), nil
	}
	for i := 0; i < 50 && o.running(); i++ {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Sprintf("the command left running by the interrupted chmedic (pid %d) passed its deadline %s: its process group was killed", o.PID, o.Deadline.UTC().Format(time.RFC3339)), nil
}
