package slackfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Sign returns the headers Slack adds to a request it sends to an app:
// X-Slack-Request-Timestamp (ts in Unix seconds) and X-Slack-Signature,
// "v0=" + hex(HMAC-SHA256(signingSecret, "v0:" + timestamp + ":" + body)).
func Sign(signingSecret string, ts time.Time, body []byte) http.Header {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(signingSecret))
	mac.Write([]byte("v0:" + stamp + ":"))
	mac.Write(body)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", stamp)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return h
}

// InteractionRequest builds the POST Slack sends to an app's interactivity
// URL: an application/x-www-form-urlencoded body payload=<JSON>, signed now
// with signingSecret. payload is marshalled to JSON unless it is already a
// []byte, json.RawMessage or string.
func InteractionRequest(target, signingSecret string, payload any) (*http.Request, error) {
	var js []byte
	switch p := payload.(type) {
	case []byte:
		js = p
	case json.RawMessage:
		js = p
	case string:
		js = []byte(p)
	default:
		var err error
		if js, err = json.Marshal(payload); err != nil {
			return nil, err
		}
	}
	body := []byte(url.Values{"payload": {string(js)}}.Encode())
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range Sign(signingSecret, time.Now(), body) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	return req, nil
}
