package approvals

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/store"
)

const interactionsSecret = "8f742231b10e8888abcd99yyyzzz85a5"

type clickSpy struct {
	mu     sync.Mutex
	clicks []Click
	reply  Reply
	err    error
	block  bool // wait for the context to end
}

func (r *clickSpy) HandleClick(ctx context.Context, c Click) (Reply, error) {
	if r.block {
		<-ctx.Done()
		return Reply{}, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clicks = append(r.clicks, c)
	return r.reply, r.err
}

func (r *clickSpy) got() []Click {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Click(nil), r.clicks...)
}

type refusalSpy struct {
	mu      sync.Mutex
	reasons []string
	details []string
}

func (r *refusalSpy) Refused(_ context.Context, reason, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reasons = append(r.reasons, reason)
	r.details = append(r.details, detail)
}

func (r *refusalSpy) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reasons...)
}

// interactionsEnv is chmedic's interaction endpoint over a store, next to a Slack fake
// holding a message with an Approve button.
type interactionsEnv struct {
	t        *testing.T
	slack    *slackfake.Server
	path     string // store file
	st       *store.Store
	clicks   *clickSpy
	refusals *refusalSpy
	reg      *prometheus.Registry
	disp     *Dispatcher
	srv      *httptest.Server
	msgTS    string
	threadTS string
}

func newInteractionsEnv(t *testing.T, path string, fake *slackfake.Server) *interactionsEnv {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "chmedic.db")
	}
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	e := &interactionsEnv{t: t, slack: fake, path: path, st: st, clicks: &clickSpy{}, refusals: &refusalSpy{}, reg: prometheus.NewRegistry()}
	if e.slack == nil {
		e.slack = slackfake.New(t, slackfake.Options{})
		api := e.slack.Client()
		_, parent, err := api.PostMessage("C0INCIDENT", slack.MsgOptionText("ZooKeeper is down", false))
		if err != nil {
			t.Fatal(err)
		}
		_, ts, err := api.PostMessage("C0INCIDENT", slack.MsgOptionTS(parent), slack.MsgOptionBlocks(
			slack.NewActionBlock("req", slack.NewButtonBlockElement("approve", "req-0001", slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)))))
		if err != nil {
			t.Fatal(err)
		}
		e.msgTS, e.threadTS = ts, parent
	}
	e.disp = &Dispatcher{Clicks: e.clicks, Refusals: e.refusals, Metrics: NewInteractionMetrics(e.reg), Log: slog.New(slog.DiscardHandler)}
	h := &HTTPHandler{Verifier: NewVerifier(interactionsSecret).WithReplayStore(st), Dispatcher: e.disp}
	mux := http.NewServeMux()
	mux.Handle("POST /slack/interactions", h.Interactions())
	mux.Handle("POST /slack/commands", h.Commands())
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.close)
	return e
}

func (e *interactionsEnv) close() {
	e.srv.Close()
	e.disp.Wait()
	e.st.Close()
}

