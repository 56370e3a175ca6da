// Package report owns chmedic's report model: everything one message says
// about one alert group (or one storm incident) — the alert, the runbook
// sections, the live diagnosis, links and offered actions — with no Slack
// types in it, and its plain-text rendering for the terminal. The Slack
// renderer in internal/slack turns the same model into Block Kit.
package report

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/chmedic/chmedic/playbooks/diagnose"
)

// Report is one message's content.
type Report struct {
	Title       string    `json:"title"`
	Status      string    `json:"status"` // firing | resolved
	Severity    string    `json:"severity,omitempty"`
	Cluster     string    `json:"cluster,omitempty"`
	GroupKey    string    `json:"group_key"`
	Firing      int       `json:"firing"`
	Resolved    int       `json:"resolved"`
	Truncated   uint64    `json:"truncated,omitempty"`
	StartsAt    time.Time `json:"starts_at"`
	ResolvedAt  time.Time `json:"resolved_at,omitempty"`
	Summary     string    `json:"summary,omitempty"`
	Description string    `json:"description,omitempty"`
	Alerts      []Alert   `json:"alerts"`

	Playbook Playbook  `json:"playbook"`
	Sections []Section `json:"sections"`
	// FocusProbes are the probes the playbook says matter most; their
	// findings are listed first.
	FocusProbes []string `json:"focus_probes,omitempty"`

	Diagnosis *diagnose.Diagnosis `json:"diagnosis,omitempty"`
	// DiagnosisNote explains a missing or partial diagnosis (offline, no
	// cluster matched, failed).
	DiagnosisNote string `json:"diagnosis_note,omitempty"`

	Links   []Link   `json:"links,omitempty"`
	Actions []Action `json:"actions,omitempty"`

	// Incident is set when the message stands for several alert groups of
	// one cluster during a storm.
	Incident *Incident `json:"incident,omitempty"`

	GeneratedAt time.Time `json:"generated_at"`
}

// Alert is one alert of the group.
type Alert struct {
	Name     string            `json:"name"`
	Status   string            `json:"status"`
	Labels   map[string]string `json:"labels"` // the labels not common to the group
	Summary  string            `json:"summary,omitempty"`
	StartsAt time.Time         `json:"starts_at"`
	EndsAt   time.Time         `json:"ends_at,omitempty"`
}

// Playbook names the runbook the report follows.
type Playbook struct {
	Name    string `json:"name"`
	Title   string `json:"title"`
	Matched bool   `json:"matched"`
}

// Section is one runbook section.
type Section struct {
	Name  string `json:"name"` // meaning | impact | diagnosis | mitigation
	Title string `json:"title"`
	Body  string `json:"body"`
}

// Link is a labelled URL.
type Link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Action is a button: it carries only an opaque request id; what runs is the
// plan stored on the server under that id.
type Action struct {
	Kind      string   `json:"kind"`
	Label     string   `json:"label"`
	RequestID string   `json:"request_id"`
	Danger    bool     `json:"danger,omitempty"`
	Confirm   *Confirm `json:"confirm,omitempty"`
}

// Confirm is the dialog a dangerous action asks before it is requested.
type Confirm struct {
	Title string `json:"title"`
	Text  string `json:"text"`
	OK    string `json:"ok"`
	Deny  string `json:"deny"`
}

// Incident summarises the alert groups folded into one storm message.
type Incident struct {
	// Groups are the top groups (firing first, the most alerts first):
	// bounded, so Total may be larger.
	Groups []Group `json:"groups"`
	// Total, FiringGroups and ResolvedGroups count every group of the
	// incident, FiringAlerts their firing alerts. Zero Total (a report
	// stored before they existed): Groups is the whole incident.
	Total          int `json:"total,omitempty"`
	FiringGroups   int `json:"firing_groups,omitempty"`
	ResolvedGroups int `json:"resolved_groups,omitempty"`
	FiringAlerts   int `json:"firing_alerts,omitempty"`
	// ByAlert counts the groups by alert name, the most firing first
	// (bounded; MoreAlertNames are left out).
	ByAlert        []AlertCount `json:"by_alert,omitempty"`
	MoreAlertNames int          `json:"more_alert_names,omitempty"`
	// Latest is the group whose change this version of the message
	// reflects.
	Latest *Group `json:"latest,omitempty"`
}

// AlertCount counts an incident's groups of one alert name.
type AlertCount struct {
	Name         string `json:"name"`
	Firing       int    `json:"firing"`
	Resolved     int    `json:"resolved"`
	FiringAlerts int    `json:"firing_alerts"`
}

// Group is one alert group inside an incident.
type Group struct {
	Title  string `json:"title"`
	Status string `json:"status"`
	Firing int    `json:"firing"`
	// Labels are the group's labels other than alertname ("instance=ch-1"),
	// when known.
	Labels string `json:"labels,omitempty"`
}

// Count is the number of groups in the incident.
func (i *Incident) Count() int {
	if i.Total > 0 {
		return i.Total
	}
	return len(i.Groups)
}

