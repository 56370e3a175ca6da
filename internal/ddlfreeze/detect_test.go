package ddlfreeze

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/chmedic/chmedic/internal/grants"
)

// Recorded on the test environment's 18.16.1 (TestIntegrationDetect
// checks that it still says so).
const syntaxError1816 = "Syntax error: failed at position 6: GRANTS. Expected one of: TABLES, PROCESSLIST, CREATE"

var (
	app     = grants.Target{Kind: grants.User, Name: "app"}
	ddlRole = grants.Target{Kind: grants.Role, Name: "ddl_role"}
)

const (
	usersQuery = "SELECT concat(name, '\\t', storage) FROM system.users WHERE name IN ('app')"
	rolesQuery = "SELECT concat(name, '\\t', storage) FROM system.roles WHERE name IN ('ddl_role')"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name       string
		fake       *fakeConn
		targets    []grants.Target
		want       Method
		reason     string
		err        string
		replicated []grants.Target
	}{
		{
			name:   "18.16: SHOW GRANTS is a syntax error",
			fake:   newFake("ch-1").on("SELECT version()", "18.16.1").fail("SHOW GRANTS", serverError(62, syntaxError1816)),
			want:   MethodProfile,
			reason: "ClickHouse 18.16.1 has no SQL access control (SHOW GRANTS: code: 62, message: Syntax error: failed at position 6: GRANTS.",
		},
		{
			name:   "a server with SHOW GRANTS parsed but no system.grants",
			fake:   newFake("ch-1").on("SELECT version()", "19.17.4.11").fail("SHOW GRANTS", serverError(60, "Table system.grants doesn't exist.")),
			want:   MethodProfile,
			reason: "ClickHouse 19.17.4.11 has no SQL access control",
		},
		{
			name: "RBAC, SQL-managed user and role",
			fake: newFake("ch-1").on("SELECT version()", "24.8.4.13").on("SHOW GRANTS", "GRANT ALL ON *.* TO chmedic_actions WITH GRANT OPTION").
				on(usersQuery, "app\tlocal_directory").on(rolesQuery, "ddl_role\tlocal_directory"),
			targets: []grants.Target{app, ddlRole},
			want:    MethodGrants,
			reason:  "ClickHouse 24.8.4.13 has SQL access control and the targets live in SQL storage",
		},
		{
			name: "RBAC, but the user is in users.xml",
			fake: newFake("ch-1").on("SELECT version()", "24.8.4.13").on("SHOW GRANTS", "GRANT ALL ON *.* TO default").
				on(usersQuery, "app\tusers_xml"),
			targets: []grants.Target{app},
			want:    MethodProfile,
			reason:  "but user `app` is defined in users.xml, which SQL cannot change",
		},
		{
			name: "20.x storage name",
			fake: newFake("ch-1").on("SELECT version()", "20.8.3.18").on("SHOW GRANTS", "GRANT ALL ON *.* TO default").
				on(usersQuery, "app\tusers.xml"),
			targets: []grants.Target{app},
			want:    MethodProfile,
		},
		{
			name: "replicated access storage is said",
			fake: newFake("ch-1").on("SELECT version()", "24.8.4.13").on("SHOW GRANTS", "GRANT ALL ON *.* TO a").
				on(usersQuery, "app\treplicated"),
			targets:    []grants.Target{app},
			want:       MethodGrants,
			reason:     "user `app` is in replicated access storage, so the change passes through the coordination service",
			replicated: []grants.Target{app},
		},
		{
			name: "a target that does not exist",
			fake: newFake("ch-1").on("SELECT version()", "24.8.4.13").on("SHOW GRANTS", "GRANT ALL ON *.* TO a").
				on(usersQuery),
			targets: []grants.Target{app},
			err:     "user `app` not found",
		},
		{
			name: "access denied is an error, not the profile method",
			fake: newFake("ch-1").on("SELECT version()", "24.8.4.13").fail("SHOW GRANTS",
				serverError(497, "chmedic_actions: Not enough privileges. To execute this query, it's necessary to have the grant SHOW USERS ON *.*. (ACCESS_DENIED)")),
			err: "SQL access control is there but the actions user may not use it",
		},
		{
			name: "an unreachable node is an error",
			fake: newFake("ch-1").fail("SELECT version()", context.DeadlineExceeded),
			err:  "detect the freeze method",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Detect(t.Context(), tt.fake, tt.targets)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Method != tt.want || !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("got %s: %s\nwant %s: ...%s...", d.Method, d.Reason, tt.want, tt.reason)
			}
			if !reflect.DeepEqual(d.Replicated, tt.replicated) {
				t.Errorf("replicated %v", d.Replicated)
			}
			for _, l := range tt.fake.log {
				if strings.HasPrefix(l, "EXEC") {
					t.Errorf("detection changed something: %s", l)
				}
			}
		})
	}
}

func TestCheckMethod(t *testing.T) {
	d := Detection{Node: "ch-1", Method: MethodProfile, Reason: "ClickHouse 18.16.1 has no SQL access control"}
	if err := CheckMethod(MethodGrants, d); err == nil || !strings.Contains(err.Error(), "node ch-1: method grants is configured, but ClickHouse 18.16.1 has no SQL access control") {
		t.Errorf("got %v", err)
	}
	if CheckMethod(MethodProfile, d) != nil || CheckMethod("", d) != nil {
		t.Error("refused a fitting method")
	}
}

func TestQuoteString(t *testing.T) {
	if got := quoteString("a'b\\c\n"); got != `'a\'b\\c\n'` {
		t.Errorf("got %s", got)
	}
}
