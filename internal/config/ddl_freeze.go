package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// DDLFreeze configures the ddl_freeze and ddl_unfreeze actions
// (clusters[].actions.ddl_freeze): whose DDL is taken away, how, and for
// how long at most.
type DDLFreeze struct {
	// Method is grants, profile or auto (method) [auto]: auto detects per
	// node (grants where SQL access control answers and the targets live in
	// SQL storage, profile otherwise).
	Method string `yaml:"method"`
	// Targets are the application users and roles frozen (targets).
	Targets []FreezeTarget `yaml:"targets"`
	// Privileges are revoked by the grants method (privileges) [CREATE,
	// ALTER, DROP, TRUNCATE, OPTIMIZE]; RENAME and EXCHANGE need CREATE and
	// DROP, so they are frozen with them.
	Privileges []string `yaml:"privileges"`
	// MaxDuration bounds a freeze's duration parameter (max_duration) [2h];
	// at expiry chmedic lifts the freeze by itself.
	MaxDuration time.Duration `yaml:"max_duration"`
	// ReminderBefore is when, before the expiry, a reminder with Extend and
	// Unfreeze buttons is posted (reminder_before) [15m]; 0: none.
	ReminderBefore time.Duration `yaml:"reminder_before"`
	// Command delivers the profile method's override file to a node
	// (command); not with Path.
	Command FreezeCommand `yaml:"command"`
	// Path is the users.d directory of a node on this machine, a template
	// with the node's fields (path), for a chmedic beside its servers.
	Path string `yaml:"path"`
	// CheckUser verifies the profile method: a user logging in with the
	// targets' profile, confined to the system database (check_user).
	CheckUser FreezeCheckUser `yaml:"check_user"`
	// CheckUsers are the check users of several target profiles
	// (check_users), each with its profile: a new session of a profile's
	// own user is the only way to read that profile's settings on old
	// servers. A profile with no check user here (and not the check_user's)
	// is only written, never reported verified.
	CheckUsers []FreezeCheckUser `yaml:"check_users"`
	// KillRunningDDL adds a step per node that kills the DDL queries running
	// when the freeze is in place (kill_running_ddl) [false].
	KillRunningDDL bool `yaml:"kill_running_ddl"`
	// StatementTimeout bounds one statement on one node
	// (statement_timeout) [10s].
	StatementTimeout time.Duration `yaml:"statement_timeout"`
	// VerifyTimeout is how long a node has to show the change: the server
	// re-reads users.d about every 2 s; replicated access storage passes
	// through the coordination service (verify_timeout) [30s].
	VerifyTimeout time.Duration `yaml:"verify_timeout"`
}

// FreezeTarget is one user or role whose DDL is frozen.
type FreezeTarget struct {
	// User or Role (user, role): exactly one.
	User string `yaml:"user"`
	Role string `yaml:"role"`
	// Profile is the settings profile the user logs in with (profile):
	// needed by the profile method (SQL on old servers cannot tell it).
	Profile string `yaml:"profile"`
}

// FreezeCommand is the profile method's delivery by command: argv templates
// run per node with the node's fields plus {{.Path}} (the override's path on
// the node), never through a shell.
type FreezeCommand struct {
	// Write receives the file content on standard input and must replace
	// the file atomically (write).
	Write []string `yaml:"write"`
	// Remove deletes the file; a missing file is success (remove).
	Remove []string `yaml:"remove"`
	// Dir is the users.d directory on the nodes, a template with the
	// node's fields (dir) [/etc/clickhouse-server/users.d].
	Dir string `yaml:"dir"`
	// Timeout bounds one run (timeout) [30s].
	Timeout time.Duration `yaml:"timeout"`
}

// FreezeCheckUser are the credentials of the profile method's check.
type FreezeCheckUser struct {
	User     string `yaml:"user"`
	Password Secret `yaml:"password"`
	// Profile is the settings profile the check user logs in with
	// (profile): required in check_users; optional for check_user, which
	// without it verifies a freeze of a single profile only.
	Profile string `yaml:"profile"`
}

// CheckUserFor returns the check user of a target profile: the check_users
// entry of that profile, else check_user when its profile is that one, or
// (no profile given) when profile is the only profile frozen (single).
func (f DDLFreeze) CheckUserFor(profile string, single bool) (FreezeCheckUser, bool) {
	for _, u := range f.CheckUsers {
		if u.Profile == profile && u.User != "" {
			return u, true
		}
	}
	if f.CheckUser.User != "" && (f.CheckUser.Profile == profile || (f.CheckUser.Profile == "" && single)) {
		return f.CheckUser, true
	}
	return FreezeCheckUser{}, false
}