// Input is what Build needs.
type Input struct {
	Data     *template.Data
	GroupKey string
	// Truncated is the number of alerts Alertmanager left out.
	Truncated uint64
	Cluster   string
	Playbook  Playbook
	Sections  []Section
	Focus     []string
	Diagnosis *diagnose.Diagnosis
	Note      string
	Actions   []Action
	// AlertmanagerURL overrides Data.ExternalURL for silence links.
	AlertmanagerURL string
	Now             time.Time
}

// Build assembles a report from an alert group and its diagnosis.
func Build(in Input) *Report {
	d := in.Data
	r := &Report{
		Title:       firstNonEmpty(d.CommonLabels["alertname"], d.GroupLabels["alertname"], alertNames(d)),
		Status:      d.Status,
		Severity:    d.CommonLabels["severity"],
		Cluster:     in.Cluster,
		GroupKey:    in.GroupKey,
		Truncated:   in.Truncated,
		Summary:     firstNonEmpty(d.CommonAnnotations["summary"], d.CommonAnnotations["message"]),
		Description: d.CommonAnnotations["description"],
		Playbook:    in.Playbook,
		Sections:    in.Sections,
		FocusProbes: in.Focus,
		Diagnosis:   in.Diagnosis,
		// An offline or failed diagnosis says so.
		DiagnosisNote: in.Note,
		Actions:       in.Actions,
		GeneratedAt:   in.Now.UTC(),
	}
	var lastEnd time.Time
	for _, a := range d.Alerts {
		if a.Status == "firing" {
			r.Firing++
		} else {
			r.Resolved++
			if a.EndsAt.After(lastEnd) {
				lastEnd = a.EndsAt
			}
		}
		if r.StartsAt.IsZero() || a.StartsAt.Before(r.StartsAt) {
			r.StartsAt = a.StartsAt.UTC()
		}
		r.Alerts = append(r.Alerts, Alert{
			Name:     a.Labels["alertname"],
			Status:   a.Status,
			Labels:   distinct(a.Labels, d.CommonLabels),
			Summary:  firstNonEmpty(a.Annotations["summary"], a.Annotations["description"]),
			StartsAt: a.StartsAt.UTC(),
			EndsAt:   endOf(a),
		})
	}
	if r.Status == "resolved" && !lastEnd.IsZero() {
		r.ResolvedAt = lastEnd.UTC()
	}
	sort.SliceStable(r.Alerts, func(i, j int) bool {
		if r.Alerts[i].Status != r.Alerts[j].Status {
			return r.Alerts[i].Status == "firing"
		}
		return r.Alerts[i].StartsAt.Before(r.Alerts[j].StartsAt)
	})
	r.Links = links(in)
	return r
}

func endOf(a template.Alert) time.Time {
	if a.Status == "resolved" {
		return a.EndsAt.UTC()
	}
	return time.Time{}
}

func links(in Input) []Link {
	d := in.Data
	var ls []Link
	seen := map[string]bool{}
	add := func(title, u string) {
		if u == "" || seen[u] {
			return
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") {
			return
		}
		seen[u] = true
		ls = append(ls, Link{Title: title, URL: u})
	}
	runbook := firstNonEmpty(d.CommonAnnotations["runbook_url"], d.CommonAnnotations["runbook"])
	gen := ""
	for _, a := range d.Alerts {
		if runbook == "" {
			runbook = firstNonEmpty(a.Annotations["runbook_url"], a.Annotations["runbook"])
		}
		if gen == "" {
			gen = a.GeneratorURL
		}
	}
	add("Runbook", runbook)
	add("Source (Prometheus)", gen)
	add("Silence in Alertmanager", SilenceURL(firstNonEmpty(in.AlertmanagerURL, d.ExternalURL), d.GroupLabels))
	return ls
}

// SilenceURL links to Alertmanager's new-silence form pre-filled with a
// matcher per group label.
func SilenceURL(base string, groupLabels template.KV) string {
	if base == "" || len(groupLabels) == 0 {
		return ""
	}
	var ms []string
	for _, p := range groupLabels.SortedPairs() {
		ms = append(ms, fmt.Sprintf("%s=%q", p.Name, p.Value))
	}
	filter := "{" + strings.Join(ms, ",") + "}"
	return strings.TrimSuffix(base, "/") + "/#/silences/new?filter=" + url.QueryEscape(filter)
}

func distinct(labels, common template.KV) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		if cv, ok := common[k]; !ok || cv != v {
			out[k] = v
		}
	}
	return out
}

func alertNames(d *template.Data) string {
	seen := map[string]bool{}
	var names []string
	for _, a := range d.Alerts {
		n := a.Labels["alertname"]
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "Alert"
	}
	return strings.Join(names, ", ")
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// FindingsInOrder returns the diagnosis findings with the playbook's focus
// probes first, each group worst first.
func (r *Report) FindingsInOrder() []diagnose.Finding {
	if r.Diagnosis == nil {
		return nil
	}
	focus := map[string]bool{}
	for _, p := range r.FocusProbes {
		focus[p] = true
	}
	fs := append([]diagnose.Finding(nil), r.Diagnosis.Findings...)
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Status != fs[j].Status {
			return fs[i].Status > fs[j].Status
		}
		return focus[fs[i].Probe] && !focus[fs[j].Probe]
	})
	return fs
}
