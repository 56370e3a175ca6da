package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
)

// A small typed client of Alertmanager's API v2 silences: creating one and
// expiring it is all rolling_restart needs, so it is two HTTP calls here
// rather than the generated client module and its dependencies.

// SilenceClient creates and expires Alertmanager silences.
type SilenceClient struct {
	// URL is Alertmanager's base URL (http://alertmanager:9093).
	URL  string
	HTTP *http.Client // default: http.DefaultClient
}

// Silence is a silence to create.
type Silence struct {
	Matchers  []*labels.Matcher
	StartsAt  time.Time
	EndsAt    time.Time
	CreatedBy string
	Comment   string
}

type apiMatcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual bool   `json:"isEqual"`
}

type apiSilence struct {
	ID        string       `json:"id,omitempty"`
	Matchers  []apiMatcher `json:"matchers"`
	StartsAt  time.Time    `json:"startsAt"`
	EndsAt    time.Time    `json:"endsAt"`
	CreatedBy string       `json:"createdBy"`
	Comment   string       `json:"comment"`
	Status    *struct {
		State string `json:"state"`
	} `json:"status,omitempty"`
}

// Create posts the silence (POST /api/v2/silences) and returns its id.
func (c *SilenceClient) Create(ctx context.Context, s Silence) (string, error) {
	body := apiSilence{StartsAt: s.StartsAt.UTC(), EndsAt: s.EndsAt.UTC(), CreatedBy: s.CreatedBy, Comment: s.Comment}
	for _, m := range s.Matchers {
		am := apiMatcher{Name: m.Name, Value: m.Value}
		switch m.Type {
		case labels.MatchEqual:
			am.IsEqual = true
		case labels.MatchNotEqual:
		case labels.MatchRegexp:
			am.IsRegex, am.IsEqual = true, true
		case labels.MatchNotRegexp:
			am.IsRegex = true
		}
		body.Matchers = append(body.Matchers, am)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	var out struct {
		SilenceID string `json:"silenceID"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v2/silences", b, &out); err != nil {
		return "", err
	}
	if out.SilenceID == "" {
		return "", fmt.Errorf("alertmanager %s: POST /api/v2/silences answered no silenceID", c.URL)
	}
	return out.SilenceID, nil
}

// Expire expires the silence (DELETE /api/v2/silence/{id}). A silence
// already expired is not an error.
func (c *SilenceClient) Expire(ctx context.Context, id string) error {
	err := c.do(ctx, http.MethodDelete, "/api/v2/silence/"+url.PathEscape(id), nil, nil)
	if err != nil && strings.Contains(err.Error(), "already expired") {
		return nil
	}
	return err
}

// State returns the silence's state (active, pending, expired).
func (c *SilenceClient) State(ctx context.Context, id string) (string, error) {
	var s apiSilence
	if err := c.do(ctx, http.MethodGet, "/api/v2/silence/"+url.PathEscape(id), nil, &s); err != nil {
		return "", err
	}
	if s.Status == nil {
		return "", fmt.Errorf("alertmanager %s: silence %s has no status", c.URL, id)
	}
	return s.Status.State, nil
}

func (c *SilenceClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.URL, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("alertmanager %s: %w", c.URL, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("alertmanager: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("alertmanager: %s %s: HTTP %d: %s", method, path, resp.StatusCode, firstLine(strings.TrimSpace(string(data)), 300))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("alertmanager: %s %s: %w", method, path, err)
		}
	}
	return nil
}
