package actions

import (
	"bufio"
	"errors"
	"io"
	"regexp"
	"strconv"
	"time"
)

// Log lines are kept when the timestamp they start with is inside the
// window. Recognised, at the start of the line:
//
//	2026.12.01 08:15:15.123456 [ 1234 ] {…} <Information> …   ClickHouse server log
//	2026-12-01 08:15:15,123 [myid:1] - INFO  […] - …          ZooKeeper (log4j)
//	2026-12-01T08:15:15.123+00:00 host clickhouse-server[1]: …  ISO 8601 (journalctl -o short-iso)
//	Dec  1 08:15:15 host clickhouse-server[1]: …              syslog / journalctl short
//
// A timestamp without a zone is in loc. A line without a timestamp (a
// stack trace, a multi-line message) goes with the line before it; lines
// before the first timestamp are dropped.

var (
	chTimeRE     = regexp.MustCompile(`^(\d{4})\.(\d{2})\.(\d{2}) (\d{2}):(\d{2}):(\d{2})`)
	isoTimeRE    = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,]\d+)?(Z|[+-]\d{2}:?\d{2})?`)
	syslogTimeRE = regexp.MustCompile(`^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})\b`)
	months       = map[string]time.Month{"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12}
)

// LineTime returns the timestamp a log line starts with. ref (the window's
// end) supplies the year of syslog timestamps, which have none.
func LineTime(line []byte, loc *time.Location, ref time.Time) (time.Time, bool) {
	if len(line) < 15 {
		return time.Time{}, false
	}
	atoi := func(b []byte) int { n, _ := strconv.Atoi(string(b)); return n }
	if m := chTimeRE.FindSubmatch(line); m != nil {
		return time.Date(atoi(m[1]), time.Month(atoi(m[2])), atoi(m[3]), atoi(m[4]), atoi(m[5]), atoi(m[6]), 0, loc), true
	}
	if m := isoTimeRE.FindSubmatch(line); m != nil {
		l := loc
		if z := string(m[7]); z != "" {
			if z == "Z" {
				l = time.UTC
			} else {
				sign := 1
				if z[0] == '-' {
					sign = -1
				}
				z = z[1:]
				if len(z) == 5 { // +hh:mm
					z = z[:2] + z[3:]
				}
				off := sign * (atoi([]byte(z[:2]))*3600 + atoi([]byte(z[2:]))*60)
				l = time.FixedZone("", off)
			}
		}
		return time.Date(atoi(m[1]), time.Month(atoi(m[2])), atoi(m[3]), atoi(m[4]), atoi(m[5]), atoi(m[6]), 0, l), true
	}
	if m := syslogTimeRE.FindSubmatch(line); m != nil {
		ref = ref.In(loc)
		t := time.Date(ref.Year(), months[string(m[1])], atoi(m[2]), atoi(m[3]), atoi(m[4]), atoi(m[5]), 0, loc)
		if t.After(ref.AddDate(0, 0, 2)) { // December's lines read in January
			t = t.AddDate(-1, 0, 0)
		}
		return t, true
	}
	return time.Time{}, false
}

// LogFilter copies the lines of a log inside [Since, Until] to W, redacted,
// up to MaxBytes.
type LogFilter struct {
	Since, Until time.Time
	Loc          *time.Location
	Redact       *Redactor
	W            io.Writer
	MaxBytes     int64

	// Results.
	LinesRead, LinesKept int64
	BytesRead, Written   int64
	// Truncated is set when MaxBytes cut the output; LinesDropped counts
	// the lines of the window that did not fit.
	Truncated    bool
	LinesDropped int64
	// LongLines counts lines cut at maxLineBytes.
	LongLines int64
	keeping   bool
}

const maxLineBytes = 256 << 10

// Filter reads r to its end.
func (f *LogFilter) Filter(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	since, until := f.Since.Truncate(time.Second), f.Until
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		f.BytesRead += int64(len(chunk))
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(line) < maxLineBytes {
				line = append(line, chunk[:min(len(chunk), maxLineBytes-len(line))]...)
			}
			continue
		}
		if len(chunk) > 0 || len(line) > 0 {
			if len(line) > 0 {
				if len(line)+len(chunk) > maxLineBytes {
					f.LongLines++
					chunk = chunk[:max(0, min(len(chunk), maxLineBytes-len(line)))]
				}
				line = append(line, chunk...)
			} else {
				line = chunk
			}
			f.line(line, since, until)
			line = line[:0:0]
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (f *LogFilter) line(line []byte, since, until time.Time) {
	f.LinesRead++
	if t, ok := LineTime(line, f.Loc, until); ok {
		f.keeping = !t.Before(since) && !t.After(until)
	}
	if !f.keeping {
		return
	}
	f.LinesKept++
	s := f.Redact.String(string(line))
	if len(s) == 0 || s[len(s)-1] != '\n' {
		s += "\n"
	}
	if f.Truncated || f.Written+int64(len(s)) > f.MaxBytes {
		f.Truncated = true
		f.LinesDropped++
		return
	}
	n, _ := io.WriteString(f.W, s)
	f.Written += int64(n)
}