// Freeze methods (actions.ddl_freeze.method).
const (
	FreezeAuto    = "auto"
	FreezeGrants  = "grants"
	FreezeProfile = "profile"
)

// DefaultFreezePrivileges is the default of DDLFreeze.Privileges.
func DefaultFreezePrivileges() []string {
	return []string{"CREATE", "ALTER", "DROP", "TRUNCATE", "OPTIMIZE"}
}

func (f *DDLFreeze) setDefaults() {
	f.Method = FreezeAuto
	f.Privileges = DefaultFreezePrivileges()
	f.MaxDuration = 2 * time.Hour
	f.ReminderBefore = 15 * time.Minute
	f.Command.Dir = "/etc/clickhouse-server/users.d"
	f.Command.Timeout = 30 * time.Second
	f.StatementTimeout = 10 * time.Second
	f.VerifyTimeout = 30 * time.Second
}

// Delivery says how the override reaches the nodes: "command", "path" or
// "" (not configured).
func (f DDLFreeze) Delivery() string {
	switch {
	case len(f.Command.Write) > 0:
		return "command"
	case f.Path != "":
		return "path"
	}
	return ""
}

// Name is the target's user or role name.
func (t FreezeTarget) Name() string {
	if t.Role != "" {
		return t.Role
	}
	return t.User
}

// IsRole reports whether the target is a role.
func (t FreezeTarget) IsRole() bool { return t.Role != "" }

