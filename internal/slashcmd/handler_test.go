package slashcmd

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/digest"
	"github.com/chmedic/chmedic/playbooks/probe"
)

const (
	team      = "T0CHMEDIC"
	postingCh = "C0ALERTS"
	otherCh   = "C0RANDOM"
)

var testNow = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

type fakeDiagnoser struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (f *fakeDiagnoser) Diagnose(_ context.Context, cluster string) (*diagnose.Diagnosis, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	// Every call shares one round (the engine's cache): the same start.
	return &diagnose.Diagnosis{Cluster: cluster, Started: testNow, Duration: time.Second, Status: probe.Warn,
		Verdict: "replicas lag <!here>", Results: []probe.Result{{Probe: "clickhouse.ping", Node: "ch-1", Status: probe.OK}}}, nil
}

type fakeDigests struct {
	mu    sync.Mutex
	asked []string
}

func (f *fakeDigests) DigestNow(_ context.Context, cluster, source string) (*digest.Digest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, cluster+"/"+source)
	return &digest.Digest{Source: source, GeneratedAt: testNow, Verdict: digest.Watch, Headline: "watch: znodes grow",
		Clusters: []*digest.Cluster{{Name: "prod", Verdict: digest.Watch}}}, nil
}

type fakePoster struct {
	mu     sync.Mutex
	posted []string
}

func (f *fakePoster) PostDigest(_ context.Context, d *digest.Digest, channel string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posted = append(f.posted, channel)
	return nil
}

type fakeAudit struct {
	mu  sync.Mutex
	got []approvals.Attempt
}

func (f *fakeAudit) Refused(_ context.Context, at approvals.Attempt) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, at)
	return nil
}

type fakeResponder struct {
	mu  sync.Mutex
	got []Response
}

func (f *fakeResponder) Respond(_ context.Context, url string, r Response) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, r)
	return nil
}

type fakeGroups map[string][]string

func (g fakeGroups) Members(_ context.Context, id string) ([]string, error) {
	if ms, ok := g[id]; ok {
		return ms, nil
	}
	return nil, errors.New("no_such_subteam")
}

type fakeFreezes map[string][]string

func (f fakeFreezes) ActiveFreezes(_ context.Context, cluster string) ([]string, error) {
	return f[cluster], nil
}

type rig struct {
	h      *Handler
	diag   *fakeDiagnoser
	dig    *fakeDigests
	post   *fakePoster
	audit  *fakeAudit
	resp   *fakeResponder
	policy config.SlackCommands
}

func newRig(t *testing.T, clusters []string, policy config.SlackCommands, teamID string, mod func(*Options)) *rig {
	r := &rig{diag: &fakeDiagnoser{}, dig: &fakeDigests{}, post: &fakePoster{}, audit: &fakeAudit{}, resp: &fakeResponder{}}
	o := Options{
		Command: "/chmedic", TeamID: func() string { return teamID }, Clusters: clusters, Policy: policy,
		Groups: fakeGroups{"S0ONCALL": {"U0CAROL"}}, Audit: r.audit, Diagnoser: r.diag, Digests: r.dig, PostDigest: r.post,
		InChannel: InChannelOf([]string{postingCh, "#incidents"}), Responder: r.resp, Now: func() time.Time { return testNow },
	}
	if mod != nil {
		mod(&o)
	}
	r.h = New(o)
	t.Cleanup(r.h.Close)
	return r
}

func cmd(text string) approvals.Command {
	return approvals.Command{TeamID: team, UserID: "U0ALICE", ChannelID: postingCh, ChannelName: "alerts", Command: "/chmedic", Text: text,
		ResponseURL: "https://hooks.slack.com/commands/T0CHMEDIC/1/x", ReceivedAt: testNow}
}