func (e *interactionsEnv) click(user string) []byte {
	e.t.Helper()
	p, err := e.slack.BlockActions(slackfake.ClickSpec{Channel: "C0INCIDENT", TS: e.msgTS, ActionID: "approve", UserID: user})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// send posts body to path with headers h.
func (e *interactionsEnv) send(path string, h http.Header, body []byte) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func payloadForm(payload []byte) []byte {
	return []byte(url.Values{"payload": {string(payload)}}.Encode())
}

func TestInteractionsHTTP(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name       string
		build      func(e *interactionsEnv) (http.Header, []byte)
		wantStatus int
		wantReason string // refusal reason, "" for accepted
		wantClicks int
	}{
		{"signed by Slack", func(e *interactionsEnv) (http.Header, []byte) {
			b := payloadForm(e.click("U0ALICE"))
			return slackfake.Sign(interactionsSecret, now, b), b
		}, 200, "", 1},
		{"within the window", func(e *interactionsEnv) (http.Header, []byte) {
			b := payloadForm(e.click("U0ALICE"))
			return slackfake.Sign(interactionsSecret, now.Add(-4*time.Minute), b), b
		}, 200, "", 1},
		{"wrong secret", func(e *interactionsEnv) (http.Header, []byte) {
			b := payloadForm(e.click("U0ALICE"))
			return slackfake.Sign("not-the-secret", now, b), b
		}, 401, ReasonBadSignature, 0},
		{"forged user: signed body edited", func(e *interactionsEnv) (http.Header, []byte) {
			b := payloadForm(e.click("U0ALICE"))
			h := slackfake.Sign(interactionsSecret, now, b)
			return h, bytes.ReplaceAll(b, []byte("U0ALICE"), []byte("U0MALLORY"))
		}, 401, ReasonBadSignature, 0},
		{"stale", func(e *interactionsEnv) (http.Header, []byte) {
			b := payloadForm(e.click("U0ALICE"))
			return slackfake.Sign(interactionsSecret, now.Add(-6*time.Minute), b), b
		}, 401, ReasonStale, 0},
		{"from the future", func(e *interactionsEnv) (http.Header, []byte) {
			b := payloadForm(e.click("U0ALICE"))
			return slackfake.Sign(interactionsSecret, now.Add(6*time.Minute), b), b
		}, 401, ReasonStale, 0},
		{"unsigned", func(e *interactionsEnv) (http.Header, []byte) {
			return http.Header{}, payloadForm(e.click("U0ALICE"))
		}, 401, ReasonMissingHeaders, 0},
		{"signed, not a form", func(e *interactionsEnv) (http.Header, []byte) {
			b := e.click("U0ALICE")
			h := slackfake.Sign(interactionsSecret, now, b)
			h.Set("Content-Type", "application/json")
			return h, b
		}, 400, ReasonMalformed, 0},
		{"signed, no payload field", func(e *interactionsEnv) (http.Header, []byte) {
			b := []byte("token=x&team_id=T1")
			return slackfake.Sign(interactionsSecret, now, b), b
		}, 400, ReasonMalformed, 0},
		{"signed, payload not JSON", func(e *interactionsEnv) (http.Header, []byte) {
			b := payloadForm([]byte("{nope"))
			return slackfake.Sign(interactionsSecret, now, b), b
		}, 400, ReasonMalformed, 0},
		{"signed, block_actions without a user", func(e *interactionsEnv) (http.Header, []byte) {
			b := payloadForm([]byte(`{"type":"block_actions","team":{"id":"T1"},"actions":[{"action_id":"approve","value":"x"}]}`))
			return slackfake.Sign(interactionsSecret, now, b), b
		}, 400, ReasonMalformed, 0},
		{"other payload types are acknowledged and ignored", func(e *interactionsEnv) (http.Header, []byte) {
			b := payloadForm([]byte(`{"type":"view_submission","team":{"id":"T1"},"user":{"id":"U1"},"view":{}}`))
			return slackfake.Sign(interactionsSecret, now, b), b
		}, 200, "", 0},
		{"too large", func(e *interactionsEnv) (http.Header, []byte) {
			b := payloadForm(bytes.Repeat([]byte("x"), 2<<20))
			return slackfake.Sign(interactionsSecret, now, b), b
		}, 413, ReasonTooLarge, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newInteractionsEnv(t, "", nil)
			h, body := tc.build(e)
			status, text := e.send("/slack/interactions", h, body)
			if status != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", status, text, tc.wantStatus)
			}
			if n := len(e.clicks.got()); n != tc.wantClicks {
				t.Errorf("%d clicks delivered, want %d", n, tc.wantClicks)
			}
			refused := e.refusals.got()
			if tc.wantReason == "" {
				if len(refused) != 0 {
					t.Errorf("refusals %v", refused)
				}
				return
			}
			if len(refused) != 1 || refused[0] != tc.wantReason || !strings.HasPrefix(text, tc.wantReason+": ") {
				t.Errorf("refusals %v, answer %q, want reason %s", refused, text, tc.wantReason)
			}
			if got := testutil.ToFloat64(e.disp.Metrics.rejected.WithLabelValues(tc.wantReason)); got != 1 {
				t.Errorf("chmedic_slack_interactions_rejected_total{reason=%q} = %v", tc.wantReason, got)
			}
		})
	}
}

