package actions

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The server and the CLI hold leases under their process names ("server
// host:pid", "cli host:pid": app.ProcessName, also the execution's runner
// in the approval flow). A crashed server's lease must count as gone at
// the next start, as a HolderID's does, so that its execution is marked
// interrupted at once. Before, only host/pid/… was understood: the
// execution stayed "running" until the lease expired (30 s through the
// binary, TestApprovalFlowCrashAndResume).
func TestProcessNameHolderGone(t *testing.T) {
	host, _ := os.Hostname()
	dead := deadHolder(t) // host/pid/dead
	pid := strings.Split(dead, "/")[1]
	for _, tc := range []struct {
		holder string
		gone   bool
	}{
		{fmt.Sprintf("server %s:%s", host, pid), true},
		{fmt.Sprintf("cli %s:%s", host, pid), true},
		{fmt.Sprintf("server %s:%d", host, os.Getpid()), false},
		{fmt.Sprintf("server %s:%d", host, os.Getppid()), false},
		{fmt.Sprintf("server other-host-%s:%s", host, pid), false},
		{"server " + host, false},
		{dead, true},
	} {
		if got := holderGone(tc.holder); got != tc.gone {
			t.Errorf("holderGone(%q) = %v, want %v", tc.holder, got, tc.gone)
		}
	}

	// At start-up, a dead server's execution is interrupted at once and
	// its lease released.
	st := openStore(t, "")
	ctx := context.Background()
	exec := newExecution(t, st, fakePlan("a"), "")
	holder := fmt.Sprintf("server %s:%s", host, pid)
	if _, ok, _ := st.AcquireLease(ctx, "c1", holder, exec.ID, time.Hour); !ok {
		t.Fatal("setup: lease")
	}
	if err := st.StartExecution(ctx, exec.ID, holder); err != nil {
		t.Fatal(err)
	}
	r := NewRunner(st, Registry{"fake": &fakeAction{}}, RunnerOptions{Holder: fmt.Sprintf("server %s:%d", host, os.Getpid())})
	marked, err := r.MarkInterrupted(ctx)
	if err != nil || len(marked) != 1 {
		t.Fatalf("marked %d interrupted, %v; want the dead server's execution", len(marked), err)
	}
	if _, held, _ := r.LeaseHolder(ctx, "c1"); held {
		t.Error("the dead server's lease still counts as held")
	}
}
