//go:build linux

package actions

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// alive reports whether pid is a process that is not a zombie.
func alive(pid int) bool {
	f := procStat(strconv.Itoa(pid))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// waitFile returns the file's content once it holds a full line.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	for i := 0; i < 3000; i++ {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s was never written", path)
	return ""
}

// waitGone fails when pid still runs after a generous bound (a failure
// timeout, not a measurement).
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if !alive(pid) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Fatalf("%s (pid %d) still runs", what, pid)
}

// A cancelled command is killed with its children: a shell's background
// sleep does not outlive it. Before the fix only the shell was killed and
// the sleep ran on, orphaned.
func TestExecRunnerKillsTheCommandsProcessGroup(t *testing.T) {
	pidf := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := ExecRunner{}.Run(ctx, Command{Argv: []string{"sh", "-c", `sleep 300 & echo $! > "$1"; wait`, "sh", pidf}})
		done <- err
	}()
	pid, err := strconv.Atoi(waitFile(t, pidf))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled command reported success")
	}
	waitGone(t, pid, "the command's child")
}

// The helper is a chmedic that starts a restart command and is then
// SIGKILLed by the test: it writes the command's pid and start time.
func TestOrphanHelperProcess(t *testing.T) {
	out := os.Getenv("CHMEDIC_ORPHAN_HELPER")
	if out == "" {
		t.Skip("helper process of TestReapOrphanAfterChmedicKilled")
	}
	ExecRunner{}.Run(context.Background(), Command{Argv: []string{"sleep", "300"}, Timeout: time.Hour, OnStart: func(pid int) {
		os.WriteFile(out, fmt.Appendf(nil, "%d %d\n", pid, processStartTicks(pid)), 0o600)
	}})
}

// startOrphan runs the helper, waits for its command to start, SIGKILLs the
// helper and returns the command left running.
func startOrphan(t *testing.T) orphanCommand {
	t.Helper()
	out := filepath.Join(t.TempDir(), "cmd")
	h := exec.Command(os.Args[0], "-test.run=^TestOrphanHelperProcess$")
	h.Env = append(os.Environ(), "CHMEDIC_ORPHAN_HELPER="+out)
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	var o orphanCommand
	if _, err := fmt.Sscanf(waitFile(t, out), "%d %d", &o.PID, &o.Ticks); err != nil {
		t.Fatal(err)
	}
	h.Process.Kill() // SIGKILL: no deferred cleanup runs in the helper
	h.Wait()
	t.Cleanup(func() { syscall.Kill(-o.PID, syscall.SIGKILL) })
	if !o.running() {
		t.Fatal("the command died with the killed chmedic: the test cannot tell a reap")
	}
	return o
}

// A command outlives a SIGKILLed chmedic (its own process group); the
// attempt after the crash enforces its deadline: past it, the group is
// killed; before it, a command that ends by itself is waited for; a
// reused pid (another start time) is not taken for it.
func TestReapOrphanAfterChmedicKilled(t *testing.T) {
	ctx := context.Background()
	t.Run("deadline passed", func(t *testing.T) {
		o := startOrphan(t)
		o.Deadline = time.Now().Add(-time.Second)
		note, err := reapOrphan(ctx, o, time.Now, 10*time.Millisecond, nil)
		if err != nil || !strings.Contains(note, "its process group was killed") {
			t.Fatalf("reap: %q %v", note, err)
		}
		waitGone(t, o.PID, "the orphaned command")
		if o.running() {
			t.Error("running after the reap")
		}
	})
	t.Run("ends before its deadline", func(t *testing.T) {
		o := startOrphan(t)
		o.Deadline = time.Now().Add(time.Hour)
		note, err := reapOrphan(ctx, o, time.Now, 10*time.Millisecond, func(string) {
			syscall.Kill(o.PID, syscall.SIGTERM) // it ends by itself
		})
		if err != nil || !strings.Contains(note, "ended by itself") {
			t.Fatalf("reap: %q %v", note, err)
		}
	})
	t.Run("pid reused", func(t *testing.T) {
		o := startOrphan(t)
		o.Ticks++
		if o.running() {
			t.Error("another process's start time taken for the command")
		}
	})
	t.Run("context ends while waiting", func(t *testing.T) {
		o := startOrphan(t)
		o.Deadline = time.Now().Add(time.Hour)
		cctx, cancel := context.WithCancel(ctx)
		_, err := reapOrphan(cctx, o, time.Now, 10*time.Millisecond, func(string) { cancel() })
		if err == nil {
			t.Fatal("no error when the context ended")
		}
		if !o.running() {
			t.Error("a command still within its deadline was killed")
		}
	})
}
