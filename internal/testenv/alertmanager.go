package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// Alertmanager is the environment's Alertmanager (clustering disabled).
type Alertmanager struct {
	URL        string // "http://127.0.0.1:port"
	Port       int
	Dir        string
	ConfigPath string
	LogPath    string

	client *http.Client
	proc   *process

	mu         sync.Mutex
	generation int
}

// PostableAlert is one alert for PostAlerts, in the JSON shape of
// Alertmanager's API v2 (POST /api/v2/alerts).
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// alertmanagerUnusedURL is where notifications go until SetWebhook is called:
// nothing listens on port 1, so a delivery fails at once.
const alertmanagerUnusedURL = "http://127.0.0.1:1/unused"

const alertmanagerReadyTimeout = 20 * time.Second

func newAlertmanager(dir string, port int, bin string, client *http.Client) (*Alertmanager, error) {
	a := &Alertmanager{
		URL:        "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Port:       port,
		Dir:        dir,
		ConfigPath: filepath.Join(dir, "alertmanager.yml"),
		LogPath:    filepath.Join(dir, "alertmanager.log"),
		client:     client,
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	if _, err := a.writeConfig(alertmanagerUnusedURL, ""); err != nil {
		return nil, err
	}
	a.proc = &process{
		name: "alertmanager",
		path: bin,
		args: []string{
			"--config.file=" + a.ConfigPath,
			"--storage.path=" + data,
			"--web.listen-address=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			"--cluster.listen-address=",
			"--log.level=debug",
		},
		dir:     dir,
		logPath: a.LogPath,
	}
	return a, nil
}

// writeConfig writes a config whose single receiver (named after a new
// generation number, so that the loaded config can be told apart) sends
// webhooks to url, and returns the receiver's name.
func (a *Alertmanager) writeConfig(url, bearerToken string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.generation++
	receiver := "chmedic-webhook-" + strconv.Itoa(a.generation)
	webhook := map[string]any{
		"url":           url,
		"send_resolved": true,
	}
	if bearerToken != "" {
		webhook["http_config"] = map[string]any{
			"authorization": map[string]any{"type": "Bearer", "credentials": bearerToken},
		}
	}
	cfg := map[string]any{
		"route": map[string]any{
			"receiver":        receiver,
			"group_by":        []string{"alertname", "cluster"},
			"group_wait":      "1s",
			"group_interval":  "2s",
			"repeat_interval": "1h",
		},
		"receivers": []any{
			map[string]any{"name": receiver, "webhook_configs": []any{webhook}},
		},
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	tmp := a.ConfigPath + ".tmp"
	if err := os.WriteFile(tmp, append([]byte("# Written by chmedic internal/testenv.\n"), out...), 0o600); err != nil {
		return "", err
	}
	return receiver, os.Rename(tmp, a.ConfigPath)
}

// Start starts Alertmanager (again) and waits until /-/ready answers.
func (a *Alertmanager) Start(ctx context.Context) error {
	if err := a.proc.start(); err != nil {
		return err
	}
	return a.proc.waitReady(ctx, alertmanagerReadyTimeout, "ready on "+a.URL, func(ctx context.Context) error {
		_, err := a.do(ctx, http.MethodGet, "/-/ready", nil)
		return err
	})
}

// Stop stops Alertmanager with SIGTERM (SIGKILL after a bound).
func (a *Alertmanager) Stop(ctx context.Context) error { return a.proc.stop(ctx, stopGrace) }

// Running reports whether the Alertmanager process is alive.
func (a *Alertmanager) Running() bool { return a.proc.running() }

// SetWebhook points the only receiver at url, with an
// "Authorization: Bearer <bearerToken>" header when bearerToken is not empty
// and send_resolved: true; the route groups by alertname and cluster with
// group_wait 1s, group_interval 2s and repeat_interval 1h. It reloads
// Alertmanager and waits until /api/v2/status shows the new config.
func (a *Alertmanager) SetWebhook(ctx context.Context, url, bearerToken string) error {
	receiver, err := a.writeConfig(url, bearerToken)
	if err != nil {
		return fmt.Errorf("alertmanager: write config: %w", err)
	}
	return a.reload(ctx, receiver)
}

// reload makes Alertmanager re-read its config file and waits until
// /api/v2/status shows the config holding receiver.
func (a *Alertmanager) reload(ctx context.Context, receiver string) error {
	if _, err := a.do(ctx, http.MethodPost, "/-/reload", nil); err != nil {
		return fmt.Errorf("alertmanager: reload: %w%s", err, a.logTail())
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		body, err := a.do(ctx, http.MethodGet, "/api/v2/status", nil)
		if err == nil {
			var st struct {
				Config struct {
					Original string `json:"original"`
				} `json:"config"`
			}
			if json.Unmarshal(body, &st) == nil && strings.Contains(st.Config.Original, receiver) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("alertmanager: config with receiver %s not loaded: %w%s", receiver, ctx.Err(), a.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PostAlerts posts alerts through POST /api/v2/alerts.
func (a *Alertmanager) PostAlerts(ctx context.Context, alerts []PostableAlert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return err
	}
	if _, err := a.do(ctx, http.MethodPost, "/api/v2/alerts", body); err != nil {
		return fmt.Errorf("alertmanager: post alerts: %w", err)
	}
	return nil
}

func (a *Alertmanager) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.URL+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return out, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(out)))
	}
	return out, nil
}

func (a *Alertmanager) logTail() string {
	if t := tailFile(a.LogPath, 20); t != "" {
		return "\n--- tail of " + a.LogPath + ":\n" + t
	}
	return ""
}
