package incident

import (
	"testing"

	"github.com/chmedic/chmedic/playbooks"
)

// TestPlaybookChoiceCacheMatchesTheSet: the cached choice per label set is
// the set's own choice, for repeated and different label sets.
func TestPlaybookChoiceCacheMatchesTheSet(t *testing.T) {
	pbs, err := playbooks.Load("", playbooks.Validator{})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"ClickHouseReadonlyReplica", "ZooKeeperDown", "Unknown"}
	for _, pb := range pbs.All() {
		for _, ms := range pb.Match {
			for _, m := range ms {
				if m.Name == "alertname" {
					names = append(names, m.Value)
				}
			}
		}
	}
	var c playbookChoices
	for round := 0; round < 2; round++ {
		{
			for _, sev := range []string{"", "critical", "warning"} {
				for _, name := range names {
					lset := map[string]string{"alertname": name, "cluster": "prod", "instance": "ch-1"}
					if sev != "" {
						lset["severity"] = sev
					}
					want, wantOK := pbs.Match(lset)
					got, ok := c.match(pbs, lset)
					if got != want || ok != wantOK {
						t.Errorf("%v: cached %s %v, set %s %v", lset, got.Name, ok, want.Name, wantOK)
					}
				}
			}
		}
	}
}
