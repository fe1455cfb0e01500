package app

import (
	"context"
	"net/http"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// The document service serves /apikeys beside /documents: open in
// `docstream dev`, an admin's outside it (anonymous: 401); a key made
// there is verified by the process's one verifier, and refused by it as
// soon as it is revoked.
func TestTheDocumentServiceServesAPIKeys(t *testing.T) {
	for _, dev := range []bool{false, true} {
		c := testConfig(t)
		c.Targets = "document"
		c.Shared.Dev = dev
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan *System, 1)
		done := make(chan error, 1)
		go func() { done <- Run(ctx, c, logging.Discard(), func(s *System) { ready <- s }) }()
		var sys *System
		select {
		case sys = <-ready:
		case err := <-done:
			cancel()
			t.Fatalf("start: %v", err)
		}
		base := "http://" + c.Document.Addr
		var k api.CreatedAPIKey
		resp := testenv.Do(t, http.MethodPost, base+"/apikeys", api.CreateAPIKeyRequest{Name: "ci", Scopes: []string{"read"}}, nil)
		switch {
		case !dev:
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("serve, anonymous POST /apikeys: %d, want 401", resp.StatusCode)
			}
		case resp.StatusCode != http.StatusCreated:
			t.Errorf("dev, anonymous POST /apikeys: %d, want 201", resp.StatusCode)
		default:
			testenv.Do(t, http.MethodPost, base+"/apikeys", api.CreateAPIKeyRequest{Name: "ci", Scopes: []string{"read"}}, &k)
			keys := sys.keys
			p, err := keys.VerifyKey(ctx, k.Key)
			if err != nil || p.Kind != auth.KindAPIKey || p.Subject != k.ID {
				t.Errorf("the process's verifier: %+v %v", p, err)
			}
			if resp := testenv.Do(t, http.MethodDelete, base+"/apikeys/"+k.ID, nil, nil); resp.StatusCode != http.StatusNoContent {
				t.Errorf("revoke: %d", resp.StatusCode)
			}
			if _, err := keys.VerifyKey(ctx, k.Key); err == nil {
				t.Error("the process's verifier accepts a key revoked through it")
			}
		}
		// The documents are still served beside.
		if resp := testenv.Do(t, http.MethodGet, base+"/documents", nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET /documents: %d", resp.StatusCode)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
