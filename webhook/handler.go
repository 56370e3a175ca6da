package webhook

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/chmedic/chmedic/internal/store"
)

// Acceptor durably stores a notification, collapsing duplicates.
type Acceptor interface {
	Accept(ctx context.Context, n store.Notification, window time.Duration) (id int64, duplicate bool, err error)
}

// Enqueuer hands accepted notifications to the workers. TryReserve takes a
// queue slot without blocking; the slot is then either used by Push or
// returned by Release. Push takes the group key so that one group's
// notifications are processed one at a time.
type Enqueuer interface {
	TryReserve() bool
	Release()
	Push(id int64, groupKey string)
}

// Handler is the POST /webhook endpoint.
type Handler struct {
	Auth         Auth
	MaxBodyBytes int64
	DedupWindow  time.Duration
	Store        Acceptor
	Queue        Enqueuer
	Metrics      *Metrics
	Log          *slog.Logger
	Now          func() time.Time
}

type response struct {
	Status string `json:"status"`
	ID     int64  `json:"id,omitempty"`
	Error  string `json:"error,omitempty"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, r, reject(http.StatusMethodNotAllowed, "method", "method %s not allowed: use POST", r.Method))
		return
	}
	if !h.Auth.Check(r) {
		if h.Auth.Username != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="chmedic"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="chmedic"`)
		}
		h.fail(w, r, reject(http.StatusUnauthorized, "unauthorized", "missing or wrong credentials"))
		return
	}
	limit := h.MaxBodyBytes
	if limit <= 0 {
		limit = 4 << 20
	}
	if r.ContentLength > limit {
		h.fail(w, r, reject(http.StatusRequestEntityTooLarge, "too_large", "payload of %d bytes is larger than %d bytes", r.ContentLength, limit))
		return
	}
	body, err := ReadBody(http.MaxBytesReader(w, r.Body, limit), limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	msg, err := Summarize(body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Reserve a queue slot before persisting: a notification stored while the
	// queue is full would wait for the next restart. Alertmanager retries 503s.
	if !h.Queue.TryReserve() {
		w.Header().Set("Retry-After", "5")
		h.fail(w, r, reject(http.StatusServiceUnavailable, "queue_full", "queue full: retry later"))
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	id, dup, err := h.Store.Accept(r.Context(), store.Notification{
		ReceivedAt: now(),
		GroupKey:   msg.GroupKey,
		Status:     msg.Status,
		Receiver:   msg.Receiver,
		AlertCount: msg.Alerts,
		DedupKey:   msg.DedupKey,
		Payload:    body,
	}, h.DedupWindow)
	if err != nil {
		h.Queue.Release()
		h.Log.Error("webhook: storing notification failed", "group_key", msg.GroupKey, "err", err)
		h.fail(w, r, reject(http.StatusInternalServerError, "store_error", "could not store the notification: retry later"))
		return
	}
	if dup {
		h.Queue.Release()
		h.Metrics.Received.WithLabelValues("duplicate").Inc()
		h.Log.Debug("webhook: duplicate notification collapsed", "id", id, "group_key", msg.GroupKey, "status", msg.Status)
		h.writeJSON(w, http.StatusOK, response{Status: "duplicate", ID: id})
		return
	}
	h.Queue.Push(id, msg.GroupKey)
	h.Metrics.Received.WithLabelValues("accepted").Inc()
	h.Log.Info("webhook: notification accepted", "id", id, "group_key", msg.GroupKey, "status", msg.Status,
		"alerts", msg.Alerts, "receiver", msg.Receiver)
	h.writeJSON(w, http.StatusOK, response{Status: "accepted", ID: id})
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	re, ok := err.(*RequestError)
	if !ok {
		re = reject(http.StatusBadRequest, "bad_json", "%v", err)
	}
	h.Metrics.Rejected.WithLabelValues(re.Kind).Inc()
	h.Log.Warn("webhook: request rejected", "status", re.Status, "reason", re.Reason,
		"remote_addr", r.RemoteAddr, "user_agent", r.UserAgent())
	h.writeJSON(w, re.Status, response{Status: "rejected", Error: re.Reason})
}

func (h *Handler) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil && h.Log != nil {
		// The client went away; what was accepted stays accepted.
		h.Log.Debug("webhook: writing the answer failed", "status", status, "err", err)
	}
}