func TestHandleCommand(t *testing.T) {
	tests := []struct {
		name     string
		clusters []string
		policy   config.SlackCommands
		team     string
		mod      func(*Options)
		cmd      approvals.Command
		want     []string // substrings of the immediate reply
		refused  string   // the audit reason, when refused
		results  int      // results posted through response_url
	}{
		{name: "empty text is help", cmd: cmd(""), want: []string{"/chmedic diagnose [cluster]", "/chmedic digest [cluster]", "/chmedic freezes", "--private", "`prod`"}},
		{name: "help", cmd: cmd("  HELP "), want: []string{"/chmedic help", "Clusters: `prod`."}},
		{name: "unknown subcommand", cmd: cmd("restart prod"), want: []string{`Unknown subcommand "restart".`, "/chmedic diagnose [cluster]"}},
		{name: "unknown option", cmd: cmd("diagnose prod --force"), want: []string{`Unknown option "--force"`}},
		{name: "two clusters", cmd: cmd("diagnose prod staging"), want: []string{"diagnose takes at most one cluster, got 2"}},
		{name: "freezes takes no argument", cmd: cmd("freezes prod"), want: []string{"freezes takes no argument."}},
		{name: "text too long", cmd: cmd("diagnose " + strings.Repeat("x", 600)), want: []string{"The command is too long"}},
		{name: "unknown cluster, escaped", cmd: cmd("diagnose <!here>"), want: []string{`There is no cluster "&lt;!here&gt;" here. Clusters: ` + "`prod`."}},
		{name: "several clusters: name one", clusters: []string{"prod", "staging"}, cmd: cmd("diagnose"),
			want: []string{"Name the cluster to diagnose: `/chmedic diagnose CLUSTER`. Clusters: `prod`, `staging`."}},
		{name: "one cluster: diagnose it", cmd: cmd("diagnose"), want: []string{"Diagnosing *prod*… the result follows here (in this channel, once for everyone who asks while it runs)."}, results: 1},
		{name: "private", cmd: cmd("diagnose prod --private"), want: []string{"(only you will see it)"}, results: 1},
		{name: "not a posting channel", cmd: func() approvals.Command {
			c := cmd("diagnose prod")
			c.ChannelID, c.ChannelName = otherCh, "random"
			return c
		}(),
			want: []string{"(only you will see it)"}, results: 1},
		{name: "a posting channel given by name", cmd: func() approvals.Command {
			c := cmd("diagnose")
			c.ChannelID, c.ChannelName = "C0INC", "incidents"
			return c
		}(),
			want: []string{"(in this channel, once"}, results: 1},
		{name: "digest of all clusters", clusters: []string{"prod", "staging"}, cmd: cmd("digest"),
			want: []string{"health digest of all clusters… it follows here (posted in this channel as a message of its own)."}, results: 1},
		{name: "freezes not available yet", cmd: cmd("freezes"), want: []string{NotAvailableFreezes}},
		{name: "freezes", clusters: []string{"prod", "staging"}, mod: func(o *Options) { o.Freezes = fakeFreezes{"prod": {"ch-1 by U0BOB until 10:00 <!here>"}} },
			cmd: cmd("freezes"), want: []string{"*prod*: 1 active DDL freeze(s):", "ch-1 by U0BOB until 10:00 &lt;!here&gt;", "No active DDL freeze on `staging`."}},
		{name: "another workspace", cmd: func() approvals.Command { c := cmd("diagnose"); c.TeamID = "T0EVIL"; return c }(),
			want: []string{"This chmedic serves another Slack workspace; nothing was done."}, refused: approvals.RefusedOtherTeam},
		{name: "workspace unknown", team: "-", cmd: cmd("help"),
			want: []string{"chmedic does not know which Slack workspace it serves"}, refused: approvals.RefusedOtherTeam},
		{name: "channel not allowed", policy: config.SlackCommands{AllowedChannels: []string{"C0ONLY"}}, cmd: cmd("diagnose"),
			want: []string{"/chmedic cannot be used in this channel: slack.commands.allowed_channels lists where it can (<#C0ONLY>)."}, refused: "channel not allowed"},
		{name: "user not allowed", policy: config.SlackCommands{AllowedUsers: []string{"U0BOB"}}, cmd: cmd("help"),
			want: []string{"You are not allowed to use /chmedic: slack.commands.allowed_users does not name you (U0ALICE)."}, refused: "user not allowed"},
		{name: "user allowed by id", policy: config.SlackCommands{AllowedUsers: []string{"U0BOB", "U0ALICE"}, AllowedChannels: []string{postingCh}}, cmd: cmd("help"),
			want: []string{"/chmedic help"}},
		{name: "user allowed through a group", policy: config.SlackCommands{AllowedUsers: []string{"S0ONCALL"}},
			cmd: func() approvals.Command { c := cmd("help"); c.UserID = "U0CAROL"; return c }(), want: []string{"/chmedic help"}},
		{name: "a group that cannot be resolved", policy: config.SlackCommands{AllowedUsers: []string{"S0GONE"}}, cmd: cmd("help"),
			want: []string{"does not name you (U0ALICE). User group S0GONE could not be resolved (no_such_subteam)"}, refused: "user not allowed"},
		{name: "no response_url", cmd: func() approvals.Command { c := cmd("diagnose"); c.ResponseURL = ""; return c }(),
			want: []string{"Slack sent no response_url"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clusters := tc.clusters
			if clusters == nil {
				clusters = []string{"prod"}
			}
			tm := team
			if tc.team == "-" {
				tm = ""
			}
			r := newRig(t, clusters, tc.policy, tm, tc.mod)
			reply, err := r.h.HandleCommand(context.Background(), tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(reply.Ephemeral, w) {
					t.Errorf("reply %q\nwant it to contain %q", reply.Ephemeral, w)
				}
			}
			r.h.Wait()
			if len(r.resp.got) != tc.results {
				t.Errorf("%d results posted, want %d", len(r.resp.got), tc.results)
			}
			switch {
			case tc.refused == "" && len(r.audit.got) > 0:
				t.Errorf("audited %+v", r.audit.got)
			case tc.refused != "":
				if len(r.audit.got) != 1 || r.audit.got[0].Reason != tc.refused || r.audit.got[0].UserID != tc.cmd.UserID ||
					r.audit.got[0].TeamID != tc.cmd.TeamID || r.audit.got[0].Via != "slack" || !strings.Contains(r.audit.got[0].Detail, tc.cmd.ChannelID) {
					t.Errorf("audit %+v, want one %q", r.audit.got, tc.refused)
				}
				if r.diag.calls > 0 {
					t.Errorf("a refused command diagnosed")
				}
			}
		})
	}
}

