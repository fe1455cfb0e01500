package apikey

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/logging"
)

// Everything a key goes through — create, list, use, misuse, revoke, use
// after revocation, a database outage — logs at debug level, and no line
// holds the key or its secret.
func TestLogsNeverHoldAKey(t *testing.T) {
	e := newEnv(t, defaultConfig())
	k := e.create(t, "logged", "read", "admin")
	secret := k.Key[len(k.Key)-secretLen:]
	ctx := context.Background()

	e.do(t, "GET", "/apikeys", nil, nil, bearer(k.Key)...)
	e.do(t, "GET", "/apikeys", nil, nil, bearer(k.Key[:len(k.Key)-1]+"x")...)
	e.do(t, "GET", "/apikeys?key="+k.Key, nil, nil, e.admin...)
	e.do(t, "DELETE", "/apikeys/"+k.Key, nil, nil, e.admin...)
	e.do(t, "DELETE", "/apikeys/"+k.Key, nil, nil, bearer("dsk_not_a_key")...) // refused by the middleware
	e.do(t, "POST", "/apikeys", api.CreateAPIKeyRequest{Name: k.Key, Scopes: []string{"root"}}, nil, e.admin...)
	e.do(t, "DELETE", "/apikeys/"+k.ID, nil, nil, bearer(k.Key)...)
	e.do(t, "GET", "/apikeys", nil, nil, bearer(k.Key)...)

	// PostgreSQL gone: the lookup and the last-used write fail, and say so.
	// Nothing listens on port 1.
	down := NewVerifier(NewStore(open(t, "postgres://postgres@127.0.0.1:1/x?connect_timeout=2")), defaultConfig(), logging.New(e.logs, "debug"))
	if _, err := down.VerifyKey(ctx, k.Key); apperr.CodeOf(err) != apperr.Unavailable {
		t.Fatalf("database down: %v, want unavailable", err)
	} else if strings.Contains(err.Error(), secret) {
		t.Fatalf("the error quotes the key: %v", err)
	}
	// An error answer the middleware would log.
	resp := e.do(t, "GET", "/apikeys", nil, nil, bearer(k.Key)...)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked key: %d", resp.StatusCode)
	}

	logs := e.logs.String()
	if !strings.Contains(logs, "api key created") || !strings.Contains(logs, "api key revoked") || !strings.Contains(logs, k.ID) {
		t.Fatalf("the test did not capture the service's logs:\n%s", logs)
	}
	if strings.Contains(logs, secret) {
		t.Fatalf("a log line holds the key's secret:\n%s", logs)
	}
}