func TestInteractionsClickFields(t *testing.T) {
	e := newInteractionsEnv(t, "", nil)
	e.slack.AddUser(slackfake.User{ID: "U0ALICE", Name: "alice"})
	e.clicks.reply = Reply{Ephemeral: "Request recorded: waiting for an approver."}
	b := payloadForm(e.click("U0ALICE"))
	if st, text := e.send("/slack/interactions", slackfake.Sign(interactionsSecret, time.Now(), b), b); st != 200 {
		t.Fatalf("%d %s", st, text)
	}
	got := e.clicks.got()
	if len(got) != 1 {
		t.Fatalf("clicks %+v", got)
	}
	c := got[0]
	want := Click{TeamID: slackfake.DefaultTeamID, UserID: "U0ALICE", UserName: "alice", ChannelID: "C0INCIDENT",
		MessageTS: e.msgTS, ThreadTS: e.threadTS, ActionID: "approve", Value: "req-0001", ResponseURL: c.ResponseURL, TriggerID: c.TriggerID, ReceivedAt: c.ReceivedAt}
	if c != want || c.ResponseURL == "" || c.TriggerID == "" || c.ReceivedAt.IsZero() {
		t.Errorf("click\n%+v, want\n%+v", c, want)
	}
	// The reply reaches the clicking user, privately, in the thread.
	e.disp.Wait()
	eph := e.slack.Ephemerals()
	if len(eph) != 1 || eph[0].User != "U0ALICE" || eph[0].Text != e.clicks.reply.Ephemeral || eph[0].ThreadTS != e.threadTS {
		t.Errorf("ephemerals %+v", eph)
	}
	if v := testutil.ToFloat64(e.disp.Metrics.received.WithLabelValues(TransportHTTP, "block_actions")); v != 1 {
		t.Errorf("received %v", v)
	}
}

// A click from another workspace reaches the handler with that team id
// (team.id wins over user.team_id), for the policy to refuse.
func TestInteractionsOtherTeamIsDelivered(t *testing.T) {
	e := newInteractionsEnv(t, "", nil)
	p, err := e.slack.BlockActions(slackfake.ClickSpec{Channel: "C0INCIDENT", TS: e.msgTS, ActionID: "approve", UserID: "U0EVE", TeamID: "T0OTHER"})
	if err != nil {
		t.Fatal(err)
	}
	b := payloadForm(p)
	if st, _ := e.send("/slack/interactions", slackfake.Sign(interactionsSecret, time.Now(), b), b); st != 200 {
		t.Fatal(st)
	}
	if got := e.clicks.got(); len(got) != 1 || got[0].TeamID != "T0OTHER" || got[0].UserID != "U0EVE" {
		t.Errorf("clicks %+v", got)
	}
}

func TestInteractionsReplay(t *testing.T) {
	e := newInteractionsEnv(t, "", nil)
	b := payloadForm(e.click("U0ALICE"))
	h := slackfake.Sign(interactionsSecret, time.Now(), b)
	if st, _ := e.send("/slack/interactions", h, b); st != 200 {
		t.Fatal(st)
	}
	if st, text := e.send("/slack/interactions", h, b); st != 401 || !strings.HasPrefix(text, "replay") {
		t.Fatalf("replay: %d %s", st, text)
	}
	// A restart (a new store handle, verifier and handler on the same file)
	// still refuses it.
	e.close()
	e2 := newInteractionsEnv(t, e.path, e.slack)
	if st, text := e2.send("/slack/interactions", h, b); st != 401 || !strings.HasPrefix(text, "replay") {
		t.Fatalf("replay after a restart: %d %s", st, text)
	}
	if n := len(e.clicks.got()) + len(e2.clicks.got()); n != 1 {
		t.Errorf("%d clicks delivered, want 1", n)
	}
	if got := e2.refusals.got(); len(got) != 1 || got[0] != ReasonReplay {
		t.Errorf("refusals %v", got)
	}
}