func blocksJSON(t *testing.T, r Response) string {
	t.Helper()
	b, err := responseBody(r)
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b))
}

// TestDiagnoseAnswers: the result of diagnose is the on-demand report, in
// the channel once per round (the others who ask get it privately), escaped.
func TestDiagnoseAnswers(t *testing.T) {
	r := newRig(t, []string{"prod"}, config.SlackCommands{}, team, nil)
	for range 3 {
		r.h.HandleCommand(context.Background(), cmd("diagnose prod"))
	}
	r.h.Wait()
	if len(r.resp.got) != 3 || r.diag.calls != 3 {
		t.Fatalf("%d results, %d diagnoses", len(r.resp.got), r.diag.calls)
	}
	in := 0
	for _, got := range r.resp.got {
		if got.InChannel {
			in++
		}
		body := blocksJSON(t, got)
		if !strings.Contains(body, "Diagnosis of prod: WARN") || strings.Contains(body, "<!here>") || !strings.Contains(body, "asked by <@U0ALICE>") {
			t.Errorf("result %s", body)
		}
	}
	if in != 1 {
		t.Errorf("%d results in the channel, want 1", in)
	}
	for _, got := range r.resp.got {
		var m map[string]any
		json.Unmarshal([]byte(blocksJSON(t, got)), &m)
		want := map[bool]string{true: "in_channel", false: "ephemeral"}[got.InChannel]
		if m["response_type"] != want || m["replace_original"] != false {
			t.Errorf("result %v, want response_type %s", m, want)
		}
	}

	r.diag.err = context.DeadlineExceeded
	r.h.HandleCommand(context.Background(), cmd("diagnose prod"))
	r.h.Wait()
	last := r.resp.got[len(r.resp.got)-1]
	if last.InChannel || !strings.Contains(blocksJSON(t, last), "The diagnosis did not finish: context deadline exceeded") {
		t.Errorf("failed diagnosis: %+v", last)
	}
}

