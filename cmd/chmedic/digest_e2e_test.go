package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/testenv"
)

type digestJSON struct {
	Verdict     string    `json:"verdict"`
	GeneratedAt time.Time `json:"generated_at"`
	Stored      bool      `json:"stored"`
	Clusters    []struct {
		Name             string     `json:"name"`
		Verdict          string     `json:"verdict"`
		PreviousAt       *time.Time `json:"previous_at"`
		NodesUp          int        `json:"nodes_up"`
		NodesTotal       int        `json:"nodes_total"`
		ReplicatedTables *int64     `json:"replicated_tables"`
		Nodes            []struct {
			Name string `json:"name"`
			Up   bool   `json:"up"`
		} `json:"nodes"`
		Keeper []struct {
			Name   string `json:"name"`
			Znodes *int64 `json:"znodes"`
		} `json:"keeper"`
		Trends []struct {
			Name     string   `json:"name"`
			Value    *float64 `json:"value"`
			Previous *float64 `json:"previous"`
			Delta    *float64 `json:"delta"`
		} `json:"trends"`
	} `json:"clusters"`
}

// TestDigestCommandAgainstTheRealCluster runs `chmedic digest` (the real
// binary) on the real cluster: JSON with every figure, stored digests as
// the previous of the next, --no-store leaving the history alone, --post
// delivering to the Slack fake.
func TestDigestCommandAgainstTheRealCluster(t *testing.T) {
	env := testenv.Shared(t)
	dir := t.TempDir()
	slk := slackfake.New(t, slackfake.Options{})
	cfg := writeConfig(t, dir, env, slk.URL(), "")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"digest", "--config", cfg}, args...)...)
		cmd.Env = append(os.Environ(), "CHMEDIC_TEST_CH_PASSWORD="+env.ProbePassword,
			"CHMEDIC_TEST_SLACK_TOKEN="+slackfake.DefaultToken, "CHMEDIC_TEST_WEBHOOK_TOKEN="+webhookToken)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("digest %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String()
	}
	var first, second, dry, fourth digestJSON
	decodeJSON(t, []byte(run("--format", "json")), &first)
	if first.Verdict != "healthy" || !first.Stored || len(first.Clusters) != 1 {
		t.Fatalf("first digest: %+v", first)
	}
	c := first.Clusters[0]
	if c.Name != "test" || c.NodesUp != 2 || c.NodesTotal != 2 || c.ReplicatedTables == nil || len(c.Keeper) != 1 || c.Keeper[0].Znodes == nil || c.PreviousAt != nil {
		t.Errorf("first digest figures: %+v", c)
	}
	if len(c.Trends) != 5 || c.Trends[0].Previous != nil {
		t.Errorf("first digest trends: %+v", c.Trends)
	}
	decodeJSON(t, []byte(run("--format", "json", "--cluster", "test")), &second)
	c2 := second.Clusters[0]
	if c2.PreviousAt == nil || !c2.PreviousAt.Equal(first.GeneratedAt) {
		t.Fatalf("second digest's previous %v, want %s", c2.PreviousAt, first.GeneratedAt)
	}
	for _, tr := range c2.Trends {
		if tr.Name == "replicated_tables" && (tr.Previous == nil || tr.Delta == nil || *tr.Delta != 0) {
			t.Errorf("replicated tables trend: %+v", tr)
		}
	}
	decodeJSON(t, []byte(run("--format", "json", "--no-store")), &dry)
	if dry.Stored {
		t.Error("--no-store digest says stored")
	}
	decodeJSON(t, []byte(run("--format", "json")), &fourth)
	if p := fourth.Clusters[0].PreviousAt; p == nil || !p.Equal(second.GeneratedAt) {
		t.Errorf("after --no-store the previous is %v, want the second digest %s", p, second.GeneratedAt)
	}
	text := run("--post", "--no-store")
	if !strings.HasPrefix(text, "[HEALTHY] Health digest") {
		t.Errorf("text digest:\n%s", text)
	}
	msgs := slk.Messages(slackChannel)
	if len(msgs) != 1 || msgs[0].ThreadTS != "" || !strings.Contains(msgs[0].Text, "[HEALTHY] Health digest") || !strings.Contains(string(msgs[0].Blocks), "Cluster test") {
		t.Fatalf("posted: %+v", msgs)
	}
	blocks := run("--format", "blocks", "--no-store")
	if !strings.Contains(blocks, `"type": "header"`) || !strings.Contains(blocks, "Coordination nodes") {
		t.Errorf("blocks:\n%s", blocks)
	}
}

// TestScheduledDigestThroughServe: `serve` with a digest scheduled every
// few seconds posts it as a top-level message in its channel.
func TestScheduledDigestThroughServe(t *testing.T) {
	env := testenv.Shared(t)
	dir := t.TempDir()
	slk := slackfake.New(t, slackfake.Options{})
	cfg := writeConfig(t, dir, env, slk.URL(), "digests:\n  schedules:\n    - {name: often, schedule: '@every 3s', channel: C0DIGEST01}\n")
	startChmedic(t, dir, cfg, env)
	deadline := time.Now().Add(30 * time.Second)
	var msgs []slackfake.Message
	for time.Now().Before(deadline) {
		if msgs = slk.Messages("C0DIGEST01"); len(msgs) > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(msgs) == 0 {
		t.Fatal("no scheduled digest posted within 30s")
	}
	if msgs[0].ThreadTS != "" || !strings.Contains(msgs[0].Text, "Health digest often") {
		t.Errorf("scheduled digest: %+v", msgs[0])
	}
}
