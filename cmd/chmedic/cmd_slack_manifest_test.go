package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateManifest = flag.Bool("update-manifest", false, "rewrite testdata/slack-manifest/*")

// TestSlackManifest prints the manifest for an HTTP and a Socket Mode
// config and compares it with testdata/slack-manifest/<name> (rewrite with
// go test ./cmd/chmedic -run TestSlackManifest -update-manifest).
func TestSlackManifest(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret"), []byte("s3cr3t"), 0o600)
	os.WriteFile(filepath.Join(dir, "app"), []byte("xapp-1-A1-x"), 0o600)
	base := `clusters:
  - name: a
    clickhouse: {nodes: [{name: ch-1, address: "127.0.0.1:9000"}]}
    keeper: {nodes: [{name: zk-1, address: "127.0.0.1:2181"}]}
slack:
  channel: "#a"
`
	write := func(name, extra string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(base+extra), 0o600)
		return p
	}
	httpCfg := write("http.yaml", "  public_url: https://chmedic.example.com/\n  signing_secret_file: secret\n  slash_command: /chmedic\n")
	socketCfg := write("socket.yaml", "  socket_mode: true\n  app_token_file: app\n  app_name: chmedic-prod\n")
	neither := write("neither.yaml", "")

	tests := []struct {
		golden string
		args   []string
	}{
		{"http.yaml", []string{"slack-manifest", "--config", httpCfg}},
		{"http.json", []string{"slack-manifest", "--config", httpCfg, "--format", "json"}},
		{"socket.yaml", []string{"slack-manifest", "--config", socketCfg}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			path := filepath.Join("testdata", "slack-manifest", tc.golden)
			if *updateManifest {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (rerun with -update-manifest)", err)
			}
			if out != string(want) {
				t.Errorf("%s differs from the golden file (rerun with -update-manifest and review the diff):\n%s", path, out)
			}
		})
	}
	code, _, errOut := runCLI(t, "slack-manifest", "--config", neither)
	if code != 1 || !strings.Contains(errOut, "slack.public_url or slack.socket_mode") {
		t.Errorf("neither: exit %d, %s", code, errOut)
	}
}
