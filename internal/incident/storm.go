package incident

import (
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks/report"
)

// incidentTotals are the counts the incident thread's summary reply
// batches, taken from the incident view (built from the incremental state,
// storm_state.go: its cost does not grow with the storm).
func incidentTotals(v *report.Incident) store.IncidentTotals {
	t := store.IncidentTotals{Groups: v.Total, FiringGroups: v.FiringGroups, ResolvedGroups: v.ResolvedGroups, FiringAlerts: v.FiringAlerts}
	for _, a := range v.ByAlert {
		t.ByAlert = append(t.ByAlert, store.AlertTotals{Name: a.Name, Firing: a.Firing, Resolved: a.Resolved})
	}
	return t
}
