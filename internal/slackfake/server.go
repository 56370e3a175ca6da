package slackfake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// Defaults used when the matching Options field is empty.
const (
	DefaultToken     = "xoxb-test"
	DefaultTeamID    = "T0FAKE0001"
	DefaultTeamName  = "chmedic-test"
	DefaultBotUserID = "U0FAKEBOT1"
	DefaultBotName   = "chmedic"
	DefaultBotID     = "B0FAKEBOT1"
	DefaultAppID     = "A0FAKEAPP1"
)

// maxBody bounds the request bodies the fake reads (Slack's own limits are
// far lower for everything but file uploads).
const maxBody = 64 << 20

// Options configures a Server. The zero value is usable.
type Options struct {
	// Token is the only valid token. Default "xoxb-test". A request with no
	// token answers not_authed, one with another token invalid_auth.
	Token string

	// Channels lists the known conversations (IDs or names; a leading '#'
	// is ignored). Posting to or reading from any other one answers
	// channel_not_found (invalid_channel for files.completeUploadExternal).
	// Empty: every channel exists.
	Channels []string

	// Identity reported by auth.test and put on posted messages.
	TeamID, TeamName, BotUserID, BotName, BotID, AppID string

	// Now is the clock used for message timestamps. Default time.Now.
	// Timestamps stay unique and strictly increasing whatever it returns.
	Now func() time.Time

	// StrictThreads makes a thread_ts that matches no message (or a deleted
	// one) fail with thread_not_found. By default the fake does what Slack
	// does: it posts the message un-threaded (top level) and the response's
	// message carries no thread_ts.
	StrictThreads bool

	// BlockScopedActionIDs requires action_id to be unique only within each
	// block (Slack's documented rule). By default an action_id must be unique
	// within the whole message, which is stricter.
	BlockScopedActionIDs bool

	// AppToken is the only app-level token (xapp-) the fake accepts, for
	// apps.connections.open alone, as Slack does. Default DefaultAppToken.
	AppToken string
	// Scopes, when set, are the bot token's scopes: a method needing another
	// answers missing_scope with needed/provided (see methodScopes). Nil:
	// every scope is granted.
	Scopes []string
	// SocketPingInterval is how often a Socket Mode connection is pinged.
	// Default 1s.
	SocketPingInterval time.Duration
}

// Call is one request the fake received.
type Call struct {
	// Method is the Web API method ("chat.postMessage"), or "upload" for a
	// POST to an upload URL handed out by files.getUploadURLExternal.
	Method     string
	HTTPMethod string
	// ContentType is the request's media type, without parameters.
	ContentType string
	// Params holds the request parameters: query string and form fields, or
	// the fields of a JSON body (strings as they are; numbers, booleans,
	// objects and arrays as their compact JSON text, which is how Slack
	// reads form-encoded JSON arguments such as blocks).
	Params url.Values
	// JSON reports whether the body was a JSON object.
	JSON bool
	// Token is the token presented, and TokenSource where it came from:
	// "header" (Authorization: Bearer), "param" (the token parameter) or "".
	Token       string
	TokenSource string
	// Status is the HTTP status answered and Response the body.
	Status   int
	Response []byte
	Time     time.Time
}

// Failure describes an injected failure, see FailNext.
type Failure struct {
	// Status is the HTTP status to answer. 429 answers Slack's rate-limit
	// response: a Retry-After header in whole seconds (RetryAfter rounded
	// up, at least 1) and {"ok":false,"error":"ratelimited"}. Any other
	// non-200 status answers an HTML error page, as Slack's edge does.
	// 0 means 200.
	Status int
	// RetryAfter is the Retry-After sent with a 429.
	RetryAfter time.Duration
	// Error, with Status 0 or 200, answers {"ok":false,"error":Error}
	// ("ratelimited", "internal_error", "fatal_error", ...). With Status 429
	// it replaces "ratelimited" in the body.
	Error string
	// Delay holds the answer back this long (or until the client gives up),
	// for exercising client timeouts. With no Status and no Error the call
	// then proceeds normally.
	Delay time.Duration
}

// Server is a fake Slack Web API. Create it with New.
type Server struct {
	srv       *httptest.Server
	opts      Options
	closeOnce sync.Once

	mu         sync.Mutex
	calls      []Call
	channels   map[string]bool // nil: any channel exists
	messages   map[string][]*message
	ephemerals []Message
	files      map[string]*file
	shared     []string // file IDs in completion order
	users      map[string]User
	groups     map[string]*userGroup
	failures   map[string][]Failure
	always     map[string]Failure // FailAlways
	revoked    string             // RevokeToken: the error every call answers
	outage     bool
	lastMicro  int64
	seq        int

	// interactivity and Socket Mode (interactive.go, socket.go)
	hooks         map[string]*responseHook
	responsePosts []ResponsePost
	tickets       map[string]bool
	sockets       []*socketConn
	socketSeq     int
	envelopes     map[string]time.Time // sent, not yet acknowledged
	acks          []Ack

	incoming map[string]string // incoming-webhook path → channel (incoming.go)
}

