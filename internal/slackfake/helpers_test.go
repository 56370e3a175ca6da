package slackfake

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

// rawCall posts form to method with the valid token in the form, as
// slack-go does, and decodes the JSON answer.
func rawCall(t *testing.T, s *Server, method string, form url.Values) map[string]any {
	t.Helper()
	if form.Get("token") == "" {
		form.Set("token", s.Token())
	}
	resp, err := http.PostForm(s.URL()+method, form)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return decodeBody(t, resp)
}

func decodeBody(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("status %d, body %q: %v", resp.StatusCode, b, err)
	}
	return out
}

func wantCode(t *testing.T, err error, code string) slack.SlackErrorResponse {
	t.Helper()
	var e slack.SlackErrorResponse
	if !errors.As(err, &e) || e.Err != code {
		t.Fatalf("error = %v (%T), want Slack error %q", err, err, code)
	}
	return e
}

func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func button(actionID, text, value string) *slack.ButtonBlockElement {
	return slack.NewButtonBlockElement(actionID, value, slack.NewTextBlockObject(slack.PlainTextType, text, false, false))
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
