package slackfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// DefaultAppToken is the app-level token (connections:write) the fake
// accepts for apps.connections.open when Options.AppToken is empty.
const DefaultAppToken = "xapp-1-A0FAKEAPP1-test"

// socketPath is where the Socket Mode websocket is served.
const socketPath = "/ws"

// Ack is a Socket Mode acknowledgement the app sent over the websocket.
type Ack struct {
	EnvelopeID string
	// Payload is the ack's payload (a slash command's reply), nil if none.
	Payload json.RawMessage
	// Known reports whether the envelope id is one the fake sent (and not
	// acknowledged before).
	Known bool
	// Delay is the time from sending the envelope to the ack; Slack
	// expects it within 3 s.
	Delay time.Duration
	At    time.Time
}

type socketConn struct {
	id   int
	conn *websocket.Conn
	wmu  sync.Mutex // serialises data frames
	done chan struct{}
}

func (c *socketConn) writeJSON(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.conn.WriteJSON(v)
}

// appsConnectionsOpen answers apps.connections.open: a single-use websocket
// URL (Slack's carries a ticket). Only the app-level token is accepted; the
// dispatcher checked it.
func (s *Server) appsConnectionsOpen(*request) (map[string]any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ticket := s.newIDLocked("tk")
	s.tickets[ticket] = true
	u := "ws" + s.srv.URL[len("http"):] + socketPath + "?ticket=" + ticket + "&app_id=" + s.opts.AppID
	return map[string]any{"url": u}, nil
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveSocket serves one Socket Mode connection: hello first, websocket
// pings every Options.SocketPingInterval, the envelopes tests send, and the
// acks the app writes back, recorded.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := s.tickets[ticket]
	delete(s.tickets, ticket) // single use
	s.mu.Unlock()
	if !valid {
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.socketSeq++
	c := &socketConn{id: s.socketSeq, conn: conn, done: make(chan struct{})}
	s.sockets = append(s.sockets, c)
	n := len(s.sockets)
	s.mu.Unlock()
	defer s.dropSocket(c)

	hello := map[string]any{
		"type":            "hello",
		"num_connections": n,
		"debug_info":      map[string]any{"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": s.opts.AppID},
	}
	if err := c.writeJSON(hello); err != nil {
		return
	}
	go func() {
		t := time.NewTicker(s.opts.SocketPingInterval)
		defer t.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-t.C:
				if conn.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)) != nil {
					return
				}
			}
		}
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var a struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(data, &a) != nil || a.EnvelopeID == "" {
			continue // Slack ignores what is not an ack
		}
		s.mu.Lock()
		sent, known := s.envelopes[a.EnvelopeID]
		delete(s.envelopes, a.EnvelopeID)
		ack := Ack{EnvelopeID: a.EnvelopeID, Known: known, At: time.Now()}
		if len(a.Payload) > 0 && string(a.Payload) != "null" {
			ack.Payload = a.Payload
		}
		if known {
			ack.Delay = ack.At.Sub(sent)
		}
		s.acks = append(s.acks, ack)
		s.mu.Unlock()
	}
}

func (s *Server) dropSocket(c *socketConn) {
	s.mu.Lock()
	for i, x := range s.sockets {
		if x == c {
			s.sockets = append(s.sockets[:i], s.sockets[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	c.conn.Close()
}

// SocketConnections is the number of Socket Mode connections open now.
func (s *Server) SocketConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sockets)
}

// SocketConnects is the number of Socket Mode connections opened so far.
func (s *Server) SocketConnects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.socketSeq
}

// latestSocket is the connection envelopes go to: the newest open one.
func (s *Server) latestSocket() (*socketConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sockets) == 0 {
		return nil, fmt.Errorf("slackfake: no Socket Mode connection open")
	}
	return s.sockets[len(s.sockets)-1], nil
}

// SendEnvelope sends a Socket Mode envelope of type typ ("interactive",
// "slash_commands", "events_api") with payload to the newest connection and
// returns its envelope id.
func (s *Server) SendEnvelope(typ string, payload any) (string, error) {
	c, err := s.latestSocket()
	if err != nil {
		return "", err
	}
	raw, ok := payload.(json.RawMessage)
	if !ok {
		if b, isBytes := payload.([]byte); isBytes {
			raw = b
		} else if raw, err = json.Marshal(payload); err != nil {
			return "", err
		}
	}
	s.mu.Lock()
	id := fmt.Sprintf("%08x-fake-%04d", time.Now().UnixNano()&0xffffffff, s.seq)
	s.seq++
	s.envelopes[id] = time.Now()
	s.mu.Unlock()
	env := map[string]any{
		"envelope_id":              id,
		"payload":                  raw,
		"type":                     typ,
		"accepts_response_payload": typ == "slash_commands",
		"retry_attempt":            0,
		"retry_reason":             "",
	}
	if err := c.writeJSON(env); err != nil {
		return "", fmt.Errorf("slackfake: sending the envelope: %w", err)
	}
	return id, nil
}

// SendClick sends the click c (see BlockActions) as an interactive
// envelope.
func (s *Server) SendClick(c ClickSpec) (string, error) {
	payload, err := s.BlockActions(c)
	if err != nil {
		return "", err
	}
	return s.SendEnvelope("interactive", json.RawMessage(payload))
}

// SendSlashCommand sends a slash_commands envelope whose payload holds
// fields (command, text, user_id, ...; team_id, api_app_id and a
// response_url are filled in when missing).
func (s *Server) SendSlashCommand(fields map[string]string) (string, error) {
	p := map[string]string{
		"token": "fake-verification-token", "team_id": s.opts.TeamID, "team_domain": s.opts.TeamName,
		"api_app_id": s.opts.AppID, "is_enterprise_install": "false",
		"response_url": s.srv.URL + "/commands/" + s.opts.TeamID + "/fake", "trigger_id": "1.2.fake",
	}
	for k, v := range fields {
		p[k] = v
	}
	return s.SendEnvelope("slash_commands", p)
}

// SendDisconnect sends Slack's disconnect message (reason
// "refresh_requested", "warning", "link_disabled") to the newest
// connection and closes it after grace, as Slack does; the app is expected
// to open a new connection.
func (s *Server) SendDisconnect(reason string, grace time.Duration) error {
	c, err := s.latestSocket()
	if err != nil {
		return err
	}
	if err := c.writeJSON(map[string]any{"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": "applink-fake"}}); err != nil {
		return err
	}
	time.AfterFunc(grace, func() { s.dropSocket(c) })
	return nil
}

// Acks returns the acknowledgements received, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acks...)
}

// AckFor returns the ack of envelope id, if it came.
func (s *Server) AckFor(id string) (Ack, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.acks {
		if a.EnvelopeID == id {
			return a, true
		}
	}
	return Ack{}, false
}

// DropSocketConnections closes every Socket Mode connection abruptly, with
// no disconnect message (a network failure).
func (s *Server) DropSocketConnections() {
	s.mu.Lock()
	socks := append([]*socketConn(nil), s.sockets...)
	s.mu.Unlock()
	for _, c := range socks {
		s.dropSocket(c)
	}
}