var (
	freezeName    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@-]*$`)
	freezeProfile = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	// Privileges that are never DDL: the freeze refuses them in its list.
	freezeNeverPrivileges = []string{"ALL", "ALL PRIVILEGES", "ACCESS MANAGEMENT", "ROLE ADMIN", "CREATE USER", "ALTER USER", "DROP USER",
		"CREATE ROLE", "ALTER ROLE", "DROP ROLE", "CREATE QUOTA", "CREATE SETTINGS PROFILE", "CREATE ROW POLICY", "SELECT", "INSERT", "SHOW", "SYSTEM", "KILL QUERY"}
)

// validateDDLFreeze checks clusters[i].actions.ddl_freeze; c is the
// cluster (its probe and actions users are never targets).
func (d *decoder) validateDDLFreeze(path string, c *Cluster) {
	f := &c.Actions.DDLFreeze
	switch f.Method {
	case FreezeAuto, FreezeGrants, FreezeProfile:
	default:
		d.fail(path+".method", "unknown method %q (want grants, profile or auto)", f.Method)
	}
	own := map[string]string{c.ClickHouse.User: "the probe user (clickhouse.user)"}
	if u := c.Actions.ClickHouse.User; u != "" {
		own[u] = "the actions user (actions.clickhouse.user)"
	}
	if u := f.CheckUser.User; u != "" {
		own[u] = "the check user (actions.ddl_freeze.check_user.user)"
	}
	seen := map[string]bool{}
	for i, t := range f.Targets {
		p := fmt.Sprintf("%s.targets[%d]", path, i)
		switch {
		case t.User != "" && t.Role != "":
			d.fail(p, "set user or role, not both")
			continue
		case t.User == "" && t.Role == "":
			d.fail(p, "set user or role")
			continue
		}
		key := "user"
		if t.IsRole() {
			key = "role"
		}
		name := t.Name()
		if !freezeName.MatchString(name) {
			d.fail(p+"."+key, "invalid name %q", name)
		}
		if why, ok := own[name]; ok && !t.IsRole() {
			d.fail(p+".user", "%q is %s: chmedic never freezes its own users", name, why)
		}
		if seen[key+" "+name] {
			d.fail(p+"."+key, "duplicate target %s %q", key, name)
		}
		seen[key+" "+name] = true
		if t.Profile != "" {
			if t.IsRole() {
				d.fail(p+".profile", "a role has no login profile; set profile on user targets")
			} else if !freezeProfile.MatchString(t.Profile) || strings.HasPrefix(strings.ToLower(t.Profile), "xml") {
				d.fail(p+".profile", "invalid settings profile name %q", t.Profile)
			}
		}
		if f.Method == FreezeProfile {
			if t.IsRole() {
				d.fail(p+".role", "the profile method freezes users by their settings profile; a role cannot be a target (use method grants or auto)")
			} else if t.Profile == "" {
				d.fail(p+".profile", "the profile method needs the settings profile user %q logs in with", name)
			}
		}
	}
	for i, pr := range f.Privileges {
		n := strings.ToUpper(strings.Join(strings.Fields(pr), " "))
		if slices.Contains(freezeNeverPrivileges, n) {
			d.fail(fmt.Sprintf("%s.privileges[%d]", path, i), "%q is not a DDL privilege: a freeze takes DDL away (CREATE, ALTER, DROP, TRUNCATE, OPTIMIZE or a privilege inside them), never ALL or access management", pr)
		}
	}
	if f.MaxDuration <= 0 || f.MaxDuration > 24*time.Hour {
		d.fail(path+".max_duration", "must be greater than 0 and at most 24h, got %s", fmtDuration(f.MaxDuration))
	}
	d.nonNegative(path+".reminder_before", f.ReminderBefore)
	if f.ReminderBefore >= f.MaxDuration && f.MaxDuration > 0 {
		d.fail(path+".reminder_before", "must be shorter than max_duration (%s)", fmtDuration(f.MaxDuration))
	}
	if len(f.Command.Write) > 0 && f.Path != "" {
		d.fail(path+".path", "cannot be combined with command; set only one")
	}
	if len(f.Command.Write) > 0 && len(f.Command.Remove) == 0 {
		d.fail(path+".command.remove", "required with command.write: the unfreeze removes the file")
	}
	if len(f.Command.Write) == 0 && len(f.Command.Remove) > 0 {
		d.fail(path+".command.write", "required with command.remove")
	}
	for _, k := range []struct {
		key  string
		argv []string
	}{{"write", f.Command.Write}, {"remove", f.Command.Remove}} {
		if len(k.argv) == 0 {
			continue
		}
		if strings.TrimSpace(k.argv[0]) == "" {
			d.fail(path+".command."+k.key+"[0]", "the program must not be empty")
		}
		if msg := checkFreezeTemplates(k.argv); msg != "" {
			d.fail(path+".command."+k.key, "invalid template: %s", msg)
		}
	}
	if f.Path != "" {
		if msg := checkTemplates([]string{f.Path}); msg != "" {
			d.fail(path+".path", "invalid template: %s", msg)
		}
	}
	if !strings.HasPrefix(f.Command.Dir, "/") {
		d.fail(path+".command.dir", "must be an absolute path, got %q", f.Command.Dir)
	} else if msg := checkTemplates([]string{f.Command.Dir}); msg != "" {
		d.fail(path+".command.dir", "invalid template: %s", msg)
	}
	d.positive(path+".command.timeout", f.Command.Timeout)
	d.positive(path+".statement_timeout", f.StatementTimeout)
	d.positive(path+".verify_timeout", f.VerifyTimeout)
	if f.CheckUser.User != "" {
		if f.CheckUser.User == c.ClickHouse.User || f.CheckUser.User == c.Actions.ClickHouse.User {
			d.fail(path+".check_user.user", "must be a dedicated user in the targets' profile, not the probe or actions user")
		}
		for i, t := range f.Targets {
			if t.User == f.CheckUser.User {
				d.fail(fmt.Sprintf("%s.targets[%d].user", path, i), "%q is the check user; it cannot be a target", t.User)
			}
		}
	}
	seenProfile := map[string]bool{}
	for j, u := range f.CheckUsers {
		p := fmt.Sprintf("%s.check_users[%d]", path, j)
		switch {
		case u.User == "":
			d.fail(p+".user", "is required")
		case u.User == c.ClickHouse.User || u.User == c.Actions.ClickHouse.User:
			d.fail(p+".user", "must be a dedicated user in the profile, not the probe or actions user")
		}
		if u.Profile == "" {
			d.fail(p+".profile", "is required: the settings profile this check user logs in with")
		} else if seenProfile[u.Profile] {
			d.fail(p+".profile", "profile %q has another check user", u.Profile)
		}
		seenProfile[u.Profile] = true
		for i, t := range f.Targets {
			if u.User != "" && t.User == u.User {
				d.fail(fmt.Sprintf("%s.targets[%d].user", path, i), "%q is a check user; it cannot be a target", t.User)
			}
		}
	}
}

// FreezeFields are the fields of the ddl_freeze command templates: a
// node's fields and the override's path on it.
type FreezeFields struct {
	CommandFields
	Path string
}

func checkFreezeTemplates(argv []string) string {
	ts, err := ParseArgv(argv)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for i, t := range ts {
		b.Reset()
		if err := t.Execute(&b, FreezeFields{CommandFields: CommandFields{Host: "h", Name: "n", Shard: 1}, Path: "/p"}); err != nil {
			return fmt.Sprintf("element %d %q: %v", i, argv[i], err)
		}
	}
	return ""
}
