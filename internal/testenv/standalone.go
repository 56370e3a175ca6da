package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"

	"gopkg.in/yaml.v3"
)

// What a main program (cmd/chmedic-bench) uses without a testing.TB: Start
// and Close already take none; these are the TB-free forms of HungListener
// and ClosedAddr, and a free-form Alertmanager config.

// HungServer accepts TCP connections, reads whatever is sent and never
// answers: a hung node. Close it when done.
type HungServer struct {
	Addr string

	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

// StartHungServer starts a HungServer on a free 127.0.0.1 port.
func StartHungServer() (*HungServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testenv: hung server: %w", err)
	}
	h := &HungServer{Addr: ln.Addr().String(), ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			go io.Copy(io.Discard, c)
		}
	}()
	return h, nil
}

// Close stops accepting and closes every connection accepted.
func (h *HungServer) Close() error {
	err := h.ln.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
	return err
}

// ClosedAddress returns an address nothing listens on: a stopped node.
func ClosedAddress() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("testenv: closed address: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// SetConfig replaces Alertmanager's whole configuration with cfg (the YAML
// of alertmanager.yml as maps and slices: route, receivers with
// webhook_configs, slack_configs, ...; receivers as []any), reloads it and waits until
// /api/v2/status shows it. SetWebhook is the one-receiver shorthand.
func (a *Alertmanager) SetConfig(ctx context.Context, cfg map[string]any) error {
	// The loaded config is told apart by an extra, unused receiver named
	// after a new generation number (the status API re-encodes the config,
	// so a comment would not show).
	a.mu.Lock()
	a.generation++
	marker := "testenv-generation-" + strconv.Itoa(a.generation)
	a.mu.Unlock()
	full := make(map[string]any, len(cfg))
	for k, v := range cfg {
		full[k] = v
	}
	receivers, _ := cfg["receivers"].([]any)
	full["receivers"] = append(append([]any{}, receivers...), map[string]any{"name": marker})
	out, err := yaml.Marshal(full)
	if err != nil {
		return fmt.Errorf("alertmanager: encode config: %w", err)
	}
	tmp := a.ConfigPath + ".tmp"
	if err := os.WriteFile(tmp, append([]byte("# Written by chmedic internal/testenv.\n"), out...), 0o600); err != nil {
		return fmt.Errorf("alertmanager: write config: %w", err)
	}
	if err := os.Rename(tmp, a.ConfigPath); err != nil {
		return fmt.Errorf("alertmanager: write config: %w", err)
	}
	return a.reload(ctx, marker)
}
