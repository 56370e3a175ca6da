package report

import (
	"time"

	"github.com/chmedic/chmedic/playbooks/diagnose"
)

// OnDemandPlaybook is the playbook name of a report asked for from Slack
// (`/chmedic diagnose`): a live diagnosis with no alert, so no runbook
// sections and no actions.
const OnDemandPlaybook = "on-demand"

// OnDemand builds the report of a diagnosis asked for with no alert: the
// cluster, the diagnosis (nil when it failed, with note saying why) and
// nothing an alert would bring.
func OnDemand(cluster string, d *diagnose.Diagnosis, note string, now time.Time) *Report {
	return &Report{
		Title:         "Diagnosis of " + cluster,
		Cluster:       cluster,
		Playbook:      Playbook{Name: OnDemandPlaybook, Title: "On-demand diagnosis"},
		Diagnosis:     d,
		DiagnosisNote: note,
		GeneratedAt:   now.UTC(),
	}
}