type userGroup struct {
	id, handle string
	members    []string
	disabled   bool
}

// New starts a fake Slack server. It is closed when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s := Start(opts)
	t.Cleanup(s.Close)
	return s
}

// start builds and starts a Server (see Start, in standalone.go).
func start(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	setDefault(&opts.TeamID, DefaultTeamID)
	setDefault(&opts.TeamName, DefaultTeamName)
	setDefault(&opts.BotUserID, DefaultBotUserID)
	setDefault(&opts.BotName, DefaultBotName)
	setDefault(&opts.BotID, DefaultBotID)
	setDefault(&opts.AppID, DefaultAppID)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	setDefault(&opts.AppToken, DefaultAppToken)
	if opts.SocketPingInterval <= 0 {
		opts.SocketPingInterval = time.Second
	}
	s := &Server{
		opts:      opts,
		messages:  map[string][]*message{},
		files:     map[string]*file{},
		users:     map[string]User{},
		groups:    map[string]*userGroup{},
		failures:  map[string][]Failure{},
		hooks:     map[string]*responseHook{},
		tickets:   map[string]bool{},
		envelopes: map[string]time.Time{},
	}
	if len(opts.Channels) > 0 {
		s.channels = map[string]bool{}
		for _, c := range opts.Channels {
			s.channels[normChannel(c)] = true
		}
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

func setDefault(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

// Close shuts the server down, waiting for requests in flight. New arranges
// for it to run when the test ends; calling it earlier is allowed.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.DropSocketConnections()
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// URL is the Web API base URL, ending in "/api/", for slack.OptionAPIURL.
func (s *Server) URL() string { return s.srv.URL + "/api/" }

// Token is the only token the fake accepts.
func (s *Server) Token() string { return s.opts.Token }

// Client returns a slack-go client using the fake's URL and token. Options
// given are applied after those.
func (s *Server) Client(opts ...slack.Option) *slack.Client {
	return slack.New(s.opts.Token, append([]slack.Option{slack.OptionAPIURL(s.URL())}, opts...)...)
}

// Calls returns every request received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		c.Params = cloneValues(c.Params)
		c.Response = bytes.Clone(c.Response)
		out[i] = c
	}
	return out
}

// CallCount is the number of requests received for method, failed ones
// included.
func (s *Server) CallCount(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Method == method {
			n++
		}
	}
	return n
}

// FailNext makes the next n calls of method fail as f describes. Calls to
// FailNext queue up: FailNext(m, 1, a) then FailNext(m, 1, b) fails the next
// call with a and the one after with b. method "upload" targets the upload
// URL.
func (s *Server) FailNext(method string, n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures[method] = append(s.failures[method], f)
	}
}

// SetOutage turns a full outage on or off: while on, every request answers
// 503 and changes nothing.
func (s *Server) SetOutage(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = on
}

