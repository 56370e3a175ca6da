//go:build linux

package actions

import (
	"os"
	"strconv"
	"strings"
)

// processStartTicks returns the process's start time in clock ticks since
// boot (/proc/<pid>/stat field 22), 0 when unknown: with the pid it names
// one process, whatever reuse of the pid came later.
func processStartTicks(pid int) uint64 {
	f := procStat(strconv.Itoa(pid))
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// procStat returns the fields of /proc/<pid>/stat after the command name
// (f[0] is the state, f[2] the process group, f[19] the start time).
func procStat(pid string) []string {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// liveGroupMembers counts the processes of the group that are not zombies
// (a killed command whose parent does not reap it stays a zombie, and
// kill(-pgid, 0) still finds it).
func liveGroupMembers(pgid int) (int, bool) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	want := strconv.Itoa(pgid)
	n := 0
	for _, e := range ents {
		name := e.Name()
		if name == "" || name[0] < '0' || name[0] > '9' {
			continue
		}
		if f := procStat(name); len(f) > 2 && f[2] == want && f[0] != "Z" && f[0] != "X" {
			n++
		}
	}
	return n, true
}
