package incident

import (
	"sort"

	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks/report"
)

// Bounds of the incident message's lists (the renderer may show fewer):
// what the message and the stored report hold does not grow with the storm.
const (
	incidentTopGroups  = 15
	incidentAlertNames = 12
)

// incidentView is the incident part of the report — counts by alert name
// and status, the top groups, the group this change is about — and the
// totals the thread's summary reply batches.
func incidentView(inc *store.Incident, latest report.Group) (*report.Incident, store.IncidentTotals) {
	v := &report.Incident{Total: len(inc.Groups), Latest: &latest}
	by := map[string]*report.AlertCount{}
	for _, g := range inc.Groups {
		a := by[g.Title]
		if a == nil {
			a = &report.AlertCount{Name: g.Title}
			by[g.Title] = a
		}
		if g.Status == "resolved" {
			v.ResolvedGroups++
			a.Resolved++
			continue
		}
		v.FiringGroups++
		v.FiringAlerts += g.Firing
		a.Firing++
		a.FiringAlerts += g.Firing
	}
	names := make([]*report.AlertCount, 0, len(by))
	for _, a := range by {
		names = append(names, a)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := names[i], names[j]
		if a.Firing != b.Firing {
			return a.Firing > b.Firing
		}
		if a.Resolved != b.Resolved {
			return a.Resolved > b.Resolved
		}
		return a.Name < b.Name
	})
	totals := store.IncidentTotals{Groups: v.Total, FiringGroups: v.FiringGroups, ResolvedGroups: v.ResolvedGroups, FiringAlerts: v.FiringAlerts}
	for i, a := range names {
		if i == incidentAlertNames {
			v.MoreAlertNames = len(names) - i
			break
		}
		v.ByAlert = append(v.ByAlert, *a)
		totals.ByAlert = append(totals.ByAlert, store.AlertTotals{Name: a.Name, Firing: a.Firing, Resolved: a.Resolved})
	}
	// Top groups: firing first, the most firing alerts first; the store's
	// order (the most recently changed first) breaks ties.
	idx := make([]int, len(inc.Groups))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool {
		a, b := inc.Groups[idx[i]], inc.Groups[idx[j]]
		if (a.Status == "resolved") != (b.Status == "resolved") {
			return a.Status != "resolved"
		}
		return a.Firing > b.Firing
	})
	for _, i := range idx[:min(len(idx), incidentTopGroups)] {
		g := inc.Groups[i]
		v.Groups = append(v.Groups, report.Group{Title: g.Title, Status: g.Status, Firing: g.Firing})
	}
	return v, totals
}
