package incident

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks"
)

const stormChannel = "C0STORM001"

type stormClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stormClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stormClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// stormRig is the real processor, store and outbox against the Slack fake,
// all on one fake clock.
type stormRig struct {
	t     *testing.T
	clock *stormClock
	p     *Processor
	st    *store.Store
	ob    *chslack.Outbox
	fake  *slackfake.Server
}

func newStormRig(t *testing.T, slackYAML string) *stormRig {
	t.Helper()
	cfg, err := config.Parse("chmedic.yaml", []byte(`
clusters:
  - name: prod
    match: ['cluster="prod"']
    clickhouse:
      nodes: [{name: ch-1, address: "127.0.0.1:9000"}]
    keeper:
      nodes: [{name: zk-1, address: "127.0.0.1:2181"}]
slack:
  channel: `+stormChannel+`
`+slackYAML), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pbs, err := playbooks.Load("", playbooks.Validator{})
	if err != nil {
		t.Fatal(err)
	}
	clock := &stormClock{t: time.Date(2026, 11, 23, 3, 5, 0, 0, time.UTC)}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), store.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fake := slackfake.New(t, slackfake.Options{Now: clock.Now})
	api := goslack.New(slackfake.DefaultToken, goslack.OptionAPIURL(fake.URL()))
	ob := chslack.NewOutbox(st, api, chslack.OutboxOptions{Now: clock.Now, CallTimeout: 5 * time.Second,
		CoalesceWindow: cfg.Slack.CoalesceWindow, PostBurst: cfg.Slack.PostBurst})
	p := &Processor{Config: cfg, Playbooks: pbs, Diagnoser: &fakeDiagnoser{}, Store: st, Outbox: ob, Now: clock.Now}
	return &stormRig{t: t, clock: clock, p: p, st: st, ob: ob, fake: fake}
}

func (r *stormRig) process(id int, group, alert, status string) {
	r.t.Helper()
	if err := r.p.Process(context.Background(), store.Notification{ID: int64(id)}, message(group, alert, status, map[string]string{"instance": group})); err != nil {
		r.t.Fatal(err)
	}
}

// calls counts the Slack calls that write messages.
func (r *stormRig) calls() int {
	return r.fake.CallCount("chat.postMessage") + r.fake.CallCount("chat.update")
}

// incidentMessage is the top-level message of the incident thread.
func (r *stormRig) incidentMessage() slackfake.Message {
	for _, m := range r.fake.Messages(stormChannel) {
		if strings.Contains(m.Text, "Incident") {
			return m
		}
	}
	return slackfake.Message{}
}

func blocksText(m slackfake.Message) string { return m.Text + mustJSON(m.Blocks) }

// TestStorm1000GroupsBoundedSlackCalls: a 1,000-group storm of one cluster
// (100 groups/s for 10 s, the default folding, coalescing and summary
// interval) costs storm_threshold−1 group messages, 1 incident message and
// at most 30 other Slack calls in its first 10 minutes; the last group is
// reflected in the incident message (its alert name and the new totals)
// within 10 s of its webhook, and the thread gets at most one summary
// reply per minute whose totals are right.
func TestStorm1000GroupsBoundedSlackCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 notifications through the real store")
	}
	r := newStormRig(t, "")
	ctx := context.Background()
	start := r.clock.Now()
	names := []string{"ClickHouseReadonlyReplica", "ClickHouseZooKeeperHardwareExceptions", "ZookeeperHighLatency", "ClickHouseReplicationQueueStuck"}
	const groups = 1000
	for i := range groups {
		alert := names[i%len(names)]
		if i == groups-1 {
			alert = "KeeperLastGroup"
		}
		r.process(i+1, fmt.Sprintf("g%04d", i), alert, "firing")
		r.clock.Add(10 * time.Millisecond)
		if i%5 == 4 {
			r.ob.Step(ctx)
		}
	}
	last := r.clock.Now()
	// The first storm_threshold−1 groups keep their own messages.
	inIncident := groups - (r.p.Config.Slack.StormThreshold - 1)
	reflected := time.Duration(-1)
	for r.clock.Now().Sub(start) < 10*time.Minute {
		r.ob.Step(ctx)
		if reflected < 0 {
			m := r.incidentMessage()
			want := fmt.Sprintf("now %d of %d groups firing", inIncident, inIncident)
			if b := blocksText(m); strings.Contains(b, "KeeperLastGroup") && strings.Contains(b, fmt.Sprintf("%d alert groups", inIncident)) &&
				strings.Contains(b, want) {
				reflected = r.clock.Now().Sub(last)
			}
		}
		if reflected < 0 || r.clock.Now().Sub(last) < 15*time.Second {
			r.clock.Add(250 * time.Millisecond)
		} else {
			r.clock.Add(time.Second) // the summaries' minute needs no finer steps
		}
	}
	var top []slackfake.Message
	for _, m := range r.fake.Messages(stormChannel) {
		if m.ThreadTS == "" || m.ThreadTS == m.TS {
			top = append(top, m)
		}
	}
	threshold := r.p.Config.Slack.StormThreshold
	if len(top) != threshold {
		t.Errorf("%d top-level messages, want %d group messages and 1 incident message", len(top), threshold-1)
	}
	extra := r.calls() - threshold
	t.Logf("slack calls in the first 10 minutes: %d posts (%d top-level), %d updates: %d beyond the top-level posts; last group reflected in Slack %s after its webhook",
		r.fake.CallCount("chat.postMessage"), len(top), r.fake.CallCount("chat.update"), extra, reflected)
	if extra > 30 {
		t.Errorf("%d Slack calls beyond the top-level posts in the first 10 minutes, want at most 30", extra)
	}
	if reflected < 0 || reflected > 10*time.Second {
		t.Errorf("the last group was reflected in the incident message after %s, want within 10s of its webhook", reflected)
	}
	inc := r.incidentMessage()
	replies := r.fake.Replies(stormChannel, inc.TS)
	if len(replies) == 0 || len(replies) > 10 {
		t.Fatalf("%d summary replies in 10 minutes, want between 1 and 10 (at most one per minute)", len(replies))
	}
	var prev time.Time
	for _, m := range replies {
		at := tsTime(t, m.TS)
		if !prev.IsZero() && at.Sub(prev) < time.Minute {
			t.Errorf("two summary replies %s apart", at.Sub(prev))
		}
		prev = at
	}
	// The summaries add up: the incident opened with the threshold's
	// group, every later group is in exactly one summary.
	total := 0
	for _, m := range replies {
		var n int
		if _, err := fmt.Sscanf(m.Text[strings.Index(m.Text, "*+")+2:], "%d", &n); err != nil {
			t.Fatalf("summary %q: %v", m.Text, err)
		}
		total += n
	}
	if want := groups - (threshold - 1) - 1; total != want {
		t.Errorf("the summaries count %d groups newly firing, want %d", total, want)
	}
	lastReply := replies[len(replies)-1].Text
	if !strings.Contains(lastReply, fmt.Sprintf("Now: %d of %d groups firing", groups-(threshold-1), groups-(threshold-1))) {
		t.Errorf("last summary's totals: %s", lastReply)
	}
}

