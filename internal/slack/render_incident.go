package slack

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/playbooks/report"
)

// Bounds of the incident message: it stays the one place to look however
// large the storm, within Slack's limits.
const (
	incidentGroupsShown   = 10 // top groups listed before "and N more"
	incidentAlertsShown   = 8  // alert names listed before "and N more"
	incidentFindingsShown = 6  // worst findings listed before "and N more"
)

// incidentMeta is the meta line of an incident message: the incident's
// totals, not the changed group's.
func incidentMeta(r *report.Report) string {
	inc := r.Incident
	var parts []string
	if r.Cluster != "" {
		parts = append(parts, "*Cluster:* "+escape(r.Cluster))
	}
	if inc.Total > 0 {
		parts = append(parts, fmt.Sprintf("*Groups:* %d firing, %d resolved", inc.FiringGroups, inc.ResolvedGroups),
			fmt.Sprintf("*Alerts:* %d firing", inc.FiringAlerts))
	} else {
		parts = append(parts, fmt.Sprintf("*Groups:* %d", len(inc.Groups)))
	}
	return strings.Join(parts, "  ·  ")
}

// incidentBlocks are the incident's own sections: the latest change, the
// counts by alert name and status, the top groups.
func incidentBlocks(r *report.Report) []slack.Block {
	inc := r.Incident
	var bs []slack.Block
	if g := inc.Latest; g != nil {
		s := fmt.Sprintf(":arrow_right: *Latest:* %s %s", groupIcon(g.Status), groupText(*g))
		if inc.Total > 0 {
			s += fmt.Sprintf(" — now %d of %d groups firing", inc.FiringGroups, inc.Total)
		}
		bs = append(bs, section("latest", s+"."))
	}
	if len(inc.ByAlert) > 0 {
		lines := []string{"*By alert name* (groups)"}
		for i, a := range inc.ByAlert {
			if i == incidentAlertsShown {
				lines = append(lines, fmt.Sprintf("_… and %d more alert names_", len(inc.ByAlert)-i+inc.MoreAlertNames))
				break
			}
			icon := ":red_circle:"
			if a.Firing == 0 {
				icon = ":white_check_mark:"
			}
			lines = append(lines, fmt.Sprintf("%s *%s*: %d firing (%d %s), %d resolved", icon, escape(a.Name), a.Firing,
				a.FiringAlerts, plural(a.FiringAlerts, "alert", "alerts"), a.Resolved))
		}
		if len(inc.ByAlert) <= incidentAlertsShown && inc.MoreAlertNames > 0 {
			lines = append(lines, fmt.Sprintf("_… and %d more alert names_", inc.MoreAlertNames))
		}
		bs = append(bs, section("by-alert", strings.Join(lines, "\n")))
	}
	bs = append(bs, section("incident", incidentText(inc)))
	return bs
}

func groupIcon(status string) string {
	if status == "resolved" {
		return ":white_check_mark:"
	}
	return ":red_circle:"
}

func groupText(g report.Group) string {
	s := "*" + escape(g.Title) + "*"
	if g.Labels != "" {
		s += " `" + escape(g.Labels) + "`"
	}
	if g.Status == "resolved" {
		return s + " resolved"
	}
	return s + fmt.Sprintf(" firing (%d %s)", g.Firing, plural(g.Firing, "alert", "alerts"))
}

func incidentText(inc *report.Incident) string {
	lines := []string{fmt.Sprintf("*Top alert groups* (of %d)", inc.Count())}
	for i, g := range inc.Groups {
		if i == incidentGroupsShown {
			break
		}
		lines = append(lines, groupIcon(g.Status)+" "+groupText(g))
	}
	if more := inc.Count() - min(len(inc.Groups), incidentGroupsShown); more > 0 {
		lines = append(lines, fmt.Sprintf("_… and %d more groups_", more))
	}
	return strings.Join(lines, "\n")
}
