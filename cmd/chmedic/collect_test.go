package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/testenv"
)

// `chmedic check` refuses a config where an action a playbook offers lacks
// what it needs, and names the key.
func TestCheckRefusesActionWithoutItsNeeds(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte(`clusters:
  - name: a
    clickhouse: {nodes: [{name: ch-1, address: "127.0.0.1:9000"}]}
    keeper: {nodes: [{name: zk-1, address: "127.0.0.1:2181"}]}
`), 0o600)
	code, _, stderr := runCLI(t, "check", "--config", path)
	if code != 1 || !strings.Contains(stderr, path+":2:5: clusters[0].actions.clickhouse.user: required by action collect_logs, offered by playbook ") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "generic") {
		t.Errorf("the offering playbooks are not named:\n%s", stderr)
	}
}

func TestCollectFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"collect", "--config", "chmedic.example.yaml"}, "required flag(s) '--cluster'"},
		{[]string{"collect", "--config", "chmedic.example.yaml", "--cluster", "nope"}, `unknown cluster "nope"`},
		{[]string{"collect", "--config", "chmedic.example.yaml", "--cluster", "local", "--around", "yesterday"}, "want an RFC 3339 time"},
		{[]string{"collect", "--config", "chmedic.example.yaml", "--cluster", "local", "--window=-5m"}, "positive duration"},
	} {
		code, _, stderr := runCLI(t, tt.args...)
		if code == 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, stderr, tt.want)
		}
	}
}

// chmedic collect against the real cluster, through the binary.
func TestCollectCommandAgainstTheRealCluster(t *testing.T) {
	env := testenv.Shared(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "chmedic.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`store: {path: %s/state/chmedic.db}
clusters:
  - name: test
    clickhouse:
      nodes: [{name: ch-1, address: '%s'}, {name: ch-2, address: '%s'}]
    keeper:
      nodes: [{name: zk-1, address: '%s'}]
    actions:
      clickhouse: {user: %s, password_env: CHMEDIC_TEST_ACTIONS_PASSWORD}
      collect_logs:
        command: [cat, '%s/{{.Name}}/clickhouse-server.log']
`, dir, env.ClickHouse[0].Addr(), env.ClickHouse[1].Addr(), env.ZooKeeper.Addr, env.AdminUser, env.Dir)), 0o600)
	// A DDL in the window, in query_log before collecting.
	ch := env.ClickHouse[0]
	if _, err := ch.Query(t.Context(), "CREATE TABLE IF NOT EXISTS chmedic_test.cli_collect_probe (x UInt8) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		ch.Query(t.Context(), "SYSTEM FLUSH LOGS")
		if n, _ := ch.QueryInt(t.Context(), "SELECT count() FROM system.query_log WHERE query LIKE '%cli_collect_probe%'"); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the DDL never reached query_log")
		}
		time.Sleep(200 * time.Millisecond)
	}
	out := filepath.Join(dir, "bundle.tar.gz")
	around := time.Now().UTC().Format(time.RFC3339)
	cmd := exec.Command(binary, "collect", "--config", cfg, "--cluster", "test", "--around", around, "--window", "2m", "--out", out)
	cmd.Env = append(os.Environ(), "CHMEDIC_TEST_ACTIONS_PASSWORD="+env.AdminPassword)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("collect: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "sources collected") || !strings.Contains(stdout.String(), "bundle: "+out) {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	joined := strings.Join(names, " ")
	if len(names) == 0 || names[0] != "manifest.json" || !strings.Contains(joined, "ch-1/query_log.jsonl") || !strings.Contains(joined, "ch-2/server_log.log") || !strings.Contains(joined, "zk-1/mntr.txt") {
		t.Errorf("bundle entries: %v", names)
	}
	if strings.Contains(stdout.String(), env.AdminPassword) || strings.Contains(stderr.String(), env.AdminPassword) {
		t.Error("the actions password was printed")
	}
	// --out leaves nothing in the data directory.
	if _, err := os.Stat(filepath.Join(dir, "state", "bundles")); err == nil {
		t.Error("a bundle was also left beside the store")
	}
}
