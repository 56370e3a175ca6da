package config

import (
	"strings"
	"testing"
	"time"
)

func TestDDLFreezeValues(t *testing.T) {
	c := mustParse(t, clusterWithActions(
		"      clickhouse: {user: act}",
		"      ddl_freeze:",
		"        method: profile",
		"        targets: [{user: app, profile: app_profile}, {user: etl, profile: etl_profile}]",
		"        command:",
		"          write: [ssh, '{{.Host}}', sudo, tee, '{{.Path}}']",
		"          remove: [ssh, '{{.Host}}', sudo, rm, -f, '{{.Path}}']",
		"        check_user: {user: chmedic_ddl_check, password_env: PW}",
		"        max_duration: 4h",
	), map[string]string{"PW": "s3cret"}, nil)
	f := c.Clusters[0].Actions.DDLFreeze
	if f.Method != FreezeProfile || len(f.Targets) != 2 || f.Targets[1].Name() != "etl" || f.Delivery() != "command" {
		t.Errorf("ddl_freeze = %+v", f)
	}
	if f.MaxDuration != 4*time.Hour || f.ReminderBefore != 15*time.Minute || f.Command.Timeout != 30*time.Second || f.Command.Dir != "/etc/clickhouse-server/users.d" {
		t.Errorf("defaults = %+v", f)
	}
	if f.CheckUser.Password.Value() != "s3cret" || strings.Join(f.Privileges, ",") != "CREATE,ALTER,DROP,TRUNCATE,OPTIMIZE" || f.KillRunningDDL {
		t.Errorf("ddl_freeze = %+v", f)
	}
}

func TestDDLFreezeErrors(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"unknown method", []string{"      ddl_freeze: {method: chmod}"}, `clusters[0].actions.ddl_freeze.method: unknown method "chmod"`},
		{"user and role", []string{"      ddl_freeze: {targets: [{user: a, role: b}]}"}, "clusters[0].actions.ddl_freeze.targets[0]: set user or role, not both"},
		{"neither", []string{"      ddl_freeze: {targets: [{profile: p}]}"}, "clusters[0].actions.ddl_freeze.targets[0]: set user or role"},
		{"probe user", []string{"      ddl_freeze: {targets: [{user: default}]}"}, `targets[0].user: "default" is the probe user (clickhouse.user): chmedic never freezes its own users`},
		{"actions user", []string{"      clickhouse: {user: act}", "      ddl_freeze: {targets: [{user: act}]}"}, `targets[0].user: "act" is the actions user`},
		{"check user", []string{"      ddl_freeze: {targets: [{user: chk, profile: p}], check_user: {user: chk}}"}, `targets[0].user: "chk" is the check user`},
		{"duplicate", []string{"      ddl_freeze: {targets: [{user: a}, {user: a}]}"}, `targets[1].user: duplicate target user "a"`},
		{"profile needs profile", []string{"      ddl_freeze: {method: profile, targets: [{user: a}]}"}, "targets[0].profile: the profile method needs the settings profile"},
		{"profile no role", []string{"      ddl_freeze: {method: profile, targets: [{role: r}]}"}, "targets[0].role: the profile method freezes users"},
		{"role profile", []string{"      ddl_freeze: {targets: [{role: r, profile: p}]}"}, "targets[0].profile: a role has no login profile"},
		{"ALL", []string{"      ddl_freeze: {privileges: [CREATE, all]}"}, `privileges[1]: "all" is not a DDL privilege`},
		{"access management", []string{"      ddl_freeze: {privileges: [ACCESS MANAGEMENT]}"}, `privileges[0]: "ACCESS MANAGEMENT" is not a DDL privilege`},
		{"max duration", []string{"      ddl_freeze: {max_duration: 48h}"}, "ddl_freeze.max_duration: must be greater than 0 and at most 24h"},
		{"reminder", []string{"      ddl_freeze: {max_duration: 1h, reminder_before: 2h}"}, "ddl_freeze.reminder_before: must be shorter than max_duration"},
		{"command and path", []string{"      ddl_freeze: {command: {write: [x], remove: [y]}, path: /x}"}, "ddl_freeze.path: cannot be combined with command"},
		{"write without remove", []string{"      ddl_freeze: {command: {write: [x]}}"}, "ddl_freeze.command.remove: required with command.write"},
		{"bad template", []string{"      ddl_freeze: {command: {write: [x, '{{.Paht}}'], remove: [y]}}"}, "ddl_freeze.command.write: invalid template"},
		{"relative dir", []string{"      ddl_freeze: {command: {dir: users.d}}"}, `ddl_freeze.command.dir: must be an absolute path`},
		{"bad profile", []string{"      ddl_freeze: {targets: [{user: a, profile: 'x y'}]}"}, `targets[0].profile: invalid settings profile name "x y"`},
		{"check_users profile", []string{"      ddl_freeze: {check_users: [{user: chk2}]}"}, "ddl_freeze.check_users[0].profile: is required"},
		{"check_users user", []string{"      ddl_freeze: {check_users: [{profile: p}]}"}, "ddl_freeze.check_users[0].user: is required"},
		{"check_users twice", []string{"      ddl_freeze: {check_users: [{user: c1, profile: p}, {user: c2, profile: p}]}"}, `check_users[1].profile: profile "p" has another check user`},
		{"check_users target", []string{"      ddl_freeze: {targets: [{user: c1, profile: p}], check_users: [{user: c1, profile: q}]}"}, `targets[0].user: "c1" is a check user`},
		{"check_users probe", []string{"      ddl_freeze: {check_users: [{user: default, profile: p}]}"}, "check_users[0].user: must be a dedicated user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(clusterWithActions(tt.lines...)), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDDLUnfreezePolicyKind(t *testing.T) {
	var p ApprovalPolicies
	found := false
	for _, k := range p.Kinds() {
		found = found || k == "ddl_unfreeze"
	}
	if !found {
		t.Fatalf("kinds %v lack ddl_unfreeze", p.Kinds())
	}
}

func TestDDLFreezeCheckUserFor(t *testing.T) {
	f := DDLFreeze{CheckUser: FreezeCheckUser{User: "chk"}, CheckUsers: []FreezeCheckUser{{User: "chk_b", Profile: "b"}}}
	for _, tt := range []struct {
		profile string
		single  bool
		want    string
	}{
		{"a", true, "chk"}, // check_user without a profile: a single-profile freeze
		{"a", false, ""},   // ... but not one of two profiles
		{"b", false, "chk_b"},
		{"b", true, "chk_b"},
	} {
		u, ok := f.CheckUserFor(tt.profile, tt.single)
		if u.User != tt.want || ok != (tt.want != "") {
			t.Errorf("CheckUserFor(%q, %v) = %q %v, want %q", tt.profile, tt.single, u.User, ok, tt.want)
		}
	}
	f.CheckUser.Profile = "a"
	if u, _ := f.CheckUserFor("a", false); u.User != "chk" {
		t.Errorf("check_user with profile a: %q", u.User)
	}
}