// WaitFor polls cond until it holds, failing the test if it does not within
// timeout. Call it from the test's goroutine.
func (s *Server) WaitFor(t testing.TB, cond func() bool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("slackfake: condition not met within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// apiError is an {"ok":false} answer.
type apiError struct {
	code     string
	messages []string // detail, for response_metadata.messages / errors
}

func errf(code string, messages ...string) *apiError {
	return &apiError{code: code, messages: messages}
}

// request is a parsed Web API request.
type request struct {
	r    *http.Request
	p    url.Values
	json bool
}

type handler func(*Server, *request) (map[string]any, *apiError)

var handlers = map[string]handler{
	"auth.test":                    (*Server).authTest,
	"chat.postMessage":             (*Server).chatPostMessage,
	"chat.update":                  (*Server).chatUpdate,
	"chat.delete":                  (*Server).chatDelete,
	"chat.postEphemeral":           (*Server).chatPostEphemeral,
	"chat.getPermalink":            (*Server).chatGetPermalink,
	"files.getUploadURLExternal":   (*Server).filesGetUploadURLExternal,
	"files.completeUploadExternal": (*Server).filesCompleteUploadExternal,
	"conversations.history":        (*Server).conversationsHistory,
	"conversations.list":           (*Server).conversationsList,
	"conversations.replies":        (*Server).conversationsReplies,
	"users.info":                   (*Server).usersInfo,
	"usergroups.users.list":        (*Server).usergroupsUsersList,
	"apps.connections.open":        (*Server).appsConnectionsOpen,
}

// appTokenMethods take the app-level token, and only it; every other method
// refuses it (not_allowed_token_type), as Slack does.
var appTokenMethods = map[string]bool{"apps.connections.open": true}

// methodScopes are the bot scopes a method needs when Options.Scopes is set.
var methodScopes = map[string]string{
	"chat.postMessage":             "chat:write",
	"chat.update":                  "chat:write",
	"chat.delete":                  "chat:write",
	"chat.postEphemeral":           "chat:write",
	"files.getUploadURLExternal":   "files:write",
	"files.completeUploadExternal": "files:write",
	"users.info":                   "users:read",
	"usergroups.users.list":        "usergroups:read",
}

// response is what the fake answers, before it is written and recorded.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/"):
		s.serveAPI(w, r)
	case strings.HasPrefix(r.URL.Path, uploadPath):
		s.serveUpload(w, r)
	case strings.HasPrefix(r.URL.Path, responsePath):
		s.serveResponseURL(w, r)
	case r.URL.Path == socketPath:
		s.serveSocket(w, r)
	case strings.HasPrefix(r.URL.Path, incomingPath):
		s.serveIncoming(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	call := Call{Method: method, HTTPMethod: r.Method, Time: time.Now()}
	call.ContentType, _, _ = mime.ParseMediaType(r.Header.Get("Content-Type"))

	params, isJSON, perr := readParams(r)
	call.Params, call.JSON = params, isJSON
	call.Token, call.TokenSource = requestToken(r, params, isJSON)

	resp := s.intercept(r.Context(), method)
	if resp == nil {
		resp = s.dispatch(method, call, &request{r: r, p: params, json: isJSON}, perr)
	}
	s.finish(w, call, resp)
}

// intercept applies an outage or an injected failure, if any.
func (s *Server) intercept(ctx context.Context, method string) *response {
	s.mu.Lock()
	if s.outage {
		s.mu.Unlock()
		return htmlError(http.StatusServiceUnavailable)
	}
	var f *Failure
	if a, ok := s.always[method]; ok {
		f = &a
	} else if q := s.failures[method]; len(q) > 0 {
		f = &q[0]
		s.failures[method] = q[1:]
	}
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	switch {
	case f.Status == http.StatusTooManyRequests:
		code := cmp(f.Error, "ratelimited")
		secs := max(int64((f.RetryAfter+time.Second-1)/time.Second), 1)
		resp := jsonResponse(http.StatusOK, map[string]any{"ok": false, "error": code})
		resp.status = http.StatusTooManyRequests
		resp.header.Set("Retry-After", strconv.FormatInt(secs, 10))
		return resp
	case f.Status != 0 && f.Status != http.StatusOK:
		return htmlError(f.Status)
	case f.Error != "":
		return jsonResponse(http.StatusOK, map[string]any{"ok": false, "error": f.Error})
	}
	return nil // a pure delay
}

func (s *Server) dispatch(method string, call Call, req *request, perr *apiError) *response {
	h, ok := handlers[method]
	if !ok {
		return jsonResponse(http.StatusOK, map[string]any{"ok": false, "error": "unknown_method", "req_method": method})
	}
	if perr != nil {
		return errorResponse(perr)
	}
	want, other := s.opts.Token, s.opts.AppToken
	if appTokenMethods[method] {
		want, other = other, want
	}
	switch {
	case call.Token == "":
		return errorResponse(errf("not_authed"))
	case call.Token == other:
		return errorResponse(errf("not_allowed_token_type"))
	case call.Token != want:
		return errorResponse(errf("invalid_auth"))
	}
	s.mu.Lock()
	revoked := s.revoked
	s.mu.Unlock()
	if revoked != "" {
		return errorResponse(errf(revoked))
	}
	if need := methodScopes[method]; need != "" && s.opts.Scopes != nil && !slices.Contains(s.opts.Scopes, need) {
		return jsonResponse(http.StatusOK, map[string]any{"ok": false, "error": "missing_scope", "needed": need, "provided": strings.Join(s.opts.Scopes, ",")})
	}
	data, aerr := h(s, req)
	if aerr != nil {
		return errorResponse(aerr)
	}
	body := map[string]any{"ok": true}
	maps.Copy(body, data)
	if req.json && !hasCharset(req.r) {
		// Slack warns about JSON bodies whose Content-Type names no charset.
		body["warning"] = "missing_charset"
		body["response_metadata"] = map[string]any{"warnings": []string{"missing_charset"}}
	}
	return jsonResponse(http.StatusOK, body)
}

func (s *Server) finish(w http.ResponseWriter, call Call, resp *response) {
	call.Status, call.Response = resp.status, resp.body
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	maps.Copy(w.Header(), resp.header)
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func jsonResponse(status int, body map[string]any) *response {
	b, err := json.Marshal(body)
	if err != nil {
		panic(fmt.Sprintf("slackfake: encoding response: %v", err))
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	return &response{status: status, header: h, body: b}
}

func errorResponse(e *apiError) *response {
	body := map[string]any{"ok": false, "error": e.code}
	if len(e.messages) > 0 {
		body["errors"] = e.messages
		msgs := make([]string, len(e.messages))
		for i, m := range e.messages {
			msgs[i] = "[ERROR] " + m
		}
		body["response_metadata"] = map[string]any{"messages": msgs}
	}
	return jsonResponse(http.StatusOK, body)
}

func htmlError(status int) *response {
	h := http.Header{}
	h.Set("Content-Type", "text/html; charset=utf-8")
	text := http.StatusText(status)
	body := fmt.Sprintf("<html><head><title>%d %s</title></head><body><h1>%d %s</h1></body></html>\n", status, text, status, text)
	return &response{status: status, header: h, body: []byte(body)}
}

// readParams reads a request's parameters as Slack does.
func readParams(r *http.Request) (url.Values, bool, *apiError) {
	params := cloneValues(r.URL.Query())
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return params, false, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return params, false, errf("request_timeout")
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if len(body) == 0 {
			return params, false, nil
		}
		return params, false, errf("missing_post_type")
	}
	mediaType, mparams, err := mime.ParseMediaType(ct)
	if err != nil {
		return params, false, errf("invalid_post_type")
	}
	switch mediaType {
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return params, false, errf("invalid_form_data")
		}
		mergeValues(params, form)
		return params, false, nil
	case "multipart/form-data":
		form, err := readMultipartForm(body, mparams["boundary"])
		if err != nil {
			return params, false, errf("invalid_form_data")
		}
		mergeValues(params, form)
		return params, false, nil
	case "application/json":
		if len(bytes.TrimSpace(body)) == 0 {
			// An empty JSON body is no arguments (slack-go sends one for
			// apps.connections.open, and Slack accepts it).
			return params, true, nil
		}
		var obj map[string]json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&obj); err != nil || obj == nil {
			var anyv any
			if json.Unmarshal(body, &anyv) == nil {
				return params, true, errf("json_not_object")
			}
			return params, true, errf("invalid_json")
		}
		for k, raw := range obj {
			v, ok := flattenJSON(raw)
			if ok {
				params.Set(k, v)
			}
		}
		return params, true, nil
	default:
		return params, false, errf("invalid_post_type")
	}
}

// flattenJSON turns a JSON value into the string Slack would read for it as
// a form field: strings as they are, anything else as compact JSON text.
func flattenJSON(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, true
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw), true
	}
	return buf.String(), true
}

