package actions

import (
	"context"
	"fmt"
	"strings"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/ddlfreeze/profile"
)

// profileCheck is the verification of one frozen profile on one node: a new
// session of that profile's check user.
type profileCheck struct {
	Profile, User string
	Checker       profile.Checker
}

// profileChecks returns the checks of the frozen profiles on node n, one per
// profile that has a check user (config.DDLFreeze.CheckUserFor), and the
// profiles that have none: those are only written, never reported
// verified.
func (a *DDLFreeze) profileChecks(cl *config.Cluster, n config.ClickHouseNode, profiles []string, probe bool) (checks []profileCheck, unverified []string) {
	f := cl.Actions.DDLFreeze
	for _, p := range profiles {
		u, ok := f.CheckUserFor(p, len(profiles) == 1)
		if !ok {
			unverified = append(unverified, p)
			continue
		}
		checks = append(checks, profileCheck{Profile: p, User: u.User, Checker: profile.Checker{Node: clickhouse.NodeConfig{Name: n.Name, Addr: n.Address, User: u.User,
			Password: u.Password.Value(), Database: "system", Secure: cl.ClickHouse.Secure}, Timeout: f.StatementTimeout, ProbeDDL: probe}})
	}
	return checks, unverified
}

// unverifiedLine says which profiles are only written (removed), or "".
func unverifiedLine(unverified []string, what string) string {
	if len(unverified) == 0 {
		return ""
	}
	return fmt.Sprintf("profile %s: %s only, not verified (no check user of that profile: actions.ddl_freeze.check_users)", strings.Join(unverified, ", "), what)
}

// readProfiles reads each checked profile's state on a node, one line per
// profile ("profile P (user U): state", or the error).
func readProfiles(ctx context.Context, checks []profileCheck) []string {
	var out []string
	for _, c := range checks {
		st, err := c.Checker.Check(ctx)
		if err != nil {
			out = append(out, fmt.Sprintf("profile %s (%s): check user: %s", c.Profile, c.User, firstLine(clickhouse.Cause(err), 200)))
			continue
		}
		out = append(out, fmt.Sprintf("profile %s (%s): %s", c.Profile, c.User, st))
	}
	return out
}
