package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// usersConfig is the users.xml every ClickHouse server of an environment
// reads (one file, shared). ClickHouse re-reads it by itself about every 2 s
// when its modification time changes.
type usersConfig struct {
	path string

	mu        sync.Mutex
	profiles  []*profile
	users     []userEntry
	lastMTime time.Time
}

type profile struct {
	name     string
	settings []setting
}

type setting struct{ name, value string }

type userEntry struct {
	name, password, profile string
	allowDatabases          []string // empty: every database
}

func (u *usersConfig) profile(name string) *profile {
	for _, p := range u.profiles {
		if p.name == name {
			return p
		}
	}
	return nil
}

func (p *profile) set(name, value string) {
	for i := range p.settings {
		if p.settings[i].name == name {
			p.settings[i].value = value
			return
		}
	}
	p.settings = append(p.settings, setting{name, value})
}

func (p *profile) unset(name string) {
	out := p.settings[:0]
	for _, s := range p.settings {
		if s.name != name {
			out = append(out, s)
		}
	}
	p.settings = out
}

func (u *usersConfig) render() string {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\"?>\n<!-- Written by chmedic internal/testenv. -->\n<yandex>\n    <profiles>\n")
	for _, p := range u.profiles {
		fmt.Fprintf(&b, "        <%s>\n", p.name)
		for _, s := range p.settings {
			fmt.Fprintf(&b, "            <%s>%s</%s>\n", s.name, x(s.value), s.name)
		}
		fmt.Fprintf(&b, "        </%s>\n", p.name)
	}
	b.WriteString("    </profiles>\n    <users>\n")
	for _, us := range u.users {
		fmt.Fprintf(&b, `        <%[1]s>
            <password>%[2]s</password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>%[3]s</profile>
            <quota>default</quota>%[4]s
        </%[1]s>
`, us.name, x(us.password), us.profile, allowDatabases(us.allowDatabases))
	}
	b.WriteString(`    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`)
	return b.String()
}

// write replaces the file atomically. ClickHouse 18.16 compares modification
// times in whole seconds, so two writes within a second would look like one:
// each write gets an mtime at least one second after the previous one.
func (u *usersConfig) write() error {
	tmp, err := os.CreateTemp(filepath.Dir(u.path), ".users-*.xml")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(u.render()); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	mtime := time.Now().Truncate(time.Second)
	if !u.lastMTime.IsZero() && !mtime.After(u.lastMTime) {
		mtime = u.lastMTime.Add(time.Second)
	}
	if err := os.Chtimes(tmp.Name(), mtime, mtime); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), u.path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	u.lastMTime = mtime
	return nil
}

// SetProfileSetting sets a setting in a settings profile of the users config
// (for example "allow_ddl" to "0" in profile "chmedic_admin": new sessions of
// that profile's users then get "Code: 392 ... DDL queries are prohibited";
// sessions opened before keep their settings). It rewrites UsersConfigPath
// and waits until every running ClickHouse server applies it to new sessions.
// Profiles: "default", AdminUser and ProbeUser each have one of their own name.
func (e *Env) SetProfileSetting(ctx context.Context, profileName, name, value string) error {
	return e.changeProfile(ctx, profileName, name, &value)
}

// UnsetProfileSetting removes a setting that SetProfileSetting set (or that
// the environment set by default), and waits until the servers apply it.
func (e *Env) UnsetProfileSetting(ctx context.Context, profileName, name string) error {
	return e.changeProfile(ctx, profileName, name, nil)
}

func (e *Env) changeProfile(ctx context.Context, profileName, name string, value *string) error {
	u := e.users
	u.mu.Lock()
	p := u.profile(profileName)
	if p == nil {
		u.mu.Unlock()
		return fmt.Errorf("testenv: no settings profile %q in %s", profileName, u.path)
	}
	if value != nil {
		p.set(name, *value)
	} else {
		p.unset(name)
	}
	err := u.write()
	var user userEntry
	for _, us := range u.users {
		if us.profile == profileName {
			user = us
			break
		}
	}
	u.mu.Unlock()
	if err != nil {
		return fmt.Errorf("testenv: write %s: %w", u.path, err)
	}
	if user.name == "" {
		// No user to observe it through: wait for a reload period.
		select {
		case <-time.After(3 * time.Second):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Every new HTTP request is a new session, so it sees the reloaded profile.
	q := fmt.Sprintf("SELECT value, changed FROM system.settings WHERE name = '%s'", strings.ReplaceAll(name, "'", "\\'"))
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for _, ch := range e.ClickHouse {
		if !ch.Running() {
			continue
		}
		var last string
		for {
			out, err := ch.QueryAs(ctx, user.name, user.password, q)
			if err == nil {
				last = strings.TrimSpace(out)
				f := strings.Split(last, "\t")
				if len(f) == 2 && ((value != nil && f[0] == *value && f[1] == "1") || (value == nil && f[1] == "0")) {
					break
				}
			} else {
				last = err.Error()
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("testenv: %s did not apply %s.%s in time (last: %s)", ch.Name, profileName, name, last)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}