func tsTime(t *testing.T, ts string) time.Time {
	var sec, usec int64
	if _, err := fmt.Sscanf(ts, "%d.%d", &sec, &usec); err != nil {
		t.Fatalf("ts %q: %v", ts, err)
	}
	return time.Unix(sec, usec*1000)
}

// TestIncidentSummaryRepliesBatchedPerMinute: an incident's thread gets
// one summary reply per minute at most, instead of a reply per group; each
// counts the changes since the previous one and states the totals now.
func TestIncidentSummaryRepliesBatchedPerMinute(t *testing.T) {
	r := newStormRig(t, "")
	ctx := context.Background()
	step := func(d time.Duration) {
		for end := r.clock.Now().Add(d); r.clock.Now().Before(end); r.clock.Add(250 * time.Millisecond) {
			r.ob.Step(ctx)
		}
	}
	// g0, g1 keep their own messages; g2 opens the incident.
	for i := range 3 {
		r.process(i+1, fmt.Sprintf("g%d", i), "ClickHouseReadonlyReplica", "firing")
	}
	step(10 * time.Second)
	inc := r.incidentMessage()
	if inc.TS == "" {
		t.Fatal("no incident message")
	}
	// Five groups join, two of them resolve, within the first minute.
	for i := 3; i < 8; i++ {
		r.process(i+1, fmt.Sprintf("g%d", i), "ZookeeperHighLatency", "firing")
	}
	step(10 * time.Second)
	r.process(20, "g3", "ZookeeperHighLatency", "resolved")
	r.process(21, "g4", "ZookeeperHighLatency", "resolved")
	step(20 * time.Second)
	if n := len(r.fake.Replies(stormChannel, inc.TS)); n != 0 {
		t.Fatalf("%d replies 40s after the incident opened, want none yet (one per minute)", n)
	}
	step(25 * time.Second)
	replies := r.fake.Replies(stormChannel, inc.TS)
	if len(replies) != 1 {
		t.Fatalf("%d replies after a minute, want 1 summary", len(replies))
	}
	first := replies[0].Text
	for _, want := range []string{"*+3 groups firing, 2 resolved*", "(7 changes)", "ZookeeperHighLatency +3 firing, +2 resolved",
		"Now: 4 of 6 groups firing (4 alerts), 2 resolved."} {
		if !strings.Contains(first, want) {
			t.Errorf("first summary lacks %q:\n%s", want, first)
		}
	}
	// A change right after the summary waits a minute after it.
	r.process(30, "g9", "KeeperLastGroup", "firing")
	step(50 * time.Second)
	if n := len(r.fake.Replies(stormChannel, inc.TS)); n != 1 {
		t.Fatalf("%d replies 50s after the first summary, want still 1", n)
	}
	if b := blocksText(r.incidentMessage()); !strings.Contains(b, "KeeperLastGroup") || !strings.Contains(b, "now 5 of 7 groups firing") {
		t.Errorf("the incident message does not reflect the latest group and totals:\n%.600s", b)
	}
	step(15 * time.Second)
	replies = r.fake.Replies(stormChannel, inc.TS)
	if len(replies) != 2 {
		t.Fatalf("%d replies, want the second summary a minute after the first", len(replies))
	}
	if at, prev := tsTime(t, replies[1].TS), tsTime(t, replies[0].TS); at.Sub(prev) < time.Minute {
		t.Errorf("summaries %s apart", at.Sub(prev))
	}
	if s := replies[1].Text; !strings.Contains(s, "*+1 group firing, 0 resolved*") || !strings.Contains(s, "KeeperLastGroup +1 firing") ||
		!strings.Contains(s, "Now: 5 of 7 groups firing") {
		t.Errorf("second summary:\n%s", s)
	}
}
