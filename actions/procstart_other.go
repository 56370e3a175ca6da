//go:build !linux

package actions

// processStartTicks is unknown outside Linux: the pid alone is compared.
func processStartTicks(int) uint64 { return 0 }

// liveGroupMembers cannot count outside Linux.
func liveGroupMembers(int) (int, bool) { return 0, false }
