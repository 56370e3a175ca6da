package profile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// LocalWriter puts the override into a users.d directory on this machine,
// for a chmedic that runs beside the server.
type LocalWriter struct {
	// Dir is the users.d directory (e.g. /etc/clickhouse-server/users.d).
	Dir string
	// Name is the file name; FileName when empty.
	Name string
}

// Path is the override's full path.
func (w LocalWriter) Path() string {
	name := w.Name
	if name == "" {
		name = FileName
	}
	return filepath.Join(w.Dir, name)
}

// ErrNotOurs is returned when the file at the override's path was not
// written by chmedic: it is never overwritten or removed.
var ErrNotOurs = errors.New("not written by chmedic")

// Write replaces the override atomically: a temporary file in the same
// directory (a name ClickHouse does not merge: hidden, not .xml), fsync,
// mode 0644 (the server's user must read it), rename, fsync of the
// directory. It refuses to replace a file chmedic did not write. The new
// file's modification time is at least one second after the old one's:
// ClickHouse 18.16 compares whole seconds.
func (w LocalWriter) Write(content []byte) error {
	if _, ok := ParseHeader(content); !ok {
		return fmt.Errorf("write %s: the content has no chmedic header", w.Path())
	}
	path := w.Path()
	var oldMTime time.Time
	if old, err := os.ReadFile(path); err == nil {
		if _, ok := ParseHeader(old); !ok {
			return fmt.Errorf("write %s: refusing to overwrite a file %w", path, ErrNotOurs)
		}
		if st, err := os.Stat(path); err == nil {
			oldMTime = st.ModTime()
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(w.Dir, ".chmedic-ddl-freeze-*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(content); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if !oldMTime.IsZero() {
		mtime := time.Now()
		if next := oldMTime.Truncate(time.Second).Add(time.Second); mtime.Before(next) {
			mtime = next
		}
		if err := os.Chtimes(tmp.Name(), mtime, mtime); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	done = true
	return syncDir(w.Dir)
}

// Remove deletes the override. An absent file is fine (Remove is
// idempotent); a file chmedic did not write is left alone with ErrNotOurs.
func (w LocalWriter) Remove() error {
	path := w.Path()
	old, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if _, ok := ParseHeader(old); !ok {
		return fmt.Errorf("remove %s: refusing to remove a file %w", path, ErrNotOurs)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return syncDir(w.Dir)
}

// Read returns the header of the override in place, or false when there is
// no file; ErrNotOurs when the file is not chmedic's.
func (w LocalWriter) Read() (Header, bool, error) {
	data, err := os.ReadFile(w.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return Header{}, false, nil
	}
	if err != nil {
		return Header{}, false, err
	}
	h, ok := ParseHeader(data)
	if !ok {
		return Header{}, true, fmt.Errorf("%s: %w", w.Path(), ErrNotOurs)
	}
	return h, true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