// TestDigestAnswers: in a posting channel the digest is posted (with its
// buttons) by the poster, once for one digest; elsewhere it is answered
// privately, without buttons.
func TestDigestAnswers(t *testing.T) {
	r := newRig(t, []string{"prod"}, config.SlackCommands{}, team, nil)
	r.h.HandleCommand(context.Background(), cmd("digest prod"))
	r.h.HandleCommand(context.Background(), cmd("digest prod"))
	c := cmd("digest")
	c.ChannelID, c.ChannelName = otherCh, "random"
	r.h.HandleCommand(context.Background(), c)
	r.h.Wait()
	if len(r.post.posted) != 1 || r.post.posted[0] != postingCh {
		t.Errorf("posted %v", r.post.posted)
	}
	sort.Strings(r.dig.asked)
	if strings.Join(r.dig.asked, ",") != "/slack,prod/slack,prod/slack" {
		t.Errorf("asked %v", r.dig.asked)
	}
	if len(r.resp.got) != 3 {
		t.Fatalf("%d results", len(r.resp.got))
	}
	posted, private := 0, 0
	for i, got := range r.resp.got {
		if got.InChannel {
			t.Errorf("result %d in the channel", i)
		}
		switch b := blocksJSON(t, got); {
		case strings.Contains(b, "being posted in this channel"):
			posted++
		case strings.Contains(b, "Health digest") && !strings.Contains(b, `"type":"button"`):
			private++
		default:
			t.Errorf("result %s", b)
		}
	}
	if posted != 1 || private != 2 {
		t.Errorf("%d posted, %d private", posted, private)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		text string
		want Invocation
		err  string
	}{
		{"", Invocation{Sub: SubHelp}, ""},
		{"Diagnose", Invocation{Sub: SubDiagnose}, ""},
		{"diagnose prod", Invocation{Sub: SubDiagnose, Cluster: "prod"}, ""},
		{"diagnose --private prod", Invocation{Sub: SubDiagnose, Cluster: "prod", Private: true}, ""},
		{"digest\tprod  --private", Invocation{Sub: SubDigest, Cluster: "prod", Private: true}, ""},
		{"freezes --private", Invocation{Sub: SubFreezes, Private: true}, ""},
		{"digest a b", Invocation{}, "digest takes at most one cluster"},
		{"help me", Invocation{}, "help takes no argument"},
		{"diagnose -p", Invocation{}, `Unknown option "-p"`},
		{"status", Invocation{}, `Unknown subcommand "status"`},
	}
	for _, tc := range tests {
		got, err := Parse(tc.text)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) error %v, want %q", tc.text, err, tc.err)
			}
		case err != nil || got != tc.want:
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.text, got, err, tc.want)
		}
	}
}

func TestInChannelOf(t *testing.T) {
	in := InChannelOf([]string{"C0ALERTS", "#Incidents", "ops"})
	for _, tc := range []struct {
		id, name string
		want     bool
	}{
		{"C0ALERTS", "whatever", true}, {"C0X", "incidents", true}, {"C0Y", "ops", true},
		{"C0Z", "random", false}, {"D0DM", "directmessage", false}, {"", "", false},
	} {
		if got := in(tc.id, tc.name); got != tc.want {
			t.Errorf("in(%q, %q) = %v", tc.id, tc.name, got)
		}
	}
}
