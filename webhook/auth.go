package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Auth checks the credentials Alertmanager's http_config sends: either an
// "Authorization: Bearer <token>" header (authorization.credentials) or HTTP
// basic auth (basic_auth). A zero Auth accepts every request.
type Auth struct {
	BearerToken string
	Username    string
	Password    string
}

// Enabled reports whether any credential is required.
func (a Auth) Enabled() bool { return a.BearerToken != "" || a.Username != "" }

// Check reports whether r carries the expected credentials. Comparisons are
// constant time over digests, so neither content nor length leaks.
func (a Auth) Check(r *http.Request) bool {
	switch {
	case a.BearerToken != "":
		h := r.Header.Get("Authorization")
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return false
		}
		return equal(strings.TrimSpace(tok), a.BearerToken)
	case a.Username != "":
		u, p, ok := r.BasicAuth()
		if !ok {
			return false
		}
		// Evaluate both to keep the timing independent of which one differs.
		uok := equal(u, a.Username)
		pok := equal(p, a.Password)
		return uok && pok
	}
	return true
}

func equal(a, b string) bool {
	ha := sha256.Sum256([]byte(a))
	hb := sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
