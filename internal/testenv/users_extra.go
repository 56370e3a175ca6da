package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// User is an extra ClickHouse user for AddUser, defined in users.xml as
// on a server without SQL access control.
type User struct {
	Name, Password string
	// Profile is the settings profile the user logs in with; AddUser creates
	// it (with Settings) when the users config has none of that name.
	Profile  string
	Settings [][2]string
	// AllowDatabases, when set, limits the user to these databases
	// (<allow_databases>; system is always allowed by ClickHouse).
	AllowDatabases []string
}

// AddUser adds a user (and its profile) to the users config and waits until
// it can log in on every running server. Users of the shared environment
// stay for the rest of the package's tests.
func (e *Env) AddUser(ctx context.Context, u User) error {
	if u.Name == "" || u.Profile == "" {
		return fmt.Errorf("testenv: AddUser: a user needs a name and a profile")
	}
	cfg := e.users
	cfg.mu.Lock()
	for _, us := range cfg.users {
		if us.name == u.Name {
			cfg.mu.Unlock()
			return fmt.Errorf("testenv: user %q exists", u.Name)
		}
	}
	if cfg.profile(u.Profile) == nil {
		p := &profile{name: u.Profile}
		for _, s := range u.Settings {
			p.set(s[0], s[1])
		}
		cfg.profiles = append(cfg.profiles, p)
	}
	cfg.users = append(cfg.users, userEntry{name: u.Name, password: u.Password, profile: u.Profile, allowDatabases: u.AllowDatabases})
	err := cfg.write()
	cfg.mu.Unlock()
	if err != nil {
		return fmt.Errorf("testenv: write %s: %w", cfg.path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for _, ch := range e.ClickHouse {
		if !ch.Running() {
			continue
		}
		var last error
		for {
			if _, last = ch.QueryAs(ctx, u.Name, u.Password, "SELECT 1"); last == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("testenv: %s: user %q cannot log in yet: %v", ch.Name, u.Name, last)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// UsersDDir is the users.d directory a server merges into its users config:
// its own one with Options.PerNodeUsersDir, else the one beside the shared
// users.xml (the same for every server). It may not exist yet.
func (e *Env) UsersDDir(c *ClickHouse) string {
	if e.opts.PerNodeUsersDir {
		return filepath.Join(c.Dir, "users.d")
	}
	return filepath.Join(filepath.Dir(e.UsersConfigPath), "users.d")
}

// nodeUsersConfig returns the users_config path for a server's config.xml:
// the shared file, or with Options.PerNodeUsersDir a symlink to it in the
// server's directory (so that its users.d is its own).
func (e *Env) nodeUsersConfig(c *ClickHouse) (string, error) {
	if !e.opts.PerNodeUsersDir {
		return e.UsersConfigPath, nil
	}
	link := filepath.Join(c.Dir, "users.xml")
	if err := os.Symlink(e.UsersConfigPath, link); err != nil {
		return "", err
	}
	return link, nil
}

func allowDatabases(dbs []string) string {
	if len(dbs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n            <allow_databases>")
	for _, d := range dbs {
		fmt.Fprintf(&b, "\n                <database>%s</database>", x(d))
	}
	b.WriteString("\n            </allow_databases>")
	return b.String()
}
