//go:build unix

package actions

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process with that pid exists (signal 0;
// EPERM means it exists under another user).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