func requestToken(r *http.Request, params url.Values, isJSON bool) (string, string) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		if tok, ok := strings.CutPrefix(auth, "Bearer "); ok && strings.TrimSpace(tok) != "" {
			return strings.TrimSpace(tok), "header"
		}
	}
	if isJSON {
		// Slack ignores a token inside a JSON body; only the query string
		// counts besides the header.
		if tok := r.URL.Query().Get("token"); tok != "" {
			return tok, "param"
		}
		return "", ""
	}
	if tok := params.Get("token"); tok != "" {
		return tok, "param"
	}
	return "", ""
}

func hasCharset(r *http.Request) bool {
	_, p, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && p["charset"] != ""
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func mergeValues(dst, src url.Values) {
	for k, vs := range src {
		dst[k] = append(dst[k], vs...)
	}
}

func cmp(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func normChannel(c string) string { return strings.TrimPrefix(strings.TrimSpace(c), "#") }

// channelExistsLocked reports whether channel is known. s.mu must be held.
func (s *Server) channelExistsLocked(channel string) bool {
	return channel != "" && (s.channels == nil || s.channels[channel])
}

// nextTSLocked returns a new message timestamp in Slack's
// "seconds.microseconds" form, strictly greater than every earlier one.
// s.mu must be held.
func (s *Server) nextTSLocked() string {
	now := s.opts.Now().UnixMicro()
	if now <= s.lastMicro {
		now = s.lastMicro + 1
	}
	s.lastMicro = now
	return formatTS(now)
}

func formatTS(micro int64) string {
	return fmt.Sprintf("%d.%06d", micro/1_000_000, micro%1_000_000)
}

// parseTS parses a Slack timestamp ("1700000000.000100", "1700000000",
// "1700000000.5") into microseconds.
func parseTS(ts string) (int64, bool) {
	sec, frac, _ := strings.Cut(strings.TrimSpace(ts), ".")
	if sec == "" || len(frac) > 6 {
		return 0, false
	}
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var f int64
	if frac != "" {
		f, err = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
		if err != nil || f < 0 {
			return 0, false
		}
	}
	return n*1_000_000 + f, true
}

func (s *Server) newIDLocked(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%09d", prefix, s.seq)
}
