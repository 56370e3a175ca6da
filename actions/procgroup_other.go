//go:build !unix

package actions

import "os/exec"

// Process groups are a unix notion: elsewhere a command is killed alone,
// and a command left by a previous process is not tracked.
func inOwnProcessGroup(*exec.Cmd) {}
func killProcessGroup(int) error  { return nil }
func processGroupAlive(int) bool  { return false }
