//go:build unix

package actions

import (
	"errors"
	"os/exec"
	"syscall"
)

// inOwnProcessGroup starts c in a process group of its own and makes its
// cancellation (timeout, context) kill the whole group: a restart command's
// children (ssh, a shell's pipeline) end with it.
func inOwnProcessGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return killProcessGroup(c.Process.Pid) }
}

// killProcessGroup sends SIGKILL to every process of the group.
func killProcessGroup(pgid int) error {
	if pgid <= 1 {
		return errors.New("no process group")
	}
	err := syscall.Kill(-pgid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// processGroupAlive reports whether any process of the group exists.
func processGroupAlive(pgid int) bool {
	if pgid <= 1 {
		return false
	}
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
