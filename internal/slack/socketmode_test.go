package slack

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/internal/slackfake"
)

type socketSinkSpy struct {
	mu       sync.Mutex
	payloads []json.RawMessage
	commands []json.RawMessage
}

func (r *socketSinkSpy) SocketInteractive(_ context.Context, p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.payloads = append(r.payloads, append(json.RawMessage(nil), p...))
	return nil
}

func (r *socketSinkSpy) SocketSlashCommand(_ context.Context, p []byte) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commands = append(r.commands, append(json.RawMessage(nil), p...))
	return map[string]any{"response_type": "ephemeral", "text": "digest sent"}, nil
}

func (r *socketSinkSpy) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.payloads), len(r.commands)
}

func startSocketMode(t *testing.T, fake *slackfake.Server, sink SocketSink, appToken string) (*SocketMode, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	sm := NewSocketMode(sink, SocketModeOptions{
		AppToken: appToken, BotToken: fake.Token(), APIURL: fake.URL(),
		PingInterval: 2 * time.Second, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		Log: slog.New(slog.DiscardHandler), Registerer: reg,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sm.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return sm, reg
}

func TestSocketModeDeliversAndAcks(t *testing.T) {
	fake := slackfake.New(t, slackfake.Options{SocketPingInterval: 100 * time.Millisecond})
	_, ts, err := fake.Client().PostMessage("C0INCIDENT", slack.MsgOptionBlocks(
		slack.NewActionBlock("req", slack.NewButtonBlockElement("approve", "req-0001", slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)))))
	if err != nil {
		t.Fatal(err)
	}
	sink := &socketSinkSpy{}
	sm, _ := startSocketMode(t, fake, sink, slackfake.DefaultAppToken)
	fake.WaitFor(t, func() bool { return fake.SocketConnections() == 1 }, 10*time.Second)

	click := slackfake.ClickSpec{Channel: "C0INCIDENT", TS: ts, ActionID: "approve", UserID: "U0ALICE"}
	id, err := fake.SendClick(click)
	if err != nil {
		t.Fatal(err)
	}
	fake.WaitFor(t, func() bool { _, ok := fake.AckFor(id); return ok }, 10*time.Second)
	if a, _ := fake.AckFor(id); !a.Known || a.Payload != nil {
		t.Errorf("ack %+v", a)
	}
	sink.mu.Lock()
	var cb slack.InteractionCallback
	if err := cb.UnmarshalJSON(sink.payloads[0]); err != nil || cb.User.ID != "U0ALICE" || cb.ActionCallback.BlockActions[0].Value != "req-0001" {
		t.Errorf("delivered %s (%v)", sink.payloads[0], err)
	}
	sink.mu.Unlock()

	// A slash command: its reply is the ack's payload.
	id, err = fake.SendSlashCommand(map[string]string{"command": "/chmedic", "text": "digest", "user_id": "U0ALICE", "channel_id": "C0INCIDENT"})
	if err != nil {
		t.Fatal(err)
	}
	fake.WaitFor(t, func() bool { _, ok := fake.AckFor(id); return ok }, 10*time.Second)
	if a, _ := fake.AckFor(id); string(a.Payload) != `{"response_type":"ephemeral","text":"digest sent"}` {
		t.Errorf("slash command ack %+v (%s)", a, a.Payload)
	}
	// Other envelopes are acknowledged and ignored.
	id, err = fake.SendEnvelope("events_api", map[string]any{"type": "event_callback", "event": map[string]any{"type": "app_mention"}})
	if err != nil {
		t.Fatal(err)
	}
	fake.WaitFor(t, func() bool { _, ok := fake.AckFor(id); return ok }, 10*time.Second)
	if n, c := sink.counts(); n != 1 || c != 1 {
		t.Errorf("delivered %d clicks, %d commands", n, c)
	}
	if v := testutil.ToFloat64(sm.connected); v != 1 {
		t.Errorf("connected gauge %v", v)
	}
}

func TestSocketModeReconnects(t *testing.T) {
	fake := slackfake.New(t, slackfake.Options{SocketPingInterval: 100 * time.Millisecond})
	_, ts, err := fake.Client().PostMessage("C0INCIDENT", slack.MsgOptionBlocks(
		slack.NewActionBlock("req", slack.NewButtonBlockElement("approve", "req-0001", slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)))))
	if err != nil {
		t.Fatal(err)
	}
	sink := &socketSinkSpy{}
	sm, _ := startSocketMode(t, fake, sink, slackfake.DefaultAppToken)
	fake.WaitFor(t, func() bool { return fake.SocketConnections() == 1 }, 10*time.Second)

	// Slack asks for a reconnect (it does every few hours).
	if err := fake.SendDisconnect("refresh_requested", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	fake.WaitFor(t, func() bool { return fake.SocketConnects() >= 2 && fake.SocketConnections() >= 1 }, 10*time.Second)
	id, err := fake.SendClick(slackfake.ClickSpec{Channel: "C0INCIDENT", TS: ts, ActionID: "approve", UserID: "U0ALICE"})
	if err != nil {
		t.Fatal(err)
	}
	fake.WaitFor(t, func() bool { a, ok := fake.AckFor(id); return ok && a.Known }, 10*time.Second)

	// The connection dies without a word: the client opens another.
	before := fake.SocketConnects()
	fake.DropSocketConnections()
	fake.WaitFor(t, func() bool { return fake.SocketConnects() > before && fake.SocketConnections() == 1 }, 20*time.Second)
	id, err = fake.SendClick(slackfake.ClickSpec{Channel: "C0INCIDENT", TS: ts, ActionID: "approve", UserID: "U0BOB"})
	if err != nil {
		t.Fatal(err)
	}
	fake.WaitFor(t, func() bool { a, ok := fake.AckFor(id); return ok && a.Known }, 10*time.Second)
	if n, _ := sink.counts(); n != 2 {
		t.Errorf("%d clicks delivered, want 2", n)
	}
	if v := testutil.ToFloat64(sm.connects); v < 3 {
		t.Errorf("connects counter %v, want >= 3", v)
	}
}

func TestSocketModeBadTokenRetries(t *testing.T) {
	fake := slackfake.New(t, slackfake.Options{})
	sm, _ := startSocketMode(t, fake, &socketSinkSpy{}, "xapp-1-wrong")
	fake.WaitFor(t, func() bool { return fake.CallCount("apps.connections.open") >= 3 }, 10*time.Second)
	if fake.SocketConnects() != 0 || testutil.ToFloat64(sm.connected) != 0 {
		t.Errorf("connected with a wrong token")
	}
}
