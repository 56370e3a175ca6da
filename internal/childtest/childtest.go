// Package childtest runs a helper test of the current test binary as a
// child process, so that a test can kill it with SIGKILL (a crash) and
// look at what it left on disk. The child speaks on its stdout, one
// line a fact ("ADDR 127.0.0.1:1234", "OK key").
package childtest

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// Child is the running helper.
type Child struct {
	cmd    *exec.Cmd
	out    io.ReadCloser
	lines  *bufio.Scanner
	killed bool
}

// Start runs the helper test named helper (the test guards itself with
// one of env's variables) and stops it at the test's end.
func Start(t testing.TB, helper string, env ...string) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+helper+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &Child{cmd: cmd, out: out, lines: bufio.NewScanner(out)}
	t.Cleanup(func() {
		if !c.killed {
			cmd.Process.Kill()
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
	})
	return c
}

// Expect reads lines until one starts with prefix and returns the rest of
// it; the lines before are logged. It fails the test when the child ends
// without one.
func (c *Child) Expect(t testing.TB, prefix string) string {
	t.Helper()
	for c.lines.Scan() {
		if v, ok := strings.CutPrefix(c.lines.Text(), prefix); ok {
			return v
		}
		t.Log(c.lines.Text())
	}
	t.Fatalf("the helper ended without a %q line", prefix)
	return ""
}

// Lines calls fn with each further line until fn returns false or the
// child's output ends.
func (c *Child) Lines(fn func(line string) bool) {
	for c.lines.Scan() {
		if !fn(c.lines.Text()) {
			return
		}
	}
}

// Discard reads and drops the rest of the output in the background (a
// child blocked on a full pipe would not be doing what is measured).
func (c *Child) Discard() { go io.Copy(io.Discard, c.out) }

// Kill9 kills the child with SIGKILL (its output can still be read:
// what it wrote before it died).
func (c *Child) Kill9(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.killed = true
}

// Wait waits for the child to end (after Kill9: before its files are
// opened again).
func (c *Child) Wait() { c.cmd.Wait() }
