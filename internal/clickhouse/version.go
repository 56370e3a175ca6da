package clickhouse

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a ClickHouse server version such as 18.16.1 or 24.3.2.23.
type Version struct {
	Major, Minor, Patch, Build int
	// Raw is the text the server reported (e.g. "22.8.13.20.altinitystable").
	Raw string
}

// ParseVersion reads a version() string. It needs at least major.minor;
// components that are not numbers (vendor suffixes) end the parse.
func ParseVersion(s string) (Version, error) {
	v := Version{Raw: strings.TrimSpace(s)}
	parts := strings.Split(v.Raw, ".")
	nums := []*int{&v.Major, &v.Minor, &v.Patch, &v.Build}
	n := 0
	for i, p := range parts {
		if i >= len(nums) {
			break
		}
		// "23.8.1.2992-lts": keep the leading digits of a component.
		end := 0
		for end < len(p) && p[end] >= '0' && p[end] <= '9' {
			end++
		}
		if end == 0 {
			break
		}
		x, err := strconv.Atoi(p[:end])
		if err != nil {
			break
		}
		*nums[i] = x
		n++
		if end < len(p) {
			break
		}
	}
	if n < 2 {
		return Version{Raw: v.Raw}, fmt.Errorf("parse clickhouse version %q: want major.minor[.patch[.build]]", s)
	}
	return v, nil
}

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	if v.Major != major {
		return v.Major > major
	}
	return v.Minor >= minor
}

// IsZero reports whether v was never set.
func (v Version) IsZero() bool { return v == Version{} }

// String returns the version as the server reported it, or the numbers.
func (v Version) String() string {
	if v.Raw != "" {
		return v.Raw
	}
	if v.IsZero() {
		return "unknown"
	}
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Build != 0 {
		s += fmt.Sprintf(".%d", v.Build)
	}
	return s
}
