package actions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/store"
)

// The bundle is uploaded with Slack's files v2 flow into the alert's
// thread, with the summary as its message.
func TestCollectLogsUploadIntoThread(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	logPath := filepath.Join(dir, "a.log")
	os.WriteFile(logPath, []byte(at.Format("2006.01.02 15:04:05")+".1 [ 1 ] <Error> boom: Authorization: Bearer abc123\n"), 0o600)
	src := fmt.Sprintf(`
clusters:
  - name: up
    clickhouse: {nodes: [{name: a, address: 'a:9000'}]}
    keeper: {nodes: [{name: zk, address: 'zk:2181'}]}
    actions:
      collect_logs: {path: '%s', log_timezone: UTC, sources: [server_log]}
`, logPath)
	cfg, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(src), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fake := slackfake.New(t, slackfake.Options{})
	api := goslack.New(slackfake.DefaultToken, goslack.OptionAPIURL(fake.URL()))
	_, alertTS, err := api.PostMessageContext(ctx, "C42", goslack.MsgOptionText("ZooKeeper alarm", false))
	if err != nil {
		t.Fatal(err)
	}
	_, otherTS, _ := api.PostMessageContext(ctx, "C42", goslack.MsgOptionText("another alert", false))

	reg, err := actions.NewRegistry(cfg, actions.Deps{DataDir: dir, Uploader: chslack.NewUploader(api, 0), Now: func() time.Time { return at.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := reg[actions.CollectLogsKind].Plan(ctx, actions.Request{Cluster: "up", AlertStart: at, Channel: "C42", ThreadTS: alertTS})
	if err != nil {
		t.Fatal(err)
	}
	if last := plan.Steps[len(plan.Steps)-1]; last.ID != "upload" {
		t.Fatalf("last step %s, want upload", last.ID)
	}
	st, err := store.Open(ctx, filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data, _ := json.Marshal(plan)
	id, _, _ := st.CreateExecution(ctx, store.ExecutionRecord{RequestID: "r", Cluster: "up", Kind: plan.Kind, Plan: data, PlanHash: plan.Hash()})
	out, err := actions.NewRunner(st, reg, actions.RunnerOptions{}).Run(ctx, actions.Execution{ID: id, RequestID: "r", Plan: plan}, nil)
	if err != nil || out.State != actions.ExecSucceeded {
		t.Fatalf("%s %v: %s", out.State, err, out.Error)
	}
	files := fake.Files()
	if len(files) != 1 {
		t.Fatalf("%d files uploaded", len(files))
	}
	f := files[0]
	if f.Channel != "C42" || f.ThreadTS != alertTS || f.ThreadTS == otherTS || f.Name != out.Artifacts[0].Name {
		t.Errorf("file went to %s thread %s as %s, want C42 thread %s as %s", f.Channel, f.ThreadTS, f.Name, alertTS, out.Artifacts[0].Name)
	}
	if !strings.Contains(f.InitialComment, "1 sources collected") || !strings.Contains(f.InitialComment, "1 secrets redacted") {
		t.Errorf("comment = %q", f.InitialComment)
	}
	if int64(len(f.Content)) != out.Artifacts[0].Bytes {
		t.Errorf("uploaded %d bytes, bundle is %d", len(f.Content), out.Artifacts[0].Bytes)
	}
	inThread := false
	for _, m := range fake.Replies("C42", alertTS) {
		inThread = inThread || strings.Contains(m.Text, "sources collected")
	}
	if !inThread {
		t.Error("the summary is not in the alert's thread")
	}
}
