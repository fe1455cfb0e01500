package realtime

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/docstream/docstream/internal/apikey"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/postgres"
	"github.com/docstream/docstream/internal/testenv"
)

// An API key revoked while its WebSocket is open stops delivery: the
// connection verifies its key again every KeyRecheck and is closed with
// 1008 "credential revoked" once the key verifier (with its own cache, as
// on an instance other than the one that revoked it) sees the revocation.
// A person's connection to the same document keeps receiving. (Before,
// the revoked key's connection stayed open until it ended by itself.)
func TestAnAPIKeyRevokedWhileWatchingClosesWith1008(t *testing.T) {
	ctx := context.Background()
	pool, err := postgres.Open(ctx, testenv.Database(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	kcfg := apikey.DefaultConfig()
	kcfg.CacheTTL = time.Second
	kcfg.AdminOpen = true
	store := apikey.NewStore(pool)
	// Two verifiers over one table: this realtime instance's, and the
	// instance's that revokes (which forgets the key at once; this one
	// only when its cache entry ages out).
	here, there := apikey.NewVerifier(store, kcfg, logging.Discard()), apikey.NewVerifier(store, kcfg, logging.Discard())
	keys := apikey.NewService(store, there, kcfg, logging.Discard())
	k, raw, err := keys.Create(ctx, apikey.CreateInput{Name: "watcher", Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	doc := uuid.NewString()
	s := startServer(t, serverOpts{keys: here, hub: Options{KeyRecheck: 100 * time.Millisecond},
		cfg: ServerConfig{Access: fakeAccess{docs: map[string][]string{doc: {"user:alice", "apikey:" + k.ID}}}}})
	ck, code, body := s.dialAs(t, doc, raw)
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("the key's handshake: %d %s", code, body)
	}
	ca, _, _ := s.dialAs(t, doc, s.tokenFor(t, alice))
	testenv.WaitFor(t, "subscribers", func() bool { return s.hub.Connections() == 2 })
	s.hub.Dispatch(titleEvent(t, doc, 1))
	for _, c := range []*websocket.Conn{ck, ca} {
		if m := readMsg(t, c); m.Type != TypeDocumentUpdated {
			t.Fatalf("before the revocation: %+v", m)
		}
	}

	if _, err := keys.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	// The bound is the test's, against a hang: the close comes within the
	// cache's second plus a recheck.
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, frame, err := ck.Read(rctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "credential revoked" {
		t.Fatalf("the revoked key's connection read %s, %v; want close 1008 credential revoked", frame, err)
	}
	testenv.WaitFor(t, "the key's connection unsubscribed", func() bool { return s.hub.Connections() == 1 })
	s.hub.Dispatch(titleEvent(t, doc, 2))
	if m := readMsg(t, ca); m.Type != TypeDocumentUpdated || m.LSN != 2 {
		t.Fatalf("alice after the key's revocation: %+v", m)
	}
}