func TestInteractionsFailClosed(t *testing.T) {
	t.Run("no click handler", func(t *testing.T) {
		e := newInteractionsEnv(t, "", nil)
		e.disp.Clicks = nil
		b := payloadForm(e.click("U0ALICE"))
		if st, _ := e.send("/slack/interactions", slackfake.Sign(interactionsSecret, time.Now(), b), b); st != 200 {
			t.Fatal(st)
		}
		e.disp.Wait()
		if eph := e.slack.Ephemerals(); len(eph) != 1 || eph[0].Text != ReplyNotEnabled {
			t.Errorf("ephemerals %+v", eph)
		}
	})
	t.Run("no signing secret", func(t *testing.T) {
		e := newInteractionsEnv(t, "", nil)
		h := &HTTPHandler{Dispatcher: e.disp}
		rec := httptest.NewRecorder()
		b := payloadForm(e.click("U0ALICE"))
		req := httptest.NewRequest(http.MethodPost, "/slack/interactions", bytes.NewReader(b))
		for k, v := range slackfake.Sign(interactionsSecret, time.Now(), b) {
			req.Header[k] = v
		}
		h.Interactions().ServeHTTP(rec, req)
		if rec.Code != 401 || len(e.clicks.got()) != 0 || e.refusals.got()[0] != ReasonNotConfigured {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("handler fails", func(t *testing.T) {
		e := newInteractionsEnv(t, "", nil)
		e.clicks.err = errors.New("store is locked")
		b := payloadForm(e.click("U0ALICE"))
		if st, _ := e.send("/slack/interactions", slackfake.Sign(interactionsSecret, time.Now(), b), b); st != 200 {
			t.Fatal(st)
		}
		e.disp.Wait()
		if eph := e.slack.Ephemerals(); len(eph) != 1 || !strings.Contains(eph[0].Text, "could not record this click") || !strings.Contains(eph[0].Text, "nothing was done") {
			t.Errorf("ephemerals %+v", eph)
		}
	})
	t.Run("handler exceeds its bound", func(t *testing.T) {
		e := newInteractionsEnv(t, "", nil)
		e.clicks.block = true
		e.disp.HandleTimeout = 20 * time.Millisecond
		b := payloadForm(e.click("U0ALICE"))
		if st, _ := e.send("/slack/interactions", slackfake.Sign(interactionsSecret, time.Now(), b), b); st != 200 {
			t.Fatal(st)
		}
		e.disp.Wait()
		if eph := e.slack.Ephemerals(); len(eph) != 1 || !strings.Contains(eph[0].Text, "took too long") {
			t.Errorf("ephemerals %+v", eph)
		}
	})
}

type commandSpy struct {
	mu  sync.Mutex
	got []Command
}

func (r *commandSpy) HandleCommand(_ context.Context, c Command) (Reply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, c)
	return Reply{Ephemeral: "digest: 2 incidents"}, nil
}

func TestSlashCommandHTTP(t *testing.T) {
	e := newInteractionsEnv(t, "", nil)
	body := []byte(url.Values{"token": {"x"}, "team_id": {"T0FAKE0001"}, "channel_id": {"C0INCIDENT"}, "user_id": {"U0ALICE"},
		"user_name": {"alice"}, "command": {"/chmedic"}, "text": {"digest"}, "response_url": {"https://hooks.slack.com/commands/T/1/2"}, "trigger_id": {"1.2.3"}}.Encode())
	st, text := e.send("/slack/commands", slackfake.Sign(interactionsSecret, time.Now(), body), body)
	if st != 200 || text != `{"response_type":"ephemeral","text":"`+ReplyCommandsDisabled+`"}` {
		t.Fatalf("without a handler: %d %s", st, text)
	}
	cmds := &commandSpy{}
	e.disp.Commands = cmds
	st, text = e.send("/slack/commands", slackfake.Sign(interactionsSecret, time.Now().Add(time.Second), body), body)
	if st != 200 || !strings.Contains(text, "digest: 2 incidents") {
		t.Fatalf("%d %s", st, text)
	}
	if len(cmds.got) != 1 || cmds.got[0].Command != "/chmedic" || cmds.got[0].Text != "digest" || cmds.got[0].UserID != "U0ALICE" || cmds.got[0].TeamID != "T0FAKE0001" {
		t.Errorf("commands %+v", cmds.got)
	}
	if st, _ := e.send("/slack/commands", slackfake.Sign("wrong", time.Now(), body), body); st != 401 {
		t.Errorf("badly signed command: %d", st)
	}
	ssl := []byte("ssl_check=1&token=x")
	if st, _ := e.send("/slack/commands", slackfake.Sign(interactionsSecret, time.Now(), ssl), ssl); st != 200 || len(cmds.got) != 1 {
		t.Errorf("ssl_check: %d, %d commands", st, len(cmds.got))
	}
}

func TestResponseURLResponderRefusesPlainHTTP(t *testing.T) {
	err := (&ResponseURLResponder{}).Respond(context.Background(), "http://hooks.example.com/actions/1", Reply{Ephemeral: "x"})
	if err == nil || !strings.Contains(err.Error(), "non-https") {
		t.Errorf("err %v", err)
	}
}

func TestDispatcherSocketPayloads(t *testing.T) {
	e := newInteractionsEnv(t, "", nil)
	if err := e.disp.SocketInteractive(context.Background(), e.click("U0ALICE")); err != nil {
		t.Fatal(err)
	}
	if got := e.clicks.got(); len(got) != 1 || got[0].UserID != "U0ALICE" || got[0].Value != "req-0001" {
		t.Fatalf("clicks %+v", got)
	}
	if err := e.disp.SocketInteractive(context.Background(), []byte(`{"type":"block_actions","user":{"id":"U1"}}`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("malformed: %v", err)
	}
	ack, err := e.disp.SocketSlashCommand(context.Background(), []byte(`{"command":"/chmedic","text":"","user_id":"U1","team_id":"T1"}`))
	if err != nil || ack.(map[string]any)["text"] != ReplyCommandsDisabled {
		t.Errorf("slash command ack %v %v", ack, err)
	}
	if _, err := e.disp.SocketSlashCommand(context.Background(), []byte(`{"text":"x"}`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("command without a name: %v", err)
	}
	if got := e.refusals.got(); len(got) != 2 || got[0] != ReasonMalformed || !strings.HasPrefix(e.refusals.details[0], TransportSocket+": ") {
		t.Errorf("refusals %v %v", got, e.refusals.details)
	}
}

// BenchmarkInteractionsHTTP: one signed click through verification (with
// the replay record in the store), parsing and delivery.
func BenchmarkInteractionsHTTP(b *testing.B) {
	st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	d := &Dispatcher{Clicks: &clickSpy{}, Log: slog.New(slog.DiscardHandler)}
	h := (&HTTPHandler{Verifier: NewVerifier(interactionsSecret).WithReplayStore(st), Dispatcher: d}).Interactions()
	payload := []byte(`{"type":"block_actions","team":{"id":"T1"},"user":{"id":"U1","username":"alice"},"container":{"type":"message","message_ts":"1.000001","channel_id":"C1"},"actions":[{"action_id":"approve","value":"req"}]}`)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// A distinct body each time, so that none is a replay.
		body := append(payloadForm(payload), "&n="+strconv.Itoa(i)...)
		req := httptest.NewRequest(http.MethodPost, "/slack/interactions", bytes.NewReader(body))
		for k, v := range slackfake.Sign(interactionsSecret, time.Now(), body) {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

type brokenReplayStore struct{}

func (brokenReplayStore) MarkSlackRequestSeen(context.Context, string, time.Time, time.Time) (bool, error) {
	return false, errors.New("database is locked")
}

// When the replay record cannot be written, the click is neither delivered
// nor refused as forged: 503, and Slack shows the user a failure.
func TestInteractionsReplayStoreDown(t *testing.T) {
	e := newInteractionsEnv(t, "", nil)
	h := &HTTPHandler{Verifier: NewVerifier(interactionsSecret).WithReplayStore(brokenReplayStore{}), Dispatcher: e.disp}
	b := payloadForm(e.click("U0ALICE"))
	req := httptest.NewRequest(http.MethodPost, "/slack/interactions", bytes.NewReader(b))
	for k, v := range slackfake.Sign(interactionsSecret, time.Now(), b) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.Interactions().ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || len(e.clicks.got()) != 0 || len(e.refusals.got()) != 0 {
		t.Errorf("%d %s; clicks %v refusals %v", rec.Code, rec.Body, e.clicks.got(), e.refusals.got())
	}
}
