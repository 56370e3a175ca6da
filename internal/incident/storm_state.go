package incident

import (
	"sort"
	"strings"
	"sync"

	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks"
	"github.com/chmedic/chmedic/playbooks/report"
)

// Bounds of the incident message's lists (the renderer may show fewer).
const incidentAlertNames = 12

// incidentView is the incident part of the report, from the incident's
// incremental state (store.Incident: the counts of all its groups, by alert
// name and status, and its top groups): counts by alert name, the top
// groups, the group this change is about (latest). Its cost does not
// depend on the number of groups in the incident.
func incidentView(inc *store.Incident, latest *report.Group) *report.Incident {
	v := &report.Incident{Total: inc.GroupCount, Latest: latest}
	by := map[string]*report.AlertCount{}
	var names []*report.AlertCount
	for _, t := range inc.Titles {
		a := by[t.Title]
		if a == nil {
			a = &report.AlertCount{Name: t.Title}
			by[t.Title] = a
			names = append(names, a)
		}
		if t.Status == "resolved" {
			v.ResolvedGroups += t.Groups
			a.Resolved += t.Groups
			continue
		}
		v.FiringGroups += t.Groups
		v.FiringAlerts += t.Firing
		a.Firing += t.Groups
		a.FiringAlerts += t.Firing
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
	for i, a := range names {
		if i == incidentAlertNames {
			v.MoreAlertNames = len(names) - i
			break
		}
		v.ByAlert = append(v.ByAlert, *a)
	}
	// The store's order: firing first, the most firing alerts first, the
	// most recently changed first.
	for _, g := range inc.Groups {
		v.Groups = append(v.Groups, report.Group{Title: g.Title, Status: g.Status, Firing: g.Firing})
	}
	return v
}

// incidentPlaybook picks the highest-priority playbook among the firing
// groups of an incident, matched by their alert names (the incident's
// counts by title) with the notification's other labels. The choice per
// alert name is cached, so the cost depends on the number of distinct
// alert names, not of groups.
func (p *Processor) incidentPlaybook(inc *store.Incident, plan *Plan) *playbooks.Playbook {
	best := plan.Playbook
	for _, t := range inc.Titles {
		if t.Status == "resolved" || t.Groups <= 0 {
			continue
		}
		lset := map[string]string{"alertname": t.Title}
		if plan.Cluster != nil {
			for k, v := range plan.Labels {
				if k != "alertname" {
					lset[k] = v
				}
			}
		}
		if pb, ok := p.playbookCache().match(p.Playbooks, lset); ok && pb.Priority > best.Priority {
			best = pb
		}
	}
	return best
}

// playbookChoices caches playbooks.Set.Match by the values of the labels
// the playbooks' matchers read (the others cannot change the choice).
type playbookChoices struct {
	once   sync.Once
	names  []string // label names any matcher reads, sorted
	mu     sync.Mutex
	chosen map[string]choice
}

type choice struct {
	pb *playbooks.Playbook
	ok bool
}

// maxCachedChoices bounds the cache (alert names are few; label values
// that playbooks read, e.g. severity, are few too).
const maxCachedChoices = 4096

func (p *Processor) playbookCache() *playbookChoices {
	p.choicesOnce.Do(func() { p.choices = &playbookChoices{} })
	return p.choices
}

func (c *playbookChoices) match(set *playbooks.Set, lset map[string]string) (*playbooks.Playbook, bool) {
	c.once.Do(func() {
		seen := map[string]bool{}
		for _, pb := range set.All() {
			for _, ms := range pb.Match {
				for _, m := range ms {
					if !seen[m.Name] {
						seen[m.Name] = true
						c.names = append(c.names, m.Name)
					}
				}
			}
		}
		sort.Strings(c.names)
		c.chosen = map[string]choice{}
	})
	var b strings.Builder
	for _, n := range c.names {
		v, ok := lset[n]
		if ok {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
		b.WriteString(v)
		b.WriteByte(0)
	}
	key := b.String()
	c.mu.Lock()
	ch, hit := c.chosen[key]
	c.mu.Unlock()
	if hit {
		return ch.pb, ch.ok
	}
	pb, ok := set.Match(lset)
	c.mu.Lock()
	if len(c.chosen) >= maxCachedChoices {
		c.chosen = map[string]choice{}
	}
	c.chosen[key] = choice{pb, ok}
	c.mu.Unlock()
	return pb, ok
}
